"""Streaming anomaly detection for a fleet of series: each against its own recent range.

Method. Every series (one Kapacitor group) is watched through six views (``View``): its
value both ways, its short mean over ``window`` points both ways (level shifts, drifts),
its short mean absolute step (bursts of volatility) and how many times the last value
repeated (a stuck sensor). A point is anomalous when a view goes beyond the range it
showed over the last ``history`` points by ``margin`` of the range's width AND lies
``min_sigma`` standard deviations from the view's mean over those points. The range's edge
is the second-highest of its block maxima (``RANKS``; the fourth for repeats), so one odd
block does not widen it; a run of repeats must also be over twice the edge's run. For
exchangeable data a point beyond all but one block of ``history`` points has probability
about ``2 / history`` whatever the series' scale or distribution, so one threshold means
the same on every series. Scoring starts after ``learn`` points; learning never stops.

Alerts (``AlertState``): anomalous points form a period that closes after ``close_after``
normal points; the point opening a period raises one alert unless the series alerted less
than ``min_gap`` points before. With ``confirm`` > 1 a period alerts only once it has
``confirm`` anomalous points within a block, unless a point sets a new record (goes beyond
the highest block maximum). A sustained change (the short mean outside its old range for
``relearn`` points after an alert) becomes the new normal: the range is rebuilt from the
points since the alert. A change due on the last point of a block is taken one point later:
the detector always did so, and its results are kept bit for bit.

Layout. The range is kept as per-block maxima and moments (count, sums and sums of squares
about the series' first value, so a large offset costs no precision) of ``BLOCK`` points.
``FleetDetector`` holds every series' state as arrays indexed by a slot (one row per
series) and scores a chunk of points of many series in rounds: each round takes at most the
rest of the current block of each series present, so a fleet chunk (one point per series) is
one round of numpy operations over all its series, and a long chunk of one series is a few
rounds over blocks. Only series in or near an anomalous period go through the per-point
alert state machine in Python. Every sum is taken in stream order, one point after another,
so the results do not depend on how the stream was split into chunks or interleaved.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np

from mlkit.ads_config import BLOCK, AdsConfig
from udfkit import snapshot

STATE_VERSION = 4
"""Format of FleetDetector.to_bytes(); SeriesDetector state of format 3 (JSON) still loads."""


class View(IntEnum):
    """The views a series is watched through; each is a column of the view arrays."""

    SPIKE_UP = 0  # the value
    SPIKE_DOWN = 1  # the negated value
    LEVEL_UP = 2  # the short mean
    LEVEL_DOWN = 3  # the negated short mean
    VOLATILITY = 4  # the short mean absolute step
    STUCK = 5  # how many times the last value repeated


VIEWS = len(View)
# The range's edge is the RANKS-th highest block maximum of each view: the second-highest, so
# one odd block (an earlier spike) does not widen it; for repeats the fourth-highest, since
# long runs are normal only where many blocks show them (quantised readings), while a sensor
# that got stuck twice lately is still faulty the third time.
RANKS = np.array([2, 2, 2, 2, 2, 4])
# How far beyond its range each view must go, as a fraction of the range's width: `margin`,
# but a run of repeats must be over twice the range's longest (where values are quantised,
# a run a little longer than before is no news).
RUN_MARGIN = 1.0
MOMENTS = 1 + 2 * VIEWS  # count, sums, sums of squares
FLEET_ROUND = 256
"""With this many series in a round, a point of each per round (the short path) is cheaper
than their segments padded to the longest."""


class Explanation(NamedTuple):
    """What an anomalous point was seen as: the view that went furthest beyond its range,
    how many of that view's deviations it lay from the view's recent mean, and the normal
    range it left, in the field's unit (the short mean's range for level views, the step
    size's for volatility, the value's otherwise)."""

    view: str  # a View's name, lower case: spike_up, ..., stuck
    sigma: float
    normal_low: float
    normal_high: float


SIGMA_CAP = 1e9
"""anomaly_sigma of a view that had not varied at all (no deviation to count in)."""


class Period(NamedTuple):
    """A closed anomalous period: first and last anomalous point, highest score, and the
    explanation of the point with that score."""

    start_ns: int
    end_ns: int
    max_score: float
    explanation: Explanation | None = None


@dataclass
class Scored:
    """Results for a call's points, by position in the call (non-finite values score 0)."""

    scores: list[float] = field(default_factory=list)
    anomalous: list[bool] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)  # positions that raised an alert
    periods: dict[int, Period] = field(default_factory=dict)  # position that closed a period
    explanations: dict[int, Explanation] = field(default_factory=dict)  # anomalous points


