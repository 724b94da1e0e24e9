"""NAB's scoring rules (standard profile): the figures of bench/nab_score.py and the tests.

What is implemented (NAB's sweeper, standard profile, from its published definitions):

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
- Normalisation, over the summed raw scores of all files: ``100 * (raw - null) / (perfect -
  null)`` with ``null = A_FN * windows`` (never alerting) and ``perfect = A_TP * windows``
  (one alert at every window start). Per-file normalised scores use the same formula on one
  file (undefined for a file without windows, shown as its raw score only).

A detector is a function ``alerts(ts_ns, values, probation) -> list of alert timestamps`` that
must see the points once, in time order; scoring is kept apart so any alert source (e.g. the
real UDF through a replay tool) can be scored with :func:`score_file`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlkit.nabdata import load_series, load_windows

NAB_DIR = Path(__file__).resolve().parents[2] / "training_data_sets" / "nab"
A_TP, A_FP, A_FN = 1.0, -0.11, -1.0
PROBATION_FRACTION, PROBATION_MAX = 0.15, 750

Detector = Callable[[list[int], np.ndarray, int], list[int]]


@dataclass
class FileScore:
    """Outcome of one detector on one file."""

    name: str
    windows: int
    hit: int
    false_alerts: int
    raw: float
    points: int
    seconds: float = 0.0

    @property
    def normalised(self) -> float | None:
        """NAB normalised score of this file alone (None without windows)."""
        return normalise(self.raw, self.windows) if self.windows else None


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
    out = []
    for a, b in windows:
        left = int(np.searchsorted(arr, a, side="left"))
        right = int(np.searchsorted(arr, b, side="right")) - 1
        out.append((left, right))
    return out


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


def windowed_gaussian(ts: list[int], values: np.ndarray, probation: int) -> list[int]:
    """NAB's reference detector: |z| > 4 against the last 6400 points, one alert per run."""
    window, out, in_run = 6400, [], False
    csum, csq = np.cumsum(values), np.cumsum(values**2)
    for i in range(1, len(values)):
        lo = max(0, i - window)
        n = i - lo
        s = csum[i - 1] - (csum[lo - 1] if lo else 0.0)
        q = csq[i - 1] - (csq[lo - 1] if lo else 0.0)
        mean = s / n
        std = math.sqrt(max(q / n - mean * mean, 0.0))
        flag = std > 0 and abs(values[i] - mean) / std > 4.0
        if flag and not in_run and i >= probation:
            out.append(ts[i])
        in_run = flag
    return out


def run_detector(detector: Detector, nab_dir: Path = NAB_DIR) -> list[FileScore]:
    """Score one detector on every file listed in windows.json."""
    windows = load_windows(nab_dir)
    scores = []
    for name in sorted(windows):
        ts, values = load_series(nab_dir / name)
        start = time.perf_counter()
        alert_ts = detector(ts, values, probation_length(len(ts)))
        elapsed = time.perf_counter() - start
        fs = score_file(name, ts, alert_ts, windows[name])
        fs.seconds = elapsed
        scores.append(fs)
    return scores


def totals(scores: list[FileScore]) -> dict[str, float]:
    """Summed counts, raw score and the NAB normalised score over files."""
    windows = sum(s.windows for s in scores)
    raw = sum(s.raw for s in scores)
    points = sum(s.points for s in scores)
    seconds = sum(s.seconds for s in scores)
    return {
        "windows": windows,
        "hit": sum(s.hit for s in scores),
        "false_alerts": sum(s.false_alerts for s in scores),
        "raw": raw,
        "score": normalise(raw, windows),
        "points_per_s": points / seconds if seconds else float("inf"),
    }
