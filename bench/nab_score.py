"""NAB-style scores (standard profile) of alert detectors on training_data_sets/nab.

The scoring rules are mlkit.nab's (shared with the tests); this file holds the detectors
compared and prints their tables: ``python bench/nab_score.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from mlkit.nab import (
    NAB_DIR,
    Detector,
    FileScore,
    run_detector,
    totals,
    windowed_gaussian,
)
from mlkit.nabdata import load_series

# --------------------------------------------------------------------------- detectors


def ours(ts: list[int], values: np.ndarray, probation: int) -> list[int]:
    """mlkit.ads with default settings, learning on the probation prefix."""
    from mlkit.ads import SeriesDetector

    return SeriesDetector(learn=probation).alerts(ts, values)


def ads_model_udf(ts: list[int], values: np.ndarray, probation: int) -> list[int]:
    """The real ads_model UDF over the protocol (udfkit.replay): alerts are the points it
    marks `anomaly_start`, the first point of each anomalous period."""
    from udfkit import udf_pb2
    from udfkit.replay import replay, udf_command

    points = []
    for t, v in zip(ts, values.tolist(), strict=True):
        point = udf_pb2.Point(time=t, name="nab")
        point.fieldsDouble["value"] = v
        points.append(point)
    out, _ = replay(udf_command("ads_model", None), points, {"learn": str(probation)})
    return [point.time for point in out if point.fieldsBool.get("anomaly_start")]


def raw_isolation_forest(ts: list[int], values: np.ndarray, probation: int) -> list[int]:
    """Baseline: IsolationForest on the raw value, fit on probation, 'auto' threshold."""
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=100, random_state=0)
    forest.fit(values[:probation, None])
    flags = forest.predict(values[:, None]) == -1
    return [ts[i] for i in range(probation, len(ts)) if flags[i] and not flags[i - 1]]


DETECTORS: dict[str, Detector] = {
    "ads_model UDF over the protocol (replay)": ads_model_udf,
    "ours in-process (mlkit.ads)": ours,
    "windowed gaussian |z|>4": windowed_gaussian,
    "IsolationForest raw value": raw_isolation_forest,
}


def print_table(label: str, scores: list[FileScore]) -> None:
    """Per-file and total rows for one detector."""
    print(f"\n== {label}")
    print(f"{'file':42} {'hit':>7} {'FP':>5} {'raw':>8} {'NAB':>7}")
    for s in scores:
        norm = "-" if s.normalised is None else f"{s.normalised:7.1f}"
        print(f"{s.name:42} {s.hit:>3}/{s.windows:<3} {s.false_alerts:>5} {s.raw:8.3f} {norm:>7}")
    t = totals(scores)
    print(
        f"{'TOTAL':42} {t['hit']:>3}/{t['windows']:<3} {t['false_alerts']:>5} "
        f"{t['raw']:8.3f} {t['score']:7.1f}   ({t['points_per_s']:,.0f} points/s)"
    )


def ads_throughput(sizes: Sequence[int] = (1, 1000, 10_000)) -> dict[int, float]:
    """Points/s of a learnt mlkit.ads detector for calls of n points (n=1: score() per point)."""
    from mlkit.ads import SeriesDetector

    ts, values = load_series(NAB_DIR / "art_daily_jumpsup.csv")
    ts, values = ts * 4, np.tile(values, 4)  # long enough for a 10k call after learning
    out = {}
    for n in sizes:
        det = SeriesDetector(learn=750)
        det.score_many(ts[:750], values[:750])
        count = 2000 if n == 1 else n
        start = time.perf_counter()
        for i in range(750, 750 + count, n):
            det.score_many(ts[i : i + n], values[i : i + n])
        out[n] = count / (time.perf_counter() - start)
    return out


def main() -> None:
    """Run the three detectors and print their NAB tables and the detector's throughput."""
    for label, detector in DETECTORS.items():
        print_table(label, run_detector(detector))
    print("\npoints/s above include learning; mlkit.ads scoring after learning:")
    for n, rate in ads_throughput().items():
        call = "score() per point" if n == 1 else f"score_many of {n} points"
        print(f"  {call:28} {rate:>10,.0f} points/s")


if __name__ == "__main__":
    main()