@dataclass
class FleetScored:
    """Scored, as arrays: what FleetDetector.score_and_learn() returns."""

    scores: np.ndarray
    anomalous: np.ndarray
    alerts: list[int] = field(default_factory=list)
    periods: dict[int, Period] = field(default_factory=dict)
    explanations: dict[int, Explanation] = field(default_factory=dict)  # anomalous points


class Segment(NamedTuple):
    """One series' points of a round that go through its alert state machine, as lists:
    their positions in the call, times, flags, records, scores, short means (LEVEL_UP) and
    the parts of their explanations (view, sigma, normal low and high)."""

    positions: list[int]
    stamps: list[int]
    flags: list[bool]
    records: list[bool]
    scores: list[float]
    levels: list[float]
    why: list[list[Any]]


@dataclass
class Pending:
    """An open period waiting for `confirm` anomalous points before it alerts."""

    flagged: int
    age: int
    high: list[float]  # the range before its first point, for the re-learn watch


@dataclass
class Watch:
    """A change under watch after an alert: the short mean's range before it, and the
    points since the alert (the new normal if the change lasts)."""

    low: float
    high: float
    age: int = 0
    since: list[float] = field(default_factory=lambda: [-np.inf] * VIEWS)
    rows: list[list[float]] = field(default_factory=list)


@dataclass
class AlertState:
    """The alert state machine of one series while it is in or near an anomalous period
    (a series with none of these has no AlertState)."""

    open: list[Any] | None = None  # [start_ns, last_ns, max_score, explanation of it]
    quiet: int = 0  # normal points since the open period's last anomalous one
    pending: Pending | None = None
    watch: Watch | None = None

    @property
    def idle(self) -> bool:
        return self.open is None and self.pending is None and self.watch is None

    def step(self, config: AdsConfig, flag: bool, record: bool, score: float, t: int,
             high: np.ndarray, since_alert: int, why: Explanation | None = None
             ) -> tuple[bool, Period | None]:
        """One scored point; since_alert counts it. Returns (alerts here, period closed)."""
        alert, closed = False, None
        if flag:
            self.quiet = 0
            if self.open is None:
                self.open = [t, t, score, why]
                if since_alert > config.min_gap:
                    self.pending = Pending(0, 0, high.tolist())
            else:
                if score > self.open[2]:
                    self.open[3] = why
                self.open[1], self.open[2] = t, max(self.open[2], score)
            pending = self.pending
            if pending is not None:
                pending.flagged += 1
                if record or pending.flagged >= config.confirm:
                    alert, self.pending = True, None
                    if config.relearn:  # watch the short mean against its range before
                        self.watch = Watch(low=-pending.high[View.LEVEL_DOWN],
                                           high=pending.high[View.LEVEL_UP])
        elif self.open is not None:
            self.quiet += 1
            if self.quiet >= config.close_after:
                closed, self.open, self.quiet = Period(*self.open), None, 0
        if self.pending is not None:
            self.pending.age += 1
            if self.pending.age >= BLOCK:  # not confirmed within a block: no alert
                self.pending = None
        return alert, closed

    def change_lasted(self, config: AdsConfig, mean: float) -> bool:
        """Age the watch by one point; True once the change has lasted `relearn` points
        (back inside the old range after `window` points, it was a transient: dropped)."""
        watch = self.watch
        assert watch is not None
        watch.age += 1
        if watch.low <= mean <= watch.high and watch.age > config.window:
            self.watch = None
            return False
        return watch.age >= config.relearn

    def to_json(self) -> list[Any]:
        watch, pending = self.watch, self.pending
        opened = None if self.open is None else \
            [*self.open[:3], None if self.open[3] is None else list(self.open[3])]
        return [opened, self.quiet,
                None if pending is None else [pending.flagged, pending.age, pending.high],
                None if watch is None else [watch.low, watch.high, watch.age, watch.since,
                                            watch.rows]]

    @classmethod
    def from_json(cls, data: list[Any]) -> AlertState:
        opened, quiet, pending, watch = data
        return cls(None if opened is None else _open_period(opened), int(quiet),
                   None if pending is None else Pending(int(pending[0]), int(pending[1]),
                                                        _floats(pending[2])),
                   None if watch is None else Watch(float(watch[0]), float(watch[1]),
                                                    int(watch[2]), _floats(watch[3]),
                                                    [_floats(row) for row in watch[4]]))


