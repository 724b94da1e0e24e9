"""Points/s of the ML and classic UDFs alone over stdio, each against a baseline in the same run.

    python bench/udf_throughput.py [--points 100000]

rfc_classifier (vectorised) is compared with scoring one-row DataFrames per
point, the usual way; ads_model (vectorised) with scoring one point per call.
Both also run with CPython's default collector settings (--default-gc), and
every row gives the time the UDF spent in the collector (udfkit.gc_settings).
The clock starts after Init (model loading); ads_model's figure includes its
learning phase (64 points per series).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

from stdio_driver import drive, framed_points, handshake

from faultkit import protocol
from udfkit import udf_pb2

ROOT = Path(__file__).resolve().parent.parent


def telemetry(n: int) -> list[udf_pb2.Point]:
    """n machine readings of four mills, interleaved (faultkit.protocol's AI4I generator)."""
    rng = random.Random(7)
    return [protocol.telemetry(rng, 1_700_000_000_000_000_000 + i * 10**9, f"mill-{i % 4}")
            for i in range(n)]


def environment(n: int, groups: int = 4) -> list[udf_pb2.Point]:
    rng = random.Random(8)
    points = []
    for i in range(n):
        p = udf_pb2.Point(time=1_700_000_000_000_000_000 + i * 10**9, name="environment",
                          group=f"sensor=s{i % groups}")
        p.tags["sensor"] = f"s{i % groups}"
        p.fieldsDouble["temperature"] = 22 + math.sin(i / 500) + rng.gauss(0, 0.1)
        p.fieldsDouble["humidity"] = 45 + rng.gauss(0, 2)
        points.append(p)
    return points


def run_udf(label: str, script: str, points, options: dict, repeats: int,
            expected: int | None = None, args: tuple[str, ...] = ()) -> None:
    init = handshake(options)
    payload = framed_points(points)
    runs = [drive([sys.executable, "-u", f"udfs/{script}", *args], payload,
                  expected or len(points), init=init)
            for _ in range(repeats)]
    best = max(runs, key=lambda r: r.rate)
    print(f"{label:34} {best.rate:>10,.0f} points/s   peak RSS {best.rss_kib / 1024:6.1f} MiB"
          f"   gc {best.gc_ms:.0f} ms")


def rfc_one_row_dataframes(points, sample: int = 300) -> None:
    import numpy as np
    import pandas as pd

    from mlkit.manifest import load_pickle
    from mlkit.rfc import RAW_FEATURES

    model = load_pickle("rfc.joblib")
    start = time.perf_counter()
    for p in points[:sample]:
        row = {name: float(p.fieldsDouble.get(name, p.fieldsInt.get(name, 0)))
               for name in RAW_FEATURES}
        model.predict(np.asarray(pd.DataFrame([row])[list(RAW_FEATURES)], dtype=float))
    rate = sample / (time.perf_counter() - start)
    print(f"{'  baseline: 1-row DataFrame/point':34} {rate:>10,.0f} points/s   (in-process)")


def ads_point_at_a_time(points, sample: int = 2000) -> None:
    from mlkit.ads import SeriesDetector

    detector = SeriesDetector()
    values = [p.fieldsDouble["temperature"] for p in points if p.group == "sensor=s0"]
    detector.score_and_learn(list(range(100)), values[:100])
    start = time.perf_counter()
    for i in range(100, 100 + sample):
        detector.score_and_learn([i], [values[i]])
    rate = sample / (time.perf_counter() - start)
    print(f"{'  baseline: one point per call':34} {rate:>10,.0f} points/s   (in-process)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    n = args.points
    print(f"== UDFs alone over stdio, {n:,} points, best of {args.repeats}")
    machine = telemetry(n)
    run_udf("rfc_classifier", "rfc_classifier.py", machine, {}, args.repeats)
    run_udf("  baseline: --default-gc", "rfc_classifier.py", machine, {}, args.repeats,
            args=("--default-gc",))
    rfc_one_row_dataframes(machine)
    env = environment(n)
    ads = {"field": "temperature"}
    run_udf("ads_model (4 series, defaults)", "ads_model.py", env, ads, args.repeats)
    run_udf("  baseline: --default-gc", "ads_model.py", env, ads, args.repeats,
            args=("--default-gc",))
    ads_point_at_a_time(env)
    run_udf("temperature_classifier (annotate)", "temperature_classifier.py", env,
            {"mode": "annotate"}, args.repeats)
    run_udf("moving_average (size 10)", "moving_average.py", env,
            {"field": "temperature", "size": 10}, args.repeats, expected=n - 4 * 9)


if __name__ == "__main__":
    main()
