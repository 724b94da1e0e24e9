"""What a snapshot of ads_model costs, by number of series: the size of the bytes Kapacitor
stores, and how long the UDF takes to answer a SnapshotRequest, state file (fsync'd) included.

    .venv/bin/python bench/snapshot_cost.py [--series 10 100 1000 10000] [--points 200]

The UDF runs as Kapacitor runs it (a child process over stdin/stdout); the client stands in
for Kapacitor, whose own cost (one BoltDB write of those bytes per task) is not in the figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from localstack.udf_process import Request, point_requests, read_points, spawn
from udfkit import udf_pb2


def points(series: int, count: int) -> list[udf_pb2.Point]:
    out = []
    for i in range(count):
        for s in range(series):
            p = udf_pb2.Point(time=i * 1_000_000_000, name="environment", database="telemetry",
                              retentionPolicy="autogen", group=f"sensor=s{s}")
            p.tags["sensor"] = f"s{s}"
            p.fieldsDouble["temperature"] = 20.0 + ((i * 7919 + s * 104729) % 1000) / 1000
            out.append(p)
    return out


def measure(series: int, count: int, state_dir: str) -> tuple[int, float, float]:
    """(snapshot bytes, median and max seconds of 5 SnapshotRequests)."""
    client = spawn("ads_model.py", env={**os.environ, "UDF_STATE_DIR": state_dir})
    assert client.init({"field": "temperature"}, task=f"t{series}", node="n").success
    batch = points(series, count)
    for start in range(0, len(batch), 20_000):
        chunk = batch[start:start + 20_000]
        client.send(point_requests(chunk))
        read_points(client, len(chunk), timeout=120)
    times, size = [], 0
    for _ in range(5):
        began = time.perf_counter()
        data = client.request(Request(snapshot=udf_pb2.SnapshotRequest()), timeout=120)
        times.append(time.perf_counter() - began)
        size = len(data.snapshot.snapshot)
    client.close_input()
    client.wait(60)
    return size, statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--points", type=int, default=200, help="points per series first")
    args = parser.parse_args()
    print("| series | snapshot bytes | answer, median of 5 | slowest |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as state_dir:
        for series in args.series:
            size, median, worst = measure(series, args.points, state_dir)
            print(f"| {series:,} | {size:,} | {median * 1000:.1f} ms | {worst * 1000:.1f} ms |",
                  flush=True)


if __name__ == "__main__":
    main()