class FleetDetector:
    """The detector's state for many series, one row per slot; slots come from the caller
    (udfkit.groups.GroupTable in the UDF) and grow as needed. Each array below has one row
    per slot (what a row holds: _layout)."""

    seen: np.ndarray
    since_alert: np.ndarray
    repeats: np.ndarray
    last: np.ndarray
    origin: np.ndarray
    tail: np.ndarray
    steps: np.ndarray
    part: np.ndarray
    part_sum: np.ndarray
    part_sq: np.ndarray
    part_n: np.ndarray
    edge: np.ndarray
    top: np.ndarray
    centre: np.ndarray
    scale: np.ndarray
    head: np.ndarray
    count: np.ndarray
    maxima: np.ndarray
    moments: np.ndarray
    alerting_now: np.ndarray

    def __init__(self, config: AdsConfig | None = None, capacity: int = 16) -> None:
        self.config = config or AdsConfig()
        self.config.check()
        self.margins = np.array([self.config.margin] * (VIEWS - 1) + [RUN_MARGIN])
        self.blocks = self.config.history // BLOCK
        self.capacity = 0
        self.alerting: dict[int, AlertState] = {}
        self._grow(capacity)

    # ------------------------------------------------------------------------- layout

    def _layout(self) -> dict[str, tuple[tuple[int, ...], Any, float]]:
        """Per-slot arrays: name -> (shape of one row, dtype, value of a fresh series)."""
        w, views = self.config.window - 1, VIEWS
        return {
            "seen": ((), np.int64, 0),  # finite points so far
            "since_alert": ((), np.int64, self.config.min_gap),  # the first never waits
            "repeats": ((), np.int64, 0),  # how many times the last value repeated
            "last": ((), np.float64, 0.0),  # the last value
            "origin": ((), np.float64, 0.0),  # the first value: moments are about it
            "tail": ((w,), np.float64, 0.0),  # the last window - 1 values (0 before any)
            "steps": ((w,), np.float64, 0.0),  # ... and absolute steps
            "part": ((views,), np.float64, -np.inf),  # the current block's maxima
            "part_sum": ((views,), np.float64, 0.0),  # ... its sums about the origin
            "part_sq": ((views,), np.float64, 0.0),  # ... and sums of squares
            "part_n": ((), np.int64, 0),  # ... and how many points it has
            "edge": ((views,), np.float64, -np.inf),  # the range's edge (full blocks)
            "top": ((views,), np.float64, -np.inf),  # the highest block maxima (records)
            "centre": ((views,), np.float64, 0.0),  # mean over the full blocks
            "scale": ((views,), np.float64, np.inf),  # standard deviation over them
            "head": ((), np.int64, 0),  # the next block's place in the ring
            "count": ((), np.int64, 0),  # full blocks in the ring
            "maxima": ((self.blocks, views), np.float64, 0.0),  # only the first count used
            "moments": ((self.blocks, MOMENTS), np.float64, 0.0),
            "alerting_now": ((), np.bool_, False),  # has an AlertState (self.alerting)
        }

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """Every per-slot array by name."""
        return {name: getattr(self, name) for name in self._layout()}

    def _grow(self, capacity: int) -> None:
        """Room for `capacity` slots; new rows hold a fresh series."""
        old = self.capacity
        for name, (shape, dtype, fresh) in self._layout().items():
            grown = np.zeros((capacity, *shape), dtype=dtype) if fresh == 0 else \
                np.full((capacity, *shape), fresh, dtype=dtype)
            if old:
                grown[:old] = getattr(self, name)
            setattr(self, name, grown)
        self.capacity = capacity

    def reserve(self, slots: int) -> None:
        """Make room for slots 0 .. slots - 1 (doubling, so growth is amortised)."""
        if slots > self.capacity:
            self._grow(max(slots, 2 * self.capacity))

    def forget(self, slots: Sequence[int]) -> None:
        """Slots whose series are gone: a new series may take them, fresh."""
        if not len(slots):
            return
        rows = np.asarray(slots, dtype=np.int64)
        for name, (_, _, fresh) in self._layout().items():
            if name not in ("maxima", "moments"):  # used only up to `count`
                getattr(self, name)[rows] = fresh
        for slot in rows.tolist():
            self.alerting.pop(slot, None)

    def nbytes_per_series(self) -> int:
        return sum(a[0].nbytes for a in self.arrays.values())

    # ------------------------------------------------------------------------ scoring

    def score_and_learn(self, slots: Sequence[int] | np.ndarray, ts: Sequence[int] | np.ndarray,
                        values: Sequence[float] | np.ndarray) -> FleetScored:
        """Score points of many series (slot of each point) in their order, and learn from
        them. Non-finite values score 0 and are otherwise ignored."""
        slot_of = np.asarray(slots, dtype=np.int64)
        times = np.asarray(ts, dtype=np.int64)
        vals = np.asarray(values, dtype=np.float64)
        out = FleetScored(np.zeros(len(vals)), np.zeros(len(vals), dtype=bool))
        if len(slot_of):
            self.reserve(int(slot_of.max()) + 1)
        keep = np.flatnonzero(np.isfinite(vals))
        order = keep[np.argsort(slot_of[keep], kind="stable")]
        if not len(order):
            return out
        ordered = slot_of[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        series, counts = ordered[starts], np.diff(np.r_[starts, len(order)])
        done = np.zeros(len(series), dtype=np.int64)
        while True:
            active = np.flatnonzero(done < counts)
            if not len(active):
                return out
            lengths = self._segment_lengths(series[active], counts[active] - done[active])
            if len(active) >= FLEET_ROUND:
                lengths = np.minimum(lengths, 1)
            for group in _by_length(lengths):
                a = active[group]
                done[a] += self._round(series[a], order, starts[a] + done[a], lengths[group],
                                       times, vals, out)

    def _segment_lengths(self, slots: np.ndarray, left: np.ndarray) -> np.ndarray:
        """Points each series takes this round: to the end of its block (or of learning)."""
        room = BLOCK - self.part_n[slots]
        seen = self.seen[slots]
        learning = seen < self.config.learn
        room = np.where(learning, np.minimum(room, self.config.learn - seen), room)
        return np.minimum(left, room)

    def _round(self, slots: np.ndarray, order: np.ndarray, begin: np.ndarray,
               lengths: np.ndarray, times: np.ndarray, vals: np.ndarray,
               out: FleetScored) -> np.ndarray:
        """One segment of each series in `slots`; returns how many points each consumed
        (fewer than its length where a change became the new normal)."""
        width = int(lengths.max())
        col = np.arange(width)
        inside = col < lengths[:, None]
        at = order[np.where(inside, begin[:, None] + col, begin[:, None])]
        v = vals[at]
        fresh = self.seen[slots] == 0
        if fresh.any():
            self.origin[slots[fresh]] = v[fresh, 0]
        views, vals_z, steps_z, runs = self._views(slots, v)
        consumed, relearn = lengths.copy(), np.zeros(len(slots), dtype=bool)
        scoring = np.flatnonzero(self.seen[slots] >= self.config.learn)
        if len(scoring):
            self._score(slots, scoring, views, inside, at, times, out, consumed, relearn)
        self._commit_views(slots, v, vals_z, steps_z, runs, consumed)
        self._absorb(slots, views, consumed)
        for r in np.flatnonzero(relearn).tolist():
            self._relearn(int(slots[r]))
        return consumed

    def _views(self, slots: np.ndarray, v: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The six views of each point (series x point x view), continuing each series."""
        w = self.config.window
        seen = self.seen[slots]
        has_prev = seen > 0
        prev = np.where(has_prev, self.last[slots], v[:, 0])
        steps = np.abs(np.diff(np.concatenate([prev[:, None], v], axis=1), axis=1))
        same = steps == 0
        same[:, 0] &= has_prev
        col = np.arange(v.shape[1])
        reset = np.maximum.accumulate(np.where(same, -1, col), axis=1)
        runs = np.where(reset >= 0, col - reset,
                        self.repeats[slots][:, None] + col + 1).astype(np.float64)
        count = np.minimum(seen[:, None] + col + 1, w).astype(np.float64)
        vals_z = np.concatenate([self.tail[slots], v], axis=1)
        steps_z = np.concatenate([self.steps[slots], steps], axis=1)
        mean = _window_sums(vals_z, w) / count
        volatility = _window_sums(steps_z, w) / count
        views = np.stack([v, -v, mean, -mean, volatility, runs], axis=2)
        return views, vals_z, steps_z, runs

    def _commit_views(self, slots: np.ndarray, v: np.ndarray, vals_z: np.ndarray,
                      steps_z: np.ndarray, runs: np.ndarray, consumed: np.ndarray) -> None:
        """Keep what the next points' views need, up to the last consumed point."""
        if v.shape[1] == 1:  # a fleet's call: every series took its one point
            self.tail[slots], self.steps[slots] = vals_z[:, 1:], steps_z[:, 1:]
            self.last[slots], self.repeats[slots] = v[:, 0], runs[:, 0]
            return
        rows = np.arange(len(slots))
        last = consumed - 1
        keep = consumed[:, None] + np.arange(self.config.window - 1)
        self.tail[slots] = vals_z[rows[:, None], keep]
        self.steps[slots] = steps_z[rows[:, None], keep]
        self.last[slots] = v[rows, last]
        self.repeats[slots] = runs[rows, last].astype(np.int64)

    def _shift(self, slots: np.ndarray) -> np.ndarray:
        """Per series, what the moments are taken about (the first value, on value views)."""
        o = self.origin[slots]
        zero = np.zeros_like(o)
        return np.stack([o, -o, o, -o, zero, zero], axis=1)

    def _score(self, slots: np.ndarray, rows: np.ndarray, all_views: np.ndarray,
               all_inside: np.ndarray, all_at: np.ndarray, times: np.ndarray,
               out: FleetScored, consumed: np.ndarray, relearn: np.ndarray) -> None:
        """Scores and flags of the series past learning (`rows` of this round), then the
        alert state machine for those that need it."""
        cfg, margins = self.config, self.margins
        s = slots[rows]
        views, inside, at = all_views[rows], all_inside[rows], all_at[rows]
        edge, top = self.edge[s][:, None], self.top[s][:, None]
        before = np.maximum.accumulate(
            np.concatenate([self.part[s][:, None], views[:, :-1]], axis=1), axis=1)
        high = np.maximum(before, edge)
        # runs of repeats against the full blocks only: the current block holds the current
        # run's own counts, which would ratchet its edge up one step behind it
        high[..., View.STUCK] = np.maximum(edge[..., View.STUCK], 0.0)
        span = _spans(high)
        deviation = views - self._shift(s)[:, None] - self.centre[s][:, None]
        beyond = (views > high + margins * span) & \
            (deviation >= cfg.min_sigma * self.scale[s][:, None])
        beyond[..., View.STUCK] &= views[..., View.STUCK] >= cfg.stuck_after
        flags = _over_views(np.logical_or, beyond) & inside
        if cfg.confirm > 1:
            record_high = np.maximum(before, top)
            record_high[..., View.STUCK] = np.maximum(top[..., View.STUCK], 0.0)
            reach = span.copy()
            reach[..., View.STUCK] = record_high[..., View.STUCK]
            records = _over_views(np.logical_or,
                                  beyond & (views > record_high + margins * reach))
        else:
            records = flags
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (views - high + span) / ((1.0 + margins) * span)
        ratio = np.where(span > 0, ratio, np.where(views > high, 2.0, 0.0))
        scores = np.clip(0.5 * _over_views(np.maximum, ratio), 0.0, 1.0)
        tracked = flags.any(axis=1) | self.alerting_now[s]
        quiet = np.flatnonzero(~tracked)
        out.scores[at[quiet][inside[quiet]]] = scores[quiet][inside[quiet]]
        self.since_alert[s[quiet]] += consumed[rows[quiet]]
        tracked_rows = np.flatnonzero(tracked)
        if not len(tracked_rows):
            return
        why = [w.tolist() for w in
               _explain(tracked_rows, views, high, beyond, ratio, deviation, self.scale[s])]
        t = tracked_rows  # their rows of this round's arrays, as lists at once
        at_t = at[t]
        segments = zip(s[t].tolist(), rows[t].tolist(), consumed[rows[t]].tolist(),
                       at_t.tolist(), times[at_t].tolist(), flags[t].tolist(),
                       records[t].tolist(), scores[t].tolist(),
                       views[t, :, View.LEVEL_UP].tolist(), strict=True)
        for i, (slot, r, n, at_i, stamps, flags_i, records_i, scores_i, levels) in \
                enumerate(segments):
            segment = Segment(at_i[:n], stamps[:n], flags_i[:n], records_i[:n], scores_i[:n],
                              levels[:n], [w[i][:n] for w in why])
            q = int(t[i])
            consumed[r], relearn[r] = self._track(slot, segment, high[q], views[q, :n], out)

    def _track(self, slot: int, seg: Segment, high: np.ndarray, views: np.ndarray,
               out: FleetScored) -> tuple[int, bool]:
        """The alert state machine over one series' segment, point by point. Returns how
        many points it took, and whether a change became the new normal at the last."""
        cfg = self.config
        state = self.alerting.get(slot) or AlertState()
        since = int(self.since_alert[slot])
        block_end = BLOCK - 1 - int(self.part_n[slot])  # the point that fills the block
        why = seg.why
        watched_from, stop, relearn = 0, len(seg.flags), False
        for k, flag in enumerate(seg.flags):
            pos = seg.positions[k]
            out.scores[pos], out.anomalous[pos] = seg.scores[k], flag
            since += 1
            explanation = None
            if flag:
                explanation = out.explanations[pos] = Explanation(
                    View(why[0][k]).name.lower(), why[1][k], why[2][k], why[3][k])
            alert, closed = state.step(cfg, flag, seg.records[k], seg.scores[k],
                                       seg.stamps[k], high[k], since, explanation)
            if alert:
                out.alerts.append(pos)
                since, watched_from = 0, k
            if closed is not None:
                out.periods[pos] = closed
            if state.watch is not None and state.change_lasted(cfg, seg.levels[k]) \
                    and k != block_end:
                stop, relearn = k + 1, True
                break
        self.since_alert[slot] = since
        if state.watch is not None and watched_from < stop:
            since_rows = views[watched_from:stop]
            state.watch.since = np.maximum(state.watch.since, since_rows.max(axis=0)).tolist()
            state.watch.rows.extend(since_rows.tolist())
        self._keep_state(slot, state)
        return stop, relearn

    def _keep_state(self, slot: int, state: AlertState) -> None:
        """Keep a series' alert state while it has one (alerting_now mirrors the dict)."""
        if state.idle:
            self.alerting.pop(slot, None)
        else:
            self.alerting[slot] = state
        self.alerting_now[slot] = not state.idle

    def _absorb(self, slots: np.ndarray, views: np.ndarray, consumed: np.ndarray) -> None:
        """Add each series' consumed points to its current block, closing full blocks."""
        width = views.shape[1]
        used = np.arange(width) < consumed[:, None]
        if width == 1:
            block_max = views[:, 0]
        else:
            block_max = np.where(used[..., None], views, -np.inf).max(axis=1)
        self.part[slots] = np.maximum(self.part[slots], block_max)
        about = views - self._shift(slots)[:, None]
        if width == 1:
            self.part_sum[slots] += about[:, 0]
            self.part_sq[slots] += about[:, 0] ** 2
        else:
            self._add_moments(slots, about, consumed)
        self.part_n[slots] += consumed
        self.seen[slots] += consumed
        full = slots[self.part_n[slots] == BLOCK]
        if len(full):
            self._close_blocks(full)

    def _add_moments(self, slots: np.ndarray, about: np.ndarray, consumed: np.ndarray) -> None:
        rows = np.arange(len(slots))
        # running sums one point after another (cumsum is sequential): the same sums however
        # the stream was split; each series takes its sum at its last consumed point
        sums = np.cumsum(np.concatenate([self.part_sum[slots][:, None], about], axis=1), axis=1)
        squares = np.cumsum(np.concatenate([self.part_sq[slots][:, None], about**2], axis=1),
                            axis=1)
        self.part_sum[slots], self.part_sq[slots] = sums[rows, consumed], squares[rows, consumed]

    def _close_blocks(self, slots: np.ndarray) -> None:
        head = self.head[slots]
        self.maxima[slots, head] = self.part[slots]
        self.moments[slots, head] = np.concatenate(
            [np.full((len(slots), 1), float(BLOCK)), self.part_sum[slots], self.part_sq[slots]],
            axis=1)
        self.head[slots] = (head + 1) % self.blocks
        self.count[slots] = np.minimum(self.count[slots] + 1, self.blocks)
        self.part[slots], self.part_n[slots] = -np.inf, 0
        self.part_sum[slots], self.part_sq[slots] = 0.0, 0.0
        self._update_range(slots)

    def _update_range(self, slots: np.ndarray) -> None:
        """The range's edge, highest maxima, mean and deviation over the full blocks."""
        count = self.count[slots]
        width = int(count.max())  # blocks fill the ring from its start: only these are read
        maxima, moments = self.maxima[slots, :width], self.moments[slots, :width]
        used = (np.arange(width) < count[:, None])[..., None]
        if not used.all():
            maxima, moments = np.where(used, maxima, -np.inf), np.where(used, moments, 0.0)
        ordered = np.sort(maxima, axis=1)
        rank = width - np.minimum(RANKS[None, :], count[:, None])
        self.edge[slots] = np.take_along_axis(ordered, rank[:, None, :], axis=1)[:, 0]
        self.top[slots] = maxima.max(axis=1)
        total = moments.sum(axis=1)  # block by block in ring order, as ever
        n = total[:, :1]
        with np.errstate(divide="ignore", invalid="ignore"):
            centre = total[:, 1:1 + VIEWS] / n
            variance = total[:, 1 + VIEWS:] / n - centre**2
        scale = np.sqrt(np.maximum(variance, 0.0))
        few = total[:, 0] < 2
        centre[few], scale[few] = 0.0, np.inf
        self.centre[slots], self.scale[slots] = centre, scale

    def _relearn(self, slot: int) -> None:
        """The points since the alert are the new normal: forget the range before it."""
        state = self.alerting[slot]
        watch = state.watch
        assert watch is not None
        rows = np.asarray(watch.rows) - self._shift(np.array([slot]))[0]
        self.maxima[slot, 0] = watch.since
        self.moments[slot, 0] = _moments(rows)
        self.head[slot], self.count[slot] = 1, 1
        self._update_range(np.array([slot]))
        state.watch = None
        self._keep_state(slot, state)

    # -------------------------------------------------------------------------- state

    def to_bytes(self, slots: Sequence[int], meta: dict[str, Any] | None = None) -> bytearray:
        """The state of `slots` (in that order), binary: the arrays as they are, with the
        blocks of each series only as far as it has any."""
        rows = np.asarray(slots, dtype=np.int64)
        arrays = {name: a[rows] for name, a in self.arrays.items()
                  if name not in ("maxima", "moments")}
        used_series, used_block = np.nonzero(np.arange(self.blocks) < self.count[rows][:, None])
        arrays["maxima"] = self.maxima[rows[used_series], used_block]
        arrays["moments"] = self.moments[rows[used_series], used_block]
        alerting = {str(i): self.alerting[slot].to_json()
                    for i, slot in enumerate(rows.tolist()) if slot in self.alerting}
        header = {"version": STATE_VERSION, "config": asdict(self.config),
                  "series": len(rows), "alerting": alerting, **(meta or {})}
        return snapshot.pack_arrays(header, arrays)

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, config: AdsConfig | None = None
                   ) -> tuple[FleetDetector, dict[str, Any]]:
        """A detector with to_bytes()' series in slots 0 .. n - 1, and the header. The
        settings are `config` where given (they may differ but for history and window)."""
        header, arrays = snapshot.unpack_arrays(data)
        if header.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported detector state version {header.get('version')!r}")
        saved = AdsConfig(**header["config"])
        det = cls(_compatible(saved, config), capacity=max(16, int(header["series"])))
        n = int(header["series"])
        for name, array in arrays.items():
            if name not in ("maxima", "moments"):
                getattr(det, name)[:n] = array
        used_series, used_block = np.nonzero(np.arange(det.blocks) < det.count[:n][:, None])
        det.maxima[used_series, used_block] = arrays["maxima"]
        det.moments[used_series, used_block] = arrays["moments"]
        det.alerting = {int(i): AlertState.from_json(s) for i, s in header["alerting"].items()}
        return det, header

    def load_series_state(self, slot: int, d: dict[str, Any]) -> None:
        """Load one series' state of format 3 (SeriesDetector JSON) into `slot`."""
        if d.get("version") != 3:
            raise ValueError(f"unsupported detector state version {d.get('version')!r}")
        _compatible(AdsConfig(**d["config"]), self.config)
        self.reserve(slot + 1)
        self.forget([slot])
        blocks = len(d["blocks"])
        self.maxima[slot, :blocks] = [_floats(b) for b in d["blocks"]]
        self.moments[slot, :blocks] = np.asarray(d["moments"], dtype=np.float64).reshape(
            blocks, MOMENTS)
        self.head[slot], self.count[slot] = blocks % self.blocks, blocks
        one = np.array([slot])
        self._update_range(one)
        self.seen[slot], self.part_n[slot] = int(d["seen"]), int(d["part_n"])
        self.since_alert[slot], self.repeats[slot] = int(d["since_alert"]), int(d["repeats"])
        self.origin[slot] = float(d["shift"][0])
        self.part[slot] = _floats(d["part"])
        rows = np.asarray(d["part_rows"], dtype=np.float64).reshape(-1, VIEWS)
        about = rows - self._shift(one)[0]
        sums, squares = np.zeros(VIEWS), np.zeros(VIEWS)
        for row in about:  # as the block would have summed them
            sums += row
            squares += row**2
        self.part_sum[slot], self.part_sq[slot] = sums, squares
        self._load_tail(slot, [float(x) for x in d["tail"]], [float(x) for x in d["steps"]])
        state = AlertState(None if not d["open"] else _open_period(d["open"]), int(d["quiet"]))
        if d["watch"]:
            low, high, age, since, watch_rows = d["watch"]
            state.watch = Watch(float(low), float(high), int(age), _floats(since),
                                [[float(x) for x in row] for row in watch_rows])
        if d.get("pending"):  # absent from states taken before `confirm`
            flagged, age, high = d["pending"]
            state.pending = Pending(int(flagged), int(age), _floats(high))
        self._keep_state(slot, state)

    def _load_tail(self, slot: int, tail: list[float], steps: list[float]) -> None:
        w = self.config.window - 1
        if w:
            self.tail[slot, w - len(tail):] = tail
            self.steps[slot, w - len(steps):] = steps
        if tail:
            self.last[slot] = tail[-1]


class SeriesDetector:
    """One series on its own: a FleetDetector with one slot (for tools, NAB and tests)."""

    def __init__(self, config: AdsConfig | None = None, **overrides: Any) -> None:
        self.config = replace(config or AdsConfig(), **overrides)
        self.fleet = FleetDetector(self.config, capacity=1)

    @property
    def learning(self) -> bool:
        """True until the detector has seen `learn` points."""
        return int(self.fleet.seen[0]) < self.config.learn

    def score_and_learn(self, ts: Sequence[int], values: Sequence[float] | np.ndarray
                        ) -> Scored:
        """Score points of this series in time order and learn from them; a batch gives
        the same results as one call per point."""
        scored = self.fleet.score_and_learn(np.zeros(len(values), dtype=np.int64), ts, values)
        return Scored(scored.scores.tolist(), scored.anomalous.tolist(), scored.alerts,
                      scored.periods, scored.explanations)

    def alerts(self, ts: Sequence[int], values: Sequence[float] | np.ndarray) -> list[int]:
        """Timestamps of the points that raised an alert (the detector learns them)."""
        return [int(ts[i]) for i in self.score_and_learn(ts, values).alerts]

    def to_bytes(self) -> bytearray:
        return self.fleet.to_bytes([0])

    @classmethod
    def from_bytes(cls, data: bytes) -> SeriesDetector:
        fleet, _ = FleetDetector.from_bytes(data)
        det = cls(fleet.config)
        det.fleet = fleet
        return det


def _open_period(saved: list[Any]) -> list[Any]:
    """An open period from JSON (states of format 3 have no explanation)."""
    why = saved[3] if len(saved) > 3 and saved[3] is not None else None
    return [int(saved[0]), int(saved[1]), float(saved[2]),
            None if why is None else Explanation(str(why[0]), *map(float, why[1:]))]


def _compatible(saved: AdsConfig, config: AdsConfig | None) -> AdsConfig:
    """The settings to continue a saved state with: `config`, if its arrays fit."""
    if config is None:
        return saved
    for name in ("history", "window"):
        if getattr(saved, name) != getattr(config, name):
            raise ValueError(f"the saved state has {name} {getattr(saved, name)}, the task "
                             f"{getattr(config, name)}: it cannot continue with another")
    return config


def _explain(rows: np.ndarray, views: np.ndarray, high: np.ndarray, beyond: np.ndarray,
             ratio: np.ndarray, deviation: np.ndarray, scale: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each point of the series `rows`: the view furthest beyond its range among those
    beyond it, its deviation in the view's standard deviations, and the normal range left."""
    furthest = np.where(beyond[rows], ratio[rows], -np.inf).argmax(axis=2)
    pick = furthest[..., None]
    dev = np.take_along_axis(deviation[rows], pick, axis=2)[..., 0]
    unit = np.take_along_axis(np.broadcast_to(scale[rows][:, None], deviation[rows].shape),
                              pick, axis=2)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.clip(np.where(unit > 0, dev / unit, SIGMA_CAP), -SIGMA_CAP, SIGMA_CAP)
    h = high[rows]
    level = (furthest == View.LEVEL_UP) | (furthest == View.LEVEL_DOWN)
    steps = furthest == View.VOLATILITY
    low = np.where(level, -h[..., View.LEVEL_DOWN], -h[..., View.SPIKE_DOWN])
    top = np.where(level, h[..., View.LEVEL_UP], h[..., View.SPIKE_UP])
    low = np.where(steps, 0.0, low)
    top = np.where(steps, h[..., View.VOLATILITY], top)
    return furthest, sigma, low, top


def _by_length(lengths: np.ndarray) -> Iterator[np.ndarray]:
    """Series of a round grouped by segment length, so that padding stays small."""
    if lengths.max() == 1:
        yield np.arange(len(lengths))
        return
    for low, high in ((1, 1), (2, 8), (9, BLOCK)):
        group = np.flatnonzero((lengths >= low) & (lengths <= high))
        if len(group):
            yield group


def _over_views(op: np.ufunc, a: np.ndarray) -> np.ndarray:
    """op.reduce over the last axis (the views), a column at a time: numpy's own reduction
    over a short last axis is ten times slower. Exact for max and or, which do not round."""
    out = op(a[..., 0], a[..., 1])
    for k in range(2, a.shape[-1]):
        op(out, a[..., k], out=out)
    return out


def _spans(high: np.ndarray) -> np.ndarray:
    """Each view's range width: a value view spans its lowest to its highest value."""
    value = high[..., View.SPIKE_UP] + high[..., View.SPIKE_DOWN]
    level = high[..., View.LEVEL_UP] + high[..., View.LEVEL_DOWN]
    return np.stack([value, value, level, level, high[..., View.VOLATILITY],
                     high[..., View.STUCK]], axis=-1)


def _window_sums(z: np.ndarray, w: int) -> np.ndarray:
    """Sum of each point's window: the w columns of z ending at it, from the oldest (z holds
    w - 1 earlier columns, zeros before a series' first point), so sums are the same
    however the stream was split."""
    width = z.shape[1] - (w - 1)
    if width == 1 and len(z) < FLEET_ROUND:  # few series: one call beats w column adds
        return np.add.accumulate(z, axis=1)[:, -1:]
    total = z[:, :width].copy()
    for k in range(1, w):
        total += z[:, k:k + width]
    return total


def _moments(rows: np.ndarray) -> np.ndarray:
    """Count, sums and sums of squares of view rows (summed one row after another)."""
    return np.concatenate([[len(rows)], rows.sum(axis=0), (rows**2).sum(axis=0)])


def _floats(values: Sequence[float | None]) -> list[float]:
    """Floats from JSON, where an empty maximum (-inf) may be null."""
    return [-np.inf if v is None else float(v) for v in values]
