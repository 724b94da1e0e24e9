"""Streaming anomaly detection for one series: IsolationForest on trailing-window features.

A ``SeriesDetector`` sees the points of one series (one Kapacitor group) in time order. It
learns from its first ``learn`` points (or starts from a pretrained ``AdsModel``), then scores
each point with an IsolationForest over window features (see ``mlkit.windows``), smooths the
score, calibrates it so 0.5 is the learnt threshold, and tracks anomalous periods. Every
``refit_every`` scored points it refits on the most recent normal points.

Speed: the forest is flattened (``mlkit.iforest``) so a single point costs ~0.1 ms and a batch
from ``score_many`` a few microseconds per point; prefer ``score_many`` for lists of points.
State is a JSON-serialisable dict; the forest is rebuilt from the stored training rows with the
stored seed, which gives the same trees (no pickle in the state).

numpy and scikit-learn are imported inside functions so that importing this module is cheap.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from mlkit.iforest import FlatForest

STATE_VERSION = 1


class Period(NamedTuple):
    """A closed anomalous period: first and last anomalous point, highest calibrated score."""

    start_ns: int
    end_ns: int
    max_score: float


class Score(NamedTuple):
    """Result for one point; `alert` marks the point that opened a period."""

    score: float
    is_anomaly: bool
    alert: bool = False
    period: Period | None = None


@dataclass(frozen=True)
class AdsConfig:
    """Detector settings; defaults are the ones benchmarked in bench/nab_score.py."""

    learn: int = 750  # points learnt from before scoring (NAB probation: 15%, at most 750)
    long_window: int = 96  # trailing window for the z-score / shift features
    short_window: int = 6  # window for volatility and short mean
    n_estimators: int = 50
    max_samples: int = 256
    smooth: int = 3  # moving average of raw scores, in points
    margin: float = 0.02  # threshold = highest smoothed training score + margin
    min_run: int = 2  # consecutive points above threshold before a point is anomalous
    close_after: int = 12  # normal points that close an open period
    refit_every: int = 50_000  # scored points between refits on recent normal data (0: never)
    background: float = 0.1  # uniform background points per training row (see iforest)
    seed: int = 0
    clean_limit: float = 10.0  # training rows beyond this |level|, |zscore| or |diff| are left out

    def check(self) -> None:
        """Reject settings the detector cannot work with."""
        if self.learn < self.long_window + 32:
            raise ValueError(f"learn={self.learn} must be >= long_window + 32")
        if min(self.short_window, self.smooth, self.min_run, self.close_after) < 1:
            raise ValueError("short_window, smooth, min_run and close_after must be >= 1")


@dataclass
class AdsModel:
    """A pretrained detector model: settings, series scale and the feature rows of normal data.

    The forest is not stored: it is refitted from `rows` with the config seed (deterministic),
    so the model and every detector state stay plain data.
    """

    config: AdsConfig
    reference: dict[str, Any]  # mlkit.windows.Reference.to_dict() of the training series
    rows: list[list[float]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"config": asdict(self.config), "reference": self.reference, "rows": self.rows}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AdsModel:
        """Inverse of to_dict."""
        return cls(AdsConfig(**d["config"]), d["reference"], d["rows"])


def train_model(values: Sequence[float], config: AdsConfig | None = None) -> AdsModel:
    """Learn an AdsModel from a run of normal values of one series (len > long_window + 32)."""
    import numpy as np

    from mlkit.windows import Reference, features, training_residuals

    cfg = config or AdsConfig()
    arr = np.asarray(values, dtype=float)
    if len(arr) < cfg.long_window + 32:
        raise ValueError(f"need at least {cfg.long_window + 32} values, got {len(arr)}")
    ref = Reference.learn(arr, 2 * cfg.short_window)
    w = cfg.long_window
    loo = training_residuals(arr, ref)
    rows = features(arr[:w], arr[w:], ref, w, cfg.short_window, w, residuals=loo)
    return AdsModel(cfg, ref.to_dict(), rows.tolist())


def calibrate(raw: float, threshold: float) -> float:
    """Map a raw anomaly score to [0, 1] so that the threshold lands on 0.5."""
    if raw <= threshold:
        return 0.5 * raw / threshold
    return min(1.0, 0.5 + 0.5 * (raw - threshold) / (1.0 - threshold))


class SeriesDetector:
    """Anomaly detector for one series; feed points in time order."""

    def __init__(
        self, config: AdsConfig | None = None, model: AdsModel | None = None, **overrides: Any
    ) -> None:
        cfg = config or (model.config if model else AdsConfig())
        self.config = replace(cfg, **overrides)
        self.config.check()
        self._ref: dict[str, Any] | None = model.reference if model else None
        self._reference: Any = None  # mlkit.windows.Reference built from _ref on first use
        self._rows: list[list[float]] = list(model.rows) if model else []
        self._pending: list[list[float]] = []
        self._learn_buf: list[float] = []
        keep = self.config.long_window + self.config.short_window
        self._history: deque[float] = deque(maxlen=keep)
        self._recent: deque[float] = deque(maxlen=self.config.smooth)
        self._run = self._quiet = self._since_fit = self._seen = 0
        self._open: list[Any] | None = None  # [start_ns, last_ns, max_score]
        self._forest: FlatForest | None = None
        self._threshold = 0.5
        if self._rows:
            self._fit()

    @property
    def learning(self) -> bool:
        """True until the detector has a model and a full trailing window."""
        return self._forest is None or len(self._history) < self.config.long_window

    def score(self, t_ns: int, value: float) -> Score:
        """Score one point."""
        return self.score_many([t_ns], [value])[0]

    def score_many(self, ts: Sequence[int], values: Sequence[float]) -> list[Score]:
        """Score points of this series in time order; same results as calling score() on each.

        Non-finite values are answered with a zero score and otherwise ignored.
        """
        out: list[Score] = []
        i, n, every = 0, len(values), self.config.refit_every
        while i < n:
            if self.learning:
                out.append(self._warm(ts[i], values[i]))
                i += 1
                continue
            j = min(n, i + every - self._since_fit) if every else n
            out.extend(self._score_chunk(ts[i:j], values[i:j]))
            i = j
            if every and self._since_fit >= every:
                self._refit()
        return out

    def alerts(self, ts: Sequence[int], values: Sequence[float]) -> list[int]:
        """Timestamps of the points that opened an anomalous period."""
        return [int(t) for t, s in zip(ts, self.score_many(ts, values), strict=True) if s.alert]

    # ----------------------------------------------------------------- learning and fitting

    def _warm(self, t_ns: int, value: float) -> Score:
        if not math.isfinite(value):
            return Score(0.0, False)
        self._history.append(float(value))
        self._seen += 1
        if self._forest is None:
            self._learn_buf.append(float(value))
            if len(self._learn_buf) >= self.config.learn:
                self._learn()
        return Score(0.0, False)

    def _learn(self) -> None:
        model = train_model(self._learn_buf, self.config)
        self._ref, self._rows, self._learn_buf = model.reference, model.rows, []
        self._fit()

    def _fit(self) -> None:
        """Fit the forest on the training rows and set the threshold from their scores."""
        import numpy as np

        from mlkit.iforest import fit_forest

        cfg = self.config
        rows = np.asarray(self._rows, dtype=float)
        # Learning data may hold anomalies (a sensor that already misbehaves): fit and set
        # the threshold on the rows whose level, z-score and jump look normal, if enough do.
        clean = np.all(np.abs(rows[:, :3]) <= cfg.clean_limit, axis=1)
        if clean.sum() >= len(rows) // 2:
            rows = rows[clean]
        self._forest = fit_forest(rows, cfg.n_estimators, cfg.max_samples, cfg.seed, cfg.background)
        raw = self._forest.score(rows)
        k = min(cfg.smooth, len(raw))
        smoothed = np.convolve(raw, np.ones(k) / k, mode="valid")
        self._threshold = float(min(smoothed.max() + cfg.margin, 0.999))
        self._since_fit = 0

    def _refit(self) -> None:
        """Refit on the most recent normal rows (old training rows fill up a short supply)."""
        keep = self.config.learn
        self._rows = (self._rows + self._pending)[-keep:]
        self._pending = []
        self._fit()

    # ------------------------------------------------------------------------- scoring

    def _score_chunk(self, ts: Sequence[int], values: Sequence[float]) -> list[Score]:
        import numpy as np

        from mlkit.windows import Reference, features

        vals = np.asarray(values, dtype=float)
        ok = np.isfinite(vals)
        out = [Score(0.0, False)] * len(vals)
        if not ok.any():
            return out
        good = vals[ok]
        cfg = self.config
        if self._reference is None:
            self._reference = Reference.from_dict(self._ref)
        rows = features(
            np.asarray(self._history),
            good,
            self._reference,
            cfg.long_window,
            cfg.short_window,
            self._seen,
        )
        raw = self._forest.score(rows).tolist()
        row_lists = rows.tolist()  # one conversion, not one per point
        cap = cfg.learn
        post, pending = self._post, self._pending
        for k, i in enumerate(np.flatnonzero(ok).tolist()):
            out[i] = s = post(int(ts[i]), raw[k])
            if not s.is_anomaly and self._open is None:
                pending.append(row_lists[k])
        if len(self._pending) > cap:
            del self._pending[:-cap]
        self._history.extend(good[-self._history.maxlen :].tolist())
        self._since_fit += len(good)
        self._seen += len(good)
        return out

    def _post(self, t_ns: int, raw: float) -> Score:
        """Smooth, calibrate, apply the minimum run and track the open period (per point:
        the hot loop of scoring, hence the local names)."""
        recent, threshold = self._recent, self._threshold
        recent.append(raw)
        smoothed = sum(recent) / len(recent)
        cal = calibrate(smoothed, threshold)
        self._run = self._run + 1 if smoothed > threshold else 0
        if self._run >= self.config.min_run:
            self._quiet = 0
            if self._open is None:
                self._open = [t_ns, t_ns, cal]
                return Score(cal, True, alert=True)
            self._open[1], self._open[2] = t_ns, max(self._open[2], cal)
            return Score(cal, True)
        if self._open is not None:
            self._quiet += 1
            if self._quiet >= self.config.close_after:
                period, self._open, self._quiet = Period(*self._open), None, 0
                return Score(cal, False, period=period)
        return Score(cal, False)

    # --------------------------------------------------------------------------- state

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable snapshot of everything needed to continue identically."""
        return {
            "version": STATE_VERSION,
            "config": asdict(self.config),
            "reference": self._ref,
            "rows": self._rows,
            "pending": self._pending,
            "learn_buf": self._learn_buf,
            "history": list(self._history),
            "recent": list(self._recent),
            "counters": [self._run, self._quiet, self._since_fit, self._seen],
            "open": self._open,
        }

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> SeriesDetector:
        """Rebuild a detector from to_state() output (refits the forest deterministically)."""
        if d.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported detector state version {d.get('version')!r}")
        det = cls(AdsConfig(**d["config"]))
        det._ref = d["reference"]
        det._rows = [list(r) for r in d["rows"]]
        det._pending = [list(r) for r in d["pending"]]
        det._learn_buf = list(d["learn_buf"])
        det._history.extend(d["history"])
        det._recent.extend(d["recent"])
        if det._rows:
            det._fit()
        det._run, det._quiet, det._since_fit, det._seen = d["counters"]
        det._open = list(d["open"]) if d["open"] else None
        return det
