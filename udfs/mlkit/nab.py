"""NAB's scoring rules (standard profile) and the detectors `make nab` compares; shared by
bench/nab_score.py and the tests.

Scoring (NAB's sweeper, standard profile, from its published definitions):

- Weights: A_TP = 1.0, A_FP = -0.11, A_FN = -1.0.
- ``scaled_sigmoid(y) = 2 / (1 + exp(5 y)) - 1``, and ``-1`` when ``y > 3``.
- An alert at row index ``i`` inside a window ``[l, r]`` (rows whose timestamp lies in the
  labelled window, ends included) has relative position ``y = -(r - i + 1) / (r - l + 1)``
  (``-1`` at the window start, near ``0`` at its end). Only the FIRST alert of a window counts,
  scoring ``A_TP * scaled_sigmoid(y) / scaled_sigmoid(-1)`` (1.0 at the window start).
  Later alerts in the same window score nothing.
- An alert outside every window is a false positive scoring ``-A_FP * scaled_sigmoid(y)``
  with ``y = (i - r_prev) / (w_prev - 1)``, distance from the end ``r_prev`` of the preceding
  window of width ``w_prev`` (so a late alert just after a window costs little), and
  ``scaled_sigmoid`` taken as ``-1`` (full -0.11) when no window precedes it.
- Each window without an alert adds ``A_FN`` (-1.0).
- Probation: the first ``min(floor(0.15 * n), 750)`` rows of a file; alerts there are ignored.
- Normalisation, over the summed raw scores of a set of files: ``100 * (raw - null) /
  (perfect - null)`` with ``null = A_FN * windows`` (never alerting) and ``perfect = A_TP *
  windows``. A set without windows (a category of anomaly-free files) has only its raw score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NAB_DIR = Path(__file__).resolve().parents[2] / "training_data_sets" / "nab"
A_TP, A_FP, A_FN = 1.0, -0.11, -1.0
PROBATION_FRACTION, PROBATION_MAX = 0.15, 750


@dataclass
class FileScore:
    """Outcome of one detector on one file."""

    name: str
    windows: int
    hit: int
    false_alerts: int
    raw: float
    points: int

    @property
    def normalised(self) -> float | None:
        """NAB normalised score of this file alone (None without windows)."""
        return normalise(self.raw, self.windows) if self.windows else None

    @property
    def fp_per_2000(self) -> float:
        return 2000.0 * self.false_alerts / self.points


def scaled_sigmoid(y: float) -> float:
    """NAB's reward curve: ~1 well before a window end, 0 at it, towards -1 after."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation_length(n: int) -> int:
    """Rows a detector may learn from without being scored (NAB rule)."""
    return min(math.floor(PROBATION_FRACTION * n), PROBATION_MAX)


def normalise(raw: float, windows: int) -> float:
    """Map a raw score so never alerting is 0 and perfect alerting is 100."""
    null, perfect = A_FN * windows, A_TP * windows
    return 100.0 * (raw - null) / (perfect - null)


def window_indices(ts: Sequence[int], windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Row index range [l, r] covered by each window."""
    arr = np.asarray(ts, dtype=np.int64)
    return [(int(np.searchsorted(arr, a, side="left")),
             int(np.searchsorted(arr, b, side="right")) - 1) for a, b in windows]


def score_file(
    name: str, ts: Sequence[int], alert_ts: Sequence[int], windows: list[tuple[int, int]]
) -> FileScore:
    """Raw NAB score of alert timestamps on one file."""
    probation = probation_length(len(ts))
    spans = window_indices(ts, windows)
    arr = np.asarray(ts, dtype=np.int64)
    idx = sorted({int(np.searchsorted(arr, t, side="left")) for t in alert_ts})
    max_tp = scaled_sigmoid(-1.0)
    raw, hit_windows, false_alerts = 0.0, set(), 0
    for i in idx:
        if i < probation or i >= len(ts):
            continue
        inside = [k for k, (lo, hi) in enumerate(spans) if lo <= i <= hi]
        if inside:
            k = inside[0]
            if k not in hit_windows:
                lo, hi = spans[k]
                raw += A_TP * scaled_sigmoid(-(hi - i + 1) / (hi - lo + 1)) / max_tp
                hit_windows.add(k)
            continue
        false_alerts += 1
        prev = [(lo, hi) for lo, hi in spans if hi < i]
        if prev:
            lo, hi = prev[-1]
            raw += -A_FP * scaled_sigmoid((i - hi) / max(hi - lo, 1))
        else:
            raw += A_FP
    raw += A_FN * (len(spans) - len(hit_windows))
    return FileScore(name, len(spans), len(hit_windows), false_alerts, raw, len(ts))


def detector_scores(options: Mapping[str, Any], series: Mapping[str, tuple[list[int], np.ndarray]],
                    windows: Mapping[str, list[tuple[int, int]]]) -> list[FileScore]:
    """Every file's score of mlkit.ads.SeriesDetector with `options`, in-process (it alerts
    exactly as the UDF: tests/test_ads_model.py)."""
    from mlkit.ads import SeriesDetector

    return [score_file(name, ts, SeriesDetector(**options).alerts(ts, values),
                       windows[name])
            for name, (ts, values) in series.items()]


def totals(scores: Sequence[FileScore]) -> dict[str, float | None]:
    """Summed counts and raw score over files, and the normalised score (None without
    windows)."""
    windows = sum(s.windows for s in scores)
    raw = sum(s.raw for s in scores)
    return {"windows": windows, "hit": sum(s.hit for s in scores),
            "false_alerts": sum(s.false_alerts for s in scores), "raw": raw,
            "score": normalise(raw, windows) if windows else None}


def ads_model_udf(ts: list[int], values: np.ndarray,
                  options: dict[str, str] | None = None) -> list[int]:
    """The real ads_model UDF over the protocol (udfkit.replay), with its default options or
    `options` (name: value as in a TICKscript): alerts are the points it marks
    `anomaly_start`."""
    from udfkit import udf_pb2
    from udfkit.replay import replay, udf_command

    points = []
    for t, v in zip(ts, values.tolist(), strict=True):
        point = udf_pb2.Point(time=t, name="nab")
        point.fieldsDouble["value"] = v
        points.append(point)
    out, _ = replay(udf_command("ads_model", None), points, options or {})
    return [point.time for point in out if point.fieldsBool.get("anomaly_start")]


def windowed_gaussian(ts: list[int], values: np.ndarray, every: int = 0) -> list[int]:
    """Reference: |z| > 4 against the last 6,400 points (NAB's windowSize), one alert per
    run of flagged points; with `every`, at most one alert per `every` points."""
    window, out, in_run, last = 6400, [], False, -every
    csum, csq = np.cumsum(values), np.cumsum(values**2)
    for i in range(1, len(values)):
        lo = max(0, i - window)
        n = i - lo
        s = csum[i - 1] - (csum[lo - 1] if lo else 0.0)
        q = csq[i - 1] - (csq[lo - 1] if lo else 0.0)
        mean = s / n
        std = math.sqrt(max(q / n - mean * mean, 0.0))
        flag = std > 0 and abs(values[i] - mean) / std > 4.0
        if flag and not in_run and i - last >= every:
            out.append(ts[i])
            last = i
        in_run = flag
    return out
