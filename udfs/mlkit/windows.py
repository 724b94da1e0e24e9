"""Trailing-window features of a univariate series, for the anomaly detector.

Every feature of a point uses only that point and the points before it, and each window is
reduced on its own (no running sums), so a point's features are bitwise identical whether
the series arrives one point at a time or in batches. Seasonal series (a clear
autocorrelation peak in the learning data) are first reduced to residuals against a daily-like
template learnt once, so that regular rises and falls are not mistaken for anomalies.
This module imports numpy at the top: import it lazily from UDF-facing modules.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

FEATURES = ("level", "zscore", "diff", "volatility", "shift")
MIN_SEASON_ACF = 0.5


@dataclass(frozen=True)
class Reference:
    """What is learnt once from normal data so that features are unit-free."""

    mean: float
    std: float  # spread of the residuals
    noise: float  # point-to-point noise of the values
    template: tuple[float, ...] = ()  # mean value per phase of the season (empty: none)

    @classmethod
    def learn(cls, values: np.ndarray, min_lag: int = 2) -> Reference:
        """Fit mean, noise (robust, from median |diff|), season template and residual spread."""
        values = np.asarray(values, dtype=float)
        noise = float(np.median(np.abs(np.diff(values)))) * 1.4826 / np.sqrt(2.0)
        noise = noise if noise > 0 else (float(values.std()) or 1.0) * 1e-3
        period = season(values, min_lag)
        template: tuple[float, ...] = ()
        if period:
            sums, counts = _phase_sums(values, period)
            template = tuple((sums / counts).tolist())
        mean = float(np.median(values))
        std = robust_std(training_residuals(values, cls(mean, 1.0, noise, template)))
        return cls(mean, std if std > 0 else noise, noise, template)

    def residuals(self, values: np.ndarray, first_index: int) -> np.ndarray:
        """Values minus the template (or the mean); first_index is the first value's position."""
        if not self.template:
            return values - self.mean
        period = len(self.template)
        phase = (np.arange(len(values)) + first_index) % period
        return values - np.asarray(self.template)[phase]

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {**asdict(self), "template": list(self.template)}

    @classmethod
    def from_dict(cls, d: dict) -> Reference:
        """Inverse of to_dict."""
        return cls(float(d["mean"]), float(d["std"]), float(d["noise"]), tuple(d["template"]))


def robust_std(x: np.ndarray) -> float:
    """Standard deviation from the median absolute deviation: learning data may hold
    anomalies, and they must not widen what counts as normal."""
    return float(np.median(np.abs(x - np.median(x)))) * 1.4826


def _phase_sums(values: np.ndarray, period: int) -> tuple[np.ndarray, np.ndarray]:
    phase = np.arange(len(values)) % period
    sums = np.bincount(phase, weights=values, minlength=period)
    return sums, np.bincount(phase, minlength=period).astype(float)


def training_residuals(values: np.ndarray, ref: Reference) -> np.ndarray:
    """Residuals of the learning data against a template that excludes the point itself.

    An in-sample template absorbs part of each point's noise, so its residuals look tighter
    than those of new data; leaving the point out gives an honest (slightly wide) spread.
    """
    if not ref.template:
        return values - ref.mean
    period = len(ref.template)
    sums, counts = _phase_sums(values, period)
    phase = np.arange(len(values)) % period
    others = counts[phase] - 1.0
    safe = np.maximum(others, 1.0)
    loo = np.where(others > 0, (sums[phase] - values) / safe, np.asarray(ref.template)[phase])
    return values - loo


def _without_outliers(values: np.ndarray, limit: float = 5.0) -> np.ndarray:
    """Values with those beyond `limit` robust stds of the median replaced by the median:
    two anomalies a few hundred points apart must not pass for a season."""
    center, spread = float(np.median(values)), robust_std(values)
    if spread == 0.0:
        return values.copy()
    return np.where(np.abs(values - center) > limit * spread, center, values)


def season(values: np.ndarray, min_lag: int = 2) -> int:
    """Dominant period in points (0 if none): after the first negative autocorrelation, the
    first local peak within 90% of the highest one (lags up to half the data), if that
    highest one exceeds MIN_SEASON_ACF."""
    x = _without_outliers(values)
    x = x - x.mean()
    energy = float(np.dot(x, x))
    n = len(x)
    if energy == 0.0 or n < 4 * min_lag:
        return 0
    lags = np.arange(min_lag, n // 2)
    acf = np.array([np.dot(x[:-k], x[k:]) / energy * n / (n - k) for k in lags])
    negative = np.flatnonzero(acf < 0)
    if not len(negative):
        return 0
    tail = acf[negative[0] :]
    peak = float(tail.max())
    if peak <= MIN_SEASON_ACF:
        return 0
    # multiples of the period peak about as high: take the first local peak near the top
    is_peak = np.r_[tail[1:-1] >= np.maximum(tail[:-2], tail[2:]), True]
    is_peak = np.r_[tail[0] >= tail[1] if len(tail) > 1 else True, is_peak[: len(tail) - 1]]
    first = int(np.flatnonzero(is_peak & (tail >= 0.9 * peak))[0])
    return int(lags[negative[0] + first])


def features(
    history: np.ndarray,
    new: np.ndarray,
    ref: Reference,
    long: int,
    short: int,
    first_index: int,
    residuals: np.ndarray | None = None,
) -> np.ndarray:
    """Feature rows of the points `new`, given at least `long` points of `history` before them.

    first_index is the position of new[0] in the series (for the season phase); `residuals`
    (of history + new) replaces the template residuals, for training rows. With r the
    residual (value minus template or mean):
    level: r in residual stds (level shifts, out-of-range values, seasonal shape changes);
    zscore: r vs the trailing `long` window of r, in that window's std (spikes, dips);
    diff: first difference of r in residual stds (jumps);
    volatility: log ratio of the std of the last `short` values to the learnt noise
    (flat-lining gives a very negative value, bursts a positive one);
    shift: mean r of the last `short` points vs the trailing `long` mean, in its std.
    """
    arr = np.concatenate([np.asarray(history, dtype=float), np.asarray(new, dtype=float)])
    m, start = len(new), len(arr) - len(new)
    res = ref.residuals(arr, first_index - start) if residuals is None else residuals
    past = sliding_window_view(res[start - long : len(res) - 1], long)
    recent = sliding_window_view(res[start - short + 1 :], short)
    raw_recent = sliding_window_view(arr[start - short + 1 :], short)
    r = res[start:]
    mean = past.mean(axis=1)
    std = np.maximum(past.std(axis=1), ref.noise)
    rows = np.empty((m, len(FEATURES)))
    rows[:, 0] = r / ref.std
    rows[:, 1] = (r - mean) / std
    rows[:, 2] = (r - res[start - 1 : len(res) - 1]) / ref.std
    rows[:, 3] = np.log((raw_recent.std(axis=1) + 1e-3 * ref.noise) / ref.noise)
    rows[:, 4] = (recent.mean(axis=1) - mean) / std
    return np.clip(rows, -50.0, 50.0)
