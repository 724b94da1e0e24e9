"""Streaming anomaly detection for one series: beyond the series' own recent range.

A ``SeriesDetector`` sees the points of one series (one Kapacitor group) in time order and
watches six views of it: the value (both ways), its short mean over ``window`` points (level
shifts, drifts; both ways), its short mean absolute step (bursts of volatility) and how many
times the last value repeated (a stuck sensor). A point is anomalous when a view goes beyond
the range it showed over the last ``history`` points by ``margin`` of the range's width AND
lies ``min_sigma`` standard deviations from the view's mean over those points. The range's
edge is the second-highest of its block maxima (RANKS; the fourth for repeats), so one odd
block does not widen it; a run of repeats must also be over twice the edge's run.
This calibrates every series against its own recent behaviour: for exchangeable data a point
beyond all but one block of ``history`` points has probability about ``2 / history``, whatever
the series' scale or distribution, so one threshold means the same thing on every series;
``min_sigma`` keeps fresh noise from setting records. Scoring starts after ``learn`` points;
learning never stops (the range slides).

Alerts: anomalous points form a period that closes after ``close_after`` normal points; the
point opening a period raises one alert unless the series alerted less than ``min_gap``
points before. With ``confirm`` > 1 a period alerts only once it has ``confirm`` anomalous
points within a block (``BLOCK`` points), unless a point goes beyond the highest block
maximum of the range (a new record): on the corpus, single points that set no record were
a third of the false alerts and a tenth of the first alerts in labelled windows.

A sustained change (the short mean staying outside its old range for ``relearn`` points
after an alert) becomes the new normal: the range is rebuilt from the points since the
alert, so the change is reported once and then forgotten.

Speed: the range is kept as maxima and moments of blocks of ``BLOCK`` points (the window is
the last ``history // BLOCK`` full blocks plus the current one), so a batch of points is
scored with a few numpy operations per block and a short per-point loop for the alert state
only. Moments are taken about the series' first value, so a large offset costs no precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

from mlkit.ads_config import BLOCK, AdsConfig

STATE_VERSION = 3
CHANNELS = 6  # value, -value, short mean, -short mean, short volatility, repeats
# The range's edge is the RANKS-th highest block maximum of each view: the second-highest, so
# one odd block (an earlier spike) does not widen it; for the repeats view the fourth-highest,
# since long runs are normal only where many blocks show them (quantised readings), while a
# sensor that got stuck twice lately is still faulty the third time.
RANKS = np.array([2, 2, 2, 2, 2, 4])
RUN_MARGIN = 1.0  # a run of repeats counts past twice the range's longest run (_margins)
_EMPTY = -math.inf


class Period(NamedTuple):
    """A closed anomalous period: first and last anomalous point, highest score."""

    start_ns: int
    end_ns: int
    max_score: float


@dataclass
class Scored:
    """Results for a call's points, by position in the call (non-finite values score 0)."""

    scores: list[float] = field(default_factory=list)
    anomalous: list[bool] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)  # positions that raised an alert
    periods: dict[int, Period] = field(default_factory=dict)  # position that closed a period


@dataclass
class _Pending:
    """A period waiting for `confirm` anomalous points (AdsConfig.confirm)."""

    flagged: int
    age: int
    high: list[float]  # the range before its first point, for the re-learn watch


@dataclass
class _Watch:
    """A change under watch after an alert: the short mean's range before it."""

    low: float
    high: float
    age: int = 0
    since: list[float] = field(default_factory=lambda: [_EMPTY] * CHANNELS)
    rows: list[list[float]] = field(default_factory=list)  # the points since the alert


