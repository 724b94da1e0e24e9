"""Golden results of the per-series ads_model detector, the oracle for the fleet core.

The fleet core (mlkit.ads) must score exactly as the per-series detector it replaced, bit
for bit. This module builds deterministic streams that exercise every path of the detector
(spikes both ways, level shifts kept and transient, volatility, stuck and quantised sensors,
non-finite values, `confirm`, short `history`, short gaps) and, run as a script, writes what
the current `mlkit.ads.SeriesDetector` makes of them to ``ads_v3.npz``. The committed file was
written by the last per-series implementation (commit 545635a, state format 3), e.g. with
that commit's ``udfs/mlkit`` (``git show 545635a:udfs/mlkit/ads.py`` etc.) copied to
``/tmp/oldpkg/mlkit``:

    PYTHONPATH=/tmp/oldpkg:. .venv/bin/python -m tests.golden.ads_golden
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).with_name("ads_v3.npz")
SNAPSHOT = Path(__file__).with_name("ads_v3_snapshot.bin")
"""ads_model's snapshot (format 3) of the streams with default settings (SNAPSHOT_STREAMS),
SNAPSHOT_AT points each, as groups sensor=s<stream>."""
SNAPSHOT_STREAMS = (0, 4, 8)
SNAPSHOT_AT = 2500
STEP = 60 * 10**9
T0 = 1_700_000_000 * 10**9
CONFIGS: list[dict[str, float]] = [
    {},
    {"confirm": 3},
    {"history": 256, "window": 5, "relearn": 50, "close_after": 8, "min_gap": 10,
     "confirm": 2, "learn": 20, "margin": 0.02, "min_sigma": 2.0, "stuck_after": 3},
    {"relearn": 0, "min_gap": 0, "history": 512},
]
STREAMS = 12
LENGTH = 6000


def stream(seed: int) -> np.ndarray:
    """A seasonal, noisy series with anomalies of every kind at random places."""
    rng = np.random.default_rng(seed)
    n = LENGTH
    t = np.arange(n)
    x = 20 + 3 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.3 + 0.2 * (seed % 3), n)
    if seed % 4 == 1:
        x = np.round(x, 0)  # quantised readings: runs of repeats are normal
    if seed % 4 == 2:
        x += 1e9  # a large offset: moments are taken about the first value
    for _ in range(8):
        at, kind = int(rng.integers(300, n - 200)), int(rng.integers(0, 6))
        size = float(rng.uniform(2, 12))
        if kind == 0:
            x[at] += size
        elif kind == 1:
            x[at] -= size
        elif kind == 2:
            x[at:] += size / 2  # a level shift that stays
        elif kind == 3:
            x[at:at + 60] += size / 3  # a transient level shift
        elif kind == 4:
            x[at:at + 80] += rng.normal(0, size / 3, 80)  # a burst of volatility
        else:
            x[at:at + 40] = x[at]  # a stuck sensor
    if seed % 3 == 0:
        x[rng.integers(0, n, 20)] = np.nan
    return x


def times(n: int) -> list[int]:
    return [T0 + k * STEP for k in range(n)]


def config_of(seed: int) -> dict[str, float]:
    return CONFIGS[seed % len(CONFIGS)]


def main() -> None:
    from mlkit.ads import SeriesDetector
    from udfkit import snapshot

    out: dict[str, np.ndarray] = {}
    for seed in range(STREAMS):
        scored = SeriesDetector(**config_of(seed)).score_many(times(LENGTH), stream(seed))
        out[f"scores_{seed}"] = np.asarray(scored.scores)
        out[f"anomalous_{seed}"] = np.asarray(scored.anomalous)
        out[f"alerts_{seed}"] = np.asarray(scored.alerts, dtype=np.int64)
        out[f"periods_{seed}"] = np.asarray(
            [(k, p.start_ns, p.end_ns) for k, p in sorted(scored.periods.items())],
            dtype=np.int64).reshape(-1, 3)
        out[f"period_max_{seed}"] = np.asarray(
            [p.max_score for _, p in sorted(scored.periods.items())], dtype=float)
    states = {}
    for seed in SNAPSHOT_STREAMS:
        det = SeriesDetector(**config_of(seed))
        det.score_many(times(SNAPSHOT_AT), stream(seed)[:SNAPSHOT_AT])
        states[f"sensor=s{seed}"] = det.to_state()
    SNAPSHOT.write_bytes(snapshot.encode("ads_model", 3, {"groups": states}))
    np.savez_compressed(GOLDEN, **out)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
