"""ads_model: anomaly scores for each series (group), learnt as the points come.

Every group is scored against its own recent range by one fleet detector
(mlkit.ads.FleetDetector), which takes the points of all groups of a call in one
pass. After a group's first `learn` points each point gets `anomaly_score` in
[0, 1] (0.5 is the alert threshold on every series) and `is_anomaly`. The point
that opens an anomalous period also carries `anomaly_start=true` (the alert)
unless the group alerted less than `min_gap` points before (with `confirm` > 1,
once the period has that many anomalous points or sets a new record); when the
period closes, one extra point with `period_start`, `period_end` and `max_score`
follows, so a TICKscript can route it with isPresent("period_end"). Every anomalous
point, and each period (for its highest-scoring point), says what was seen:
`anomaly_view` (spike_up, spike_down, level_up, level_down, volatility, stuck),
`anomaly_sigma` (how many of the view's recent deviations from its mean) and the
normal range left, `normal_low` to `normal_high`, in the field's unit. A group that
sent nothing for `forget_after` (of the points' own time) is forgotten.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlkit.ads_config import AdsConfig, bounds_problem, settings  # light: no numpy
from udfkit import DOUBLE, DURATION, INT, STRING, Handler, Opt, OptionError, run
from udfkit.groups import DAY_NS, GroupTable
from udfkit.options import non_negative
from udfkit.points import Annotated, FieldEncoder, Point, PointError, as_fields, like, number

MAX_MAGNITUDE = 1e150
"""Larger values are rejected: ranges and window sums of the views stay finite."""


def _setting_option(name: str, kind: type, default: Any, help: str) -> Opt:
    return Opt(name, INT if kind is int else DOUBLE, default, help=help,
               check=lambda value: bounds_problem(name, value))


class AdsModel(Handler):
    """Adds `anomaly_score` in [0, 1] and `is_anomaly` to each point; reports closed periods."""

    name = "ads_model"
    options = (
        Opt("field", STRING, "value", help="numeric field to watch"),
        *(_setting_option(*setting) for setting in settings()),
        Opt("forget_after", DURATION, DAY_NS, check=non_negative,
            help="forget a group that sent nothing for this long, in its points' time "
                 "(0s: never)"),
        Opt("score_field", STRING, "anomaly_score"),
        Opt("flag_field", STRING, "is_anomaly"),
        Opt("on_error", STRING, "drop", choices=("pass", "drop")),
    )
    snapshot_version = 4
    snapshot_oldest = 3

    def init(self, options, context):
        from mlkit import ads

        self.ads = ads
        self.field = options["field"]
        self.score_field, self.flag_field = options["score_field"], options["flag_field"]
        self.encode = FieldEncoder(self.score_field, self.flag_field)
        self.on_error = options["on_error"]
        self.config = AdsConfig(**{name: options[name] for name, *_ in settings()})
        try:
            self.config.check()
        except ValueError as exc:
            raise OptionError(str(exc)) from None
        self.column = self.field
        self.groups = GroupTable(options["forget_after"])
        self.detector = ads.FleetDetector(self.config)

    def points(self, points):
        self.detector.forget(self.groups.expire())
        kept, groups, times, values = self._read(points)
        slots = self.groups.slots(groups, times)
        try:
            scored = self.detector.score_and_learn(slots, times, values)
        except Exception as exc:  # the state of these series may be half-updated: they restart
            self._start_over(kept, slots, exc)
            return []
        return self._annotate(kept, scored)

    def _read(self, points: Sequence[Point]) -> tuple[Sequence[Point], list[str], list[int], Any]:
        """The points with a usable value, their groups, times and values. Columns (the
        agent's, as self.column is set) give them without a Point object per point."""
        from udfkit.columns import Columns  # numpy: loaded by init, not at import

        if isinstance(points, Columns) and points.has_value.all() and _in_range(points.values):
            return points, points.groups, points.times, points.values
        kept, values = self._values(points)
        return kept, [p.group for p in kept], [p.time for p in kept], values

    def _values(self, points: Sequence[Point]) -> tuple[Sequence[Point], Any]:
        """The points with a usable value and their values; the others are rejected, each
        with the reason udfkit.points.number gives. The common case, a double field within
        range in every point, takes no per-point call."""
        import numpy as np  # loaded by init already (not at import: Info must be quick)

        field = self.field
        found = [p.fieldsDouble.get(field) for p in points]  # never [field]: it would add it
        if None in found:  # not a double in some point: each is looked at
            return self._each_value(points)
        values = np.array(found, dtype=np.float64)
        if not _in_range(values):
            return self._each_value(points)
        return points, values

    def _each_value(self, points: Sequence[Point]) -> tuple[list[Point], list[float]]:
        kept, good = [], []
        for point in points:
            try:
                value = number(point, self.field, MAX_MAGNITUDE)
            except PointError as exc:
                self.reject(point, str(exc))
                continue
            kept.append(point)
            good.append(value)
        return kept, good

    def _start_over(self, kept: list, slots: list[int], exc: Exception) -> None:
        reason = f"ads_model: {type(exc).__name__}: {exc} (these series start over)"
        for point in kept:
            self.reject(point, reason)
        self.detector.forget(sorted(set(slots)))

    def _annotate(self, kept: list, scored) -> Annotated:
        """Each point with its score and flag; the few anomalous points also with their alert
        mark and explanation; each closed period as a new point after the point closing it."""
        out = self.encode.annotate(kept, scored.scores, scored.anomalous)
        alerts = set(scored.alerts)
        for k in alerts | scored.explanations.keys():
            marks = Point()
            if k in alerts:
                marks.fieldsBool["anomaly_start"] = True
            if k in scored.explanations:
                _explain(marks, scored.explanations[k])
            out.extra[k] = as_fields(marks)
        for k, period in scored.periods.items():
            out.after[k] = [self._period_point(kept[k], period)]
        return out

    def _period_point(self, point, period):
        closed = like(point, time=period.end_ns)
        closed.fieldsInt["period_start"] = period.start_ns
        closed.fieldsInt["period_end"] = period.end_ns
        closed.fieldsDouble["duration_s"] = (period.end_ns - period.start_ns) / 1e9
        closed.fieldsDouble["max_score"] = period.max_score
        if period.explanation is not None:
            _explain(closed, period.explanation)
        return closed

    def state(self) -> bytearray:
        """Binary: the live groups' detector arrays, their keys and last times in the header
        (idle groups are forgotten first)."""
        self.detector.forget(self.groups.expire())
        live = self.groups.live()
        return self.detector.to_bytes(live, {"groups": self.groups.state()})

    def restore(self, state) -> None:
        if isinstance(state, dict):  # format 3: one JSON state per group
            self._restore_series_states(state["groups"])
            return
        detector, header = self.ads.FleetDetector.from_bytes(state, self.config)
        self.detector = detector
        self.groups = GroupTable.restore(header["groups"], self.groups.forget_after)

    def _restore_series_states(self, groups: dict[str, Any]) -> None:
        for slot, series_state in zip(self.groups.add(groups), groups.values(), strict=True):
            self.detector.load_series_state(slot, series_state)


def _in_range(values: Any) -> bool:
    """Every value finite and within MAX_MAGNITUDE, in one numpy pass (NaN is not)."""
    import numpy as np

    return bool((np.abs(values) <= MAX_MAGNITUDE).all())


def _explain(point, why) -> None:
    """The fields that say what an anomalous point or period was seen as."""
    point.fieldsString["anomaly_view"] = why.view
    point.fieldsDouble["anomaly_sigma"] = why.sigma
    point.fieldsDouble["normal_low"] = why.normal_low
    point.fieldsDouble["normal_high"] = why.normal_high


if __name__ == "__main__":
    run(AdsModel)
