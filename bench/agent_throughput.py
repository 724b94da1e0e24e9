"""Throughput of the agent: the mirror UDF alone over stdio, and inside real kapacitord.

    python bench/agent_throughput.py [--points 200000] [--e2e-points 100000]

Isolation: a driver writes framed points and counts responses without parsing
them; udfs/mirror.py against bench/naive_mirror.py (a conventional agent) in
the same run, plus lone-point latency percentiles and peak memory.
End to end: N points written to /kapacitor/v1/write, time until the task's last
node has seen all of them, for the same task without the UDF node, with the mirror
as a process UDF and as a socket UDF, and with bench/echo_udf.c (C, echoes frames
unparsed) as the floor for any agent.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from stdio_driver import drive, framed_points, handshake

from localstack import ROOT
from localstack.process import cpu_seconds
from udfkit import udf_pb2
from udfkit.client import UdfClient


def make_points(n: int) -> list[udf_pb2.Point]:
    points = []
    for i in range(n):
        p = udf_pb2.Point(time=1_700_000_000_000_000_000 + i * 1_000_000, name="environment",
                          database="telemetry", retentionPolicy="autogen",
                          group=f"sensor=s{i % 8}")
        p.tags["sensor"] = f"s{i % 8}"
        p.dimensions.append("sensor")
        p.fieldsDouble["temperature"] = 20.0 + (i % 50) * 0.1
        p.fieldsDouble["humidity"] = 40.0 + (i % 30) * 0.2
        points.append(p)
    return points


def isolation(n: int, repeats: int) -> None:
    payload = handshake() + framed_points(make_points(n))
    print(f"\n== mirror over stdio, {n:,} points, best of {repeats}")
    for label, script in [("udfkit mirror", "udfs/mirror.py"),
                          ("naive baseline", "bench/naive_mirror.py")]:
        runs = [drive([sys.executable, "-u", script], payload, n) for _ in range(repeats)]
        best = max(runs, key=lambda r: r.rate)
        rates = ", ".join(f"{r.rate:,.0f}" for r in runs)
        print(f"{label:16s} {best.rate:>10,.0f} points/s  (runs: {rates})  "
              f"peak RSS {best.rss_kib / 1024:.1f} MiB")


def latency(samples: int, delay_ms: float) -> None:
    """Back-to-back lone points: each is sent when the previous answer arrives."""
    client = UdfClient.spawn([sys.executable, "-u", str(ROOT / "udfs" / "mirror.py"),
                              "--max-delay-ms", str(delay_ms)])
    client.init({})
    request = udf_pb2.Request(point=make_points(1)[0])
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        client.send([request])
        client.recv()
        times.append((time.perf_counter() - start) * 1e6)
    client.close_input()
    q = statistics.quantiles(times, n=100)
    print(f"--max-delay-ms {delay_ms:<4}  p50 {q[49]:.0f} µs   p95 {q[94]:.0f} µs   "
          f"p99 {q[98]:.0f} µs   max {max(times):.0f} µs")


def end_to_end(n: int, repeats: int) -> None:
    import tempfile

    from kapacitorkit.conf import UdfFunction
    from localstack.kapacitord import LocalKapacitord, kapacitor_bin_dir, udf_function

    lines = "".join(f"environment,sensor=s{i % 8} temperature={20 + (i % 50) * 0.1:.1f} "
                    f"{1_700_000_000_000_000_000 + i * 1_000_000}\n" for i in range(n)).encode()
    chunks = _split_on_lines(lines)
    print(f"\n== end to end through kapacitord, {n:,} points written over HTTP, best of {repeats}")
    print("   (CPU: seconds used by kapacitord and by the UDF process during the best run;")
    print("    @echo() is bench/echo_udf.c, the floor any UDF agent can reach)")
    with tempfile.TemporaryDirectory() as work:
        echo = _build_echo(Path(work))
        sock = Path(work) / "mirror.sock"
        server = subprocess.Popen([sys.executable, "-u", str(ROOT / "udfs" / "mirror.py"),
                                   "--socket", str(sock)], stderr=subprocess.DEVNULL)
        while not sock.exists():
            time.sleep(0.05)
        functions = [udf_function("mirror", "mirror.py"), UdfFunction("echo", prog=str(echo)),
                     UdfFunction("mirror_socket", socket=str(sock))]
        kap = LocalKapacitord(kapacitor_bin_dir(), Path(work), functions)
        runs = [("without UDF", "", None), ("with @mirror()", "    @mirror()\n", None),
                ("socket mirror", "    @mirror_socket()\n", server.pid),
                ("with @echo()", "    @echo()\n", None)]
        try:
            best: dict[str, tuple[float, float, float]] = {}
            for _ in range(repeats):
                for label, node, udf_pid in runs:
                    result = _timed_task(kap, node, chunks, n, udf_pid)
                    if label not in best or result[0] > best[label][0]:
                        best[label] = result
            base = best["without UDF"][0]
            for label, (rate, kap_cpu, udf_cpu) in best.items():
                print(f"{label:16s} {rate:>10,.0f} points/s  ({rate / base:.0%} of no-UDF)  "
                      f"CPU kapacitord {kap_cpu:.2f} s, UDF {udf_cpu:.2f} s")
        finally:
            kap.stop()
            server.terminate()
            server.wait()


def _build_echo(work: Path) -> Path:
    binary = work / "echo_udf"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(Path(__file__).with_name("echo_udf.c"))],
                   check=True)
    return binary


def _split_on_lines(data: bytes, size: int = 1 << 20) -> list[bytes]:
    chunks, start = [], 0
    while start < len(data):
        stop = data.rfind(b"\n", start, start + size) + 1 or len(data)
        chunks.append(data[start:stop])
        start = stop
    return chunks


def _timed_task(kap, node: str, chunks: list[bytes], n: int,
                udf_pid: int | None = None) -> tuple[float, float, float]:
    """(points/s, kapacitord CPU s, UDF CPU s) for one run of a fresh task.

    The UDF is kapacitord's child process, or `udf_pid` (a socket UDF server)."""
    task = "bench_" + ("udf" if node else "plain")
    script = ("stream\n    |from()\n        .measurement('environment')\n"
              f"{node}    |count('temperature')\n")
    kap.api.define_task(task, script, [{"db": "telemetry", "rp": "autogen"}], enabled=True)
    kap.api.wait_task(task)
    time.sleep(0.3)
    children = [udf_pid] if udf_pid else _children(kap.proc.pid)
    cpu0 = cpu_seconds(kap.proc.pid), sum(cpu_seconds(c) for c in children)
    start = time.perf_counter()
    for chunk in chunks:
        kap.api.write(chunk, db="telemetry")
    while _collected(kap, task) < n:
        time.sleep(0.01)
    rate = n / (time.perf_counter() - start)
    cpu1 = cpu_seconds(kap.proc.pid), sum(cpu_seconds(c) for c in children)
    kap.api.set_status(task, False)
    kap.api.delete_task(task)
    return rate, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]


def _children(pid: int) -> list[int]:
    out = []
    for task_dir in Path(f"/proc/{pid}/task").iterdir():
        text = (task_dir / "children").read_text().split()
        out.extend(int(c) for c in text)
    return out


def _collected(kap, task: str) -> int:
    stats = kap.api.task(task)["stats"]["node-stats"]
    return next(v["collected"] for k, v in stats.items() if k.startswith("count"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--e2e-points", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-samples", type=int, default=2000)
    parser.add_argument("--skip-e2e", action="store_true")
    args = parser.parse_args()
    isolation(args.points, args.repeats)
    print(f"\n== lone-point round trip through the mirror, {args.latency_samples} samples")
    for delay_ms in (0.5, 0.0):
        latency(args.latency_samples, delay_ms)
    if not args.skip_e2e:
        end_to_end(args.e2e_points, args.repeats)


if __name__ == "__main__":
    main()