class SeriesDetector:
    """Anomaly detector for one series; feed points in time order."""

    def __init__(self, config: AdsConfig | None = None, **overrides: Any) -> None:
        self.config = replace(config or AdsConfig(), **overrides)
        self.config.check()
        cfg = self.config
        self._blocks = _Blocks(cfg.history // BLOCK)
        self._full = np.full(CHANNELS, _EMPTY)  # the range's edge over the full blocks
        self._top = np.full(CHANNELS, _EMPTY)  # the highest block maxima (records)
        # the current block's points: its moments are summed once it is full, over the same
        # rows in the same order however the stream was split into calls (bit-exact results)
        self._part_rows = np.empty((0, CHANNELS))
        self._centre = np.zeros(CHANNELS)
        self._scale = np.full(CHANNELS, np.inf)
        self._part = [_EMPTY] * CHANNELS  # max of the current block
        self._part_n = 0
        self._tail: list[float] = []  # last window - 1 values
        self._repeats = 0  # how many times the last value repeated the one before
        self._steps: list[float] = []  # last window - 1 absolute steps
        self._seen = 0
        self._shift = np.zeros(CHANNELS)  # the first value on the value and mean views
        self._open: list[Any] | None = None  # [start_ns, last_ns, max_score]
        self._quiet = 0
        self._since_alert = cfg.min_gap  # the first alert is never held back
        self._watch: _Watch | None = None
        self._pending: _Pending | None = None
        self._watched_from = 0  # where, in the segment being scored, a new watch began
        self._margins = _margins(cfg.margin)

    @property
    def learning(self) -> bool:
        """True until the detector has seen `learn` points."""
        return self._seen < self.config.learn

    # ------------------------------------------------------------------------- scoring

    def score_many(self, ts: Sequence[int], values: Sequence[float]) -> Scored:
        """Score points of this series in time order; a batch gives the same results as
        one call per point. Non-finite values score 0 and are otherwise ignored."""
        vals = np.asarray(values, dtype=float)
        out = Scored([0.0] * len(vals), [False] * len(vals))
        positions = np.flatnonzero(np.isfinite(vals))
        if len(positions) == len(vals):
            self._score_finite(ts, vals, out, None)
        elif len(positions):
            self._score_finite([ts[i] for i in positions.tolist()], vals[positions], out,
                               positions.tolist())
        return out

    def alerts(self, ts: Sequence[int], values: Sequence[float]) -> list[int]:
        """Timestamps of the points that raised an alert."""
        return [int(ts[i]) for i in self.score_many(ts, values).alerts]

    def _score_finite(self, ts: Sequence[int], vals: np.ndarray, out: Scored,
                      positions: list[int] | None) -> None:
        if not self._seen:
            origin = float(vals[0])
            self._shift = np.array([origin, -origin, origin, -origin, 0.0, 0.0])
        channels = self._channels(vals)
        i, n = 0, len(vals)
        while i < n:
            j = min(n, i + BLOCK - self._part_n)
            if self.learning:
                j = min(j, i + self.config.learn - self._seen)
                self._absorb(channels[i:j])
            else:
                j = self._score_segment(ts, channels, i, j, out, positions)
            i = j

    def _channels(self, vals: np.ndarray) -> np.ndarray:
        """The watched views of each value (n x CHANNELS), continuing the stream."""
        w = self.config.window
        prev = self._tail[-1:] if self._tail else vals[:1].tolist()
        steps = np.abs(np.diff(np.concatenate([prev, vals])))
        same = steps == 0
        if not self._tail:
            same[0] = False
        idx = np.arange(len(vals))
        reset = np.maximum.accumulate(np.where(same, -1, idx))
        runs = np.where(reset >= 0, idx - reset, self._repeats + idx + 1).astype(float)
        self._repeats = int(runs[-1])
        mean = _trailing_mean(self._tail, vals, w)
        vol = _trailing_mean(self._steps, steps, w)
        self._tail = (self._tail + vals[-(w - 1):].tolist())[-(w - 1):] if w > 1 else []
        self._steps = (self._steps + steps[-(w - 1):].tolist())[-(w - 1):] if w > 1 else []
        return np.column_stack([vals, -vals, mean, -mean, vol, runs])

    def _absorb(self, channels: np.ndarray, watched_from: int = 0) -> None:
        """Add points to the range (the current block, closing it when full); those from
        `watched_from` on also to the range of a change under watch."""
        if not len(channels):
            return
        self._part = np.maximum(self._part, channels.max(axis=0)).tolist()
        self._part_rows = np.vstack([self._part_rows, channels])
        self._part_n += len(channels)
        self._seen += len(channels)
        watch = self._watch
        if watch is not None and watched_from < len(channels):
            since = channels[watched_from:]
            watch.since = np.maximum(watch.since, since.max(axis=0)).tolist()
            watch.rows.extend(since.tolist())
        if self._part_n == BLOCK:
            self._blocks.push(self._part, _moments(self._part_rows - self._shift))
            self._part, self._part_n = [_EMPTY] * CHANNELS, 0
            self._part_rows = np.empty((0, CHANNELS))
            self._update_range()

    def _update_range(self) -> None:
        """The range's edge, mean and deviation over the full blocks."""
        self._full = self._blocks.edge()
        self._top = self._blocks.top()
        total = self._blocks.moments_total()
        if total[0] < 2:
            self._centre, self._scale = np.zeros(CHANNELS), np.full(CHANNELS, np.inf)
            return
        self._centre = total[1:1 + CHANNELS] / total[0]
        variance = total[1 + CHANNELS:] / total[0] - self._centre**2
        self._scale = np.sqrt(np.maximum(variance, 0.0))

    def _score_segment(self, ts: Sequence[int], channels: np.ndarray, i: int, j: int, out: Scored,
                       positions: list[int] | None) -> int:
        """Score channels[i:j] (within one block); returns where scoring stopped (j, or
        the point after a re-learn, whose range changed)."""
        seg = channels[i:j]
        before = np.maximum.accumulate(np.vstack([self._part, seg[:-1]]), axis=0)
        high = np.maximum(before, self._full)  # the range's maxima before each point
        # ... but runs of repeats against the full blocks only: the current block holds the
        # current run's own counts, which would ratchet its edge up one step behind it
        high[:, 5] = max(self._full[5], 0.0)
        span = np.column_stack([high[:, 0] + high[:, 1], high[:, 0] + high[:, 1],
                                high[:, 2] + high[:, 3], high[:, 2] + high[:, 3], high[:, 4],
                                high[:, 5]])
        cfg = self.config
        margin = self._margins
        deviation = seg - self._shift - self._centre
        beyond = (seg > high + margin * span) & (deviation >= cfg.min_sigma * self._scale)
        beyond[:, 5] &= seg[:, 5] >= cfg.stuck_after
        flags = beyond.any(axis=1)
        confirming = cfg.confirm > 1 and flags.any()  # records matter only where flagged
        records = self._records(seg, before, span, beyond) if confirming else flags
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (seg - high + span) / ((1.0 + margin) * span)
        ratio = np.where(span > 0, ratio, np.where(seg > high, 2.0, 0.0))
        scores = np.clip(0.5 * ratio.max(axis=1), 0.0, 1.0)
        self._watched_from = 0
        stop = self._track(ts, seg, high, flags, records, scores, i, out, positions)
        self._absorb(seg[: stop - i], self._watched_from)
        if stop < j:
            self._relearn()
        return stop

    def _records(self, seg: np.ndarray, before: np.ndarray, span: np.ndarray,
                 beyond: np.ndarray) -> np.ndarray:
        """Anomalous points that also go beyond the highest block maximum (a run of repeats:
        beyond twice the longest run) by the margin: they alert without confirmation."""
        top = np.maximum(before, self._top)
        top[:, 5] = max(self._top[5], 0.0)
        reach = span.copy()
        reach[:, 5] = top[:, 5]
        return (beyond & (seg > top + self._margins * reach)).any(axis=1)

    def _track(self, ts, seg, high, flags, records, scores, i, out, positions) -> int:
        """Periods, alerts and the re-learn watch, point by point (the hot loop: only
        the alert state lives here). Returns the point after a re-learn, else the end."""
        cfg = self.config
        flag_list, score_list = flags.tolist(), scores.tolist()
        record_list = records.tolist()
        if (self._open is None and self._watch is None and self._pending is None
                and not any(flag_list)):
            base = i
            if positions is None:
                out.scores[base:base + len(score_list)] = score_list
            else:
                for k, s in enumerate(score_list):
                    out.scores[positions[base + k]] = s
            self._since_alert += len(score_list)
            return i + len(score_list)
        for k, (flag, score) in enumerate(zip(flag_list, score_list, strict=True)):
            at = i + k if positions is None else positions[i + k]
            out.scores[at], out.anomalous[at] = score, flag
            self._since_alert += 1
            if flag:
                self._quiet = 0
                if self._open is None:
                    self._open = [int(ts[i + k]), int(ts[i + k]), score]
                    if self._since_alert > cfg.min_gap:
                        self._pending = _Pending(0, 0, high[k].tolist())
                else:
                    self._open[1], self._open[2] = int(ts[i + k]), max(self._open[2], score)
                pending = self._pending
                if pending is not None:
                    pending.flagged += 1
                    if record_list[k] or pending.flagged >= cfg.confirm:
                        self._alert(out, at, pending.high, k)
            elif self._open is not None:
                self._quiet += 1
                if self._quiet >= cfg.close_after:
                    out.periods[at] = Period(*self._open)
                    self._open, self._quiet = None, 0
            if self._pending is not None:
                self._pending.age += 1
                if self._pending.age >= BLOCK:  # not confirmed within a block: no alert
                    self._pending = None
            if self._watch is not None and self._watching(seg[k]):
                return i + k + 1
        return i + len(flag_list)

    def _alert(self, out: Scored, at: int, high: list[float], k: int) -> None:
        """Raise the alert of the open period at position `at` (k in the segment)."""
        out.alerts.append(at)
        self._since_alert, self._pending = 0, None
        if self.config.relearn:  # watch the short mean against its range before the period
            self._watch = _Watch(low=-high[3], high=high[2])
            self._watched_from = k

    # ------------------------------------------------------------------------ re-learning

    def _watching(self, channels: np.ndarray) -> bool:
        """Age the watch by one point; True when the change has lasted `relearn` points."""
        watch, cfg = self._watch, self.config
        watch.age += 1
        mean = float(channels[2])
        inside = watch.low <= mean <= watch.high
        if inside and watch.age > cfg.window:  # back to the old normal: a transient
            self._watch = None
            return False
        return watch.age >= cfg.relearn

    def _relearn(self) -> None:
        """The points since the alert are the new normal: forget the range before it."""
        watch = self._watch
        self._blocks.clear()
        self._blocks.push(watch.since, _moments(np.asarray(watch.rows) - self._shift))
        self._update_range()
        self._watch = None

    # --------------------------------------------------------------------------- state

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable snapshot of everything needed to continue identically."""
        watch, pending = self._watch, self._pending
        return {
            "version": STATE_VERSION,
            "config": asdict(self.config),
            "blocks": [_json_floats(b) for b in self._blocks.maxima_in_order()],
            "moments": self._blocks.moments_in_order().tolist(),
            "part": _json_floats(self._part),
            "part_rows": self._part_rows.tolist(),
            "part_n": self._part_n,
            "tail": self._tail,
            "repeats": self._repeats,
            "steps": self._steps,
            "seen": self._seen,
            "shift": self._shift.tolist(),
            "open": self._open,
            "quiet": self._quiet,
            "since_alert": self._since_alert,
            "watch": None if watch is None else
            [watch.low, watch.high, watch.age, _json_floats(watch.since), watch.rows],
            "pending": None if pending is None else
            [pending.flagged, pending.age, _json_floats(pending.high)],
        }

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> SeriesDetector:
        """Rebuild a detector from to_state() output."""
        if d.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported detector state version {d.get('version')!r}")
        det = cls(AdsConfig(**d["config"]))
        for maxima, moments in zip(d["blocks"], d["moments"], strict=True):
            det._blocks.push(_floats(maxima), moments)
        det._update_range()
        det._part, det._part_n = _floats(d["part"]), int(d["part_n"])
        det._part_rows = np.asarray(d["part_rows"], dtype=float).reshape(-1, CHANNELS)
        det._repeats = int(d["repeats"])
        det._tail, det._steps = [float(v) for v in d["tail"]], [float(v) for v in d["steps"]]
        det._seen, det._quiet = int(d["seen"]), int(d["quiet"])
        det._shift = np.asarray(d["shift"], dtype=float)
        det._since_alert = int(d["since_alert"])
        det._open = list(d["open"]) if d["open"] else None
        if d["watch"]:
            low, high, age, since, rows = d["watch"]
            det._watch = _Watch(float(low), float(high), int(age), _floats(since),
                                [[float(v) for v in row] for row in rows])
        if d.get("pending"):  # absent from snapshots taken before `confirm`
            flagged, age, high = d["pending"]
            det._pending = _Pending(int(flagged), int(age), _floats(high))
        return det


class _Blocks:
    """The last full blocks of the range: per block the channel maxima and the moments
    (count, channel sums, channel sums of squares), in a ring of fixed capacity."""

    def __init__(self, capacity: int) -> None:
        self.maxima = np.full((capacity, CHANNELS), _EMPTY)
        self.moments = np.zeros((capacity, 1 + 2 * CHANNELS))
        self.count = self.head = 0

    def push(self, maxima: Sequence[float], moments: Sequence[float]) -> None:
        self.maxima[self.head], self.moments[self.head] = maxima, moments
        self.head = (self.head + 1) % len(self.maxima)
        self.count = min(self.count + 1, len(self.maxima))

    def clear(self) -> None:
        self.count = self.head = 0

    def edge(self) -> np.ndarray:
        """Per channel, the RANKS-th highest block maximum (the lowest while there are fewer
        blocks), so that odd blocks do not widen the range."""
        if not self.count:
            return np.full(CHANNELS, _EMPTY)
        ordered = np.sort(self.maxima[: self.count], axis=0)
        return ordered[np.maximum(self.count - RANKS, 0), np.arange(CHANNELS)]

    def top(self) -> np.ndarray:
        """Per channel, the highest block maximum."""
        if not self.count:
            return np.full(CHANNELS, _EMPTY)
        return self.maxima[: self.count].max(axis=0)

    def moments_total(self) -> np.ndarray:
        return self.moments[: self.count].sum(axis=0)

    def _in_order(self, rows: np.ndarray) -> np.ndarray:
        if self.count < len(rows):
            return rows[: self.count]
        return np.concatenate([rows[self.head:], rows[: self.head]])

    def maxima_in_order(self) -> np.ndarray:
        return self._in_order(self.maxima)

    def moments_in_order(self) -> np.ndarray:
        return self._in_order(self.moments)


def _margins(margin: float) -> np.ndarray:
    """How far beyond its range each view must go, as a fraction of the range's width. The
    repeats view is a counter: where values are quantised, runs of repeats are normal and a
    run a little longer than the longest recent one is no news, so a stuck sensor must repeat
    for over twice as long (on the NAB corpus, with a 5% margin, this view had raised 34 false
    alerts against 6 in labelled windows; the corpus figures now: README, `make nab`)."""
    return np.array([margin] * (CHANNELS - 1) + [RUN_MARGIN])


def _moments(channels: np.ndarray) -> np.ndarray:
    """Count, sums and sums of squares of channel rows."""
    return np.concatenate([[len(channels)], channels.sum(axis=0), (channels**2).sum(axis=0)])


def _trailing_mean(tail: list[float], vals: np.ndarray, w: int) -> np.ndarray:
    """Mean of each value with the w - 1 before it (fewer at the stream's very start).

    Each full window is summed column by column, in the same order whatever the call's length
    (a running cumsum would depend on where the stream was split), so results are bit-exact."""
    z = np.concatenate([tail, vals])
    first = len(tail)  # z's index of vals[0]; below w - 1 only at the stream's start
    out = np.empty(len(vals))
    head = max(0, min(len(vals), w - 1 - first))  # points with fewer than w values so far
    if head:  # z then holds the whole stream, so these prefix sums are always the same
        out[:head] = np.cumsum(z[: first + head])[first:] / np.arange(first + 1, first + head + 1)
    if head < len(vals):
        windows = np.lib.stride_tricks.sliding_window_view(z, w)[first + head - (w - 1):]
        total = windows[:, 0].copy()
        for k in range(1, w):
            total += windows[:, k]
        out[head:] = total / w
    return out


def _json_floats(values: Sequence[float]) -> list[float | None]:
    """Floats for JSON: an empty maximum (-inf) is stored as null."""
    return [None if v == _EMPTY else float(v) for v in values]


def _floats(values: Sequence[float | None]) -> list[float]:
    return [_EMPTY if v is None else float(v) for v in values]
