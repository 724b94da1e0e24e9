"""ads_model: anomaly scores for each series (group), learnt as the points come.

Each group gets its own detector (mlkit.ads.SeriesDetector): after its first
`learn` points it scores every point against the group's own recent range (see
mlkit.ads and the README). Each point gets `anomaly_score` in [0, 1] (0.5 is the
alert threshold on every series) and `is_anomaly`. The point that opens an
anomalous period also carries `anomaly_start=true` (the alert) unless the
group alerted less than `min_gap` points before (with `confirm` > 1, once the
period has that many anomalous points or sets a new record); when the period closes, one
extra point with `period_start`, `period_end` and `max_score` follows, so a
TICKscript can route it with isPresent("period_end").
"""

from __future__ import annotations

from mlkit.ads_config import BLOCK, AdsConfig  # light: no numpy
from udfkit import DOUBLE, INT, STRING, Handler, Opt, OptionError, run
from udfkit.options import non_negative, positive
from udfkit.points import PointError, like, number

DEFAULTS = AdsConfig()
MAX_MAGNITUDE = 1e150
"""Larger values are rejected: ranges and window sums of the views stay finite."""


def _at_least(low: int):
    return lambda value: None if value >= low else f"must be >= {low}"


def _between(low: int, high: int):
    return lambda value: None if low <= value <= high else f"must be {low} to {high}"


class AdsModel(Handler):
    """Adds `anomaly_score` in [0, 1] and `is_anomaly` to each point; reports closed periods."""

    name = "ads_model"
    options = (
        Opt("field", STRING, "value", help="numeric field to watch"),
        Opt("learn", INT, DEFAULTS.learn, check=_at_least(2),
            help="points of a group seen before its first score"),
        Opt("history", INT, DEFAULTS.history, check=_at_least(2 * BLOCK),
            help="points whose range is normal (longer: quieter, slower to forget)"),
        Opt("window", INT, DEFAULTS.window, check=_at_least(1),
            help="points in the short mean and short volatility"),
        Opt("margin", DOUBLE, DEFAULTS.margin, check=non_negative,
            help="how far beyond the range, as a fraction of its width, is anomalous "
                 "(higher: fewer alerts, fewer anomalies found)"),
        Opt("min_sigma", DOUBLE, DEFAULTS.min_sigma, check=non_negative,
            help="standard deviations from the recent mean an anomaly must also lie "
                 "(higher: fewer alerts)"),
        Opt("stuck_after", INT, DEFAULTS.stuck_after, check=positive,
            help="repeats of one value before a stuck sensor may count"),
        Opt("close_after", INT, DEFAULTS.close_after, check=positive,
            help="normal points that close an anomalous period"),
        Opt("min_gap", INT, DEFAULTS.min_gap, check=non_negative,
            help="points after an alert before the group may alert again"),
        Opt("relearn", INT, DEFAULTS.relearn, check=non_negative,
            help="points a change must last to become the new normal (0: never)"),
        Opt("confirm", INT, DEFAULTS.confirm, check=_between(1, BLOCK),
            help="anomalous points within a block a period needs to alert, unless it sets "
                 "a new record (higher: fewer alerts, later)"),
        Opt("score_field", STRING, "anomaly_score"),
        Opt("flag_field", STRING, "is_anomaly"),
        Opt("on_error", STRING, "drop", choices=("pass", "drop")),
    )
    snapshot_version = 3

    def init(self, options, context):
        from mlkit import ads

        self.ads = ads
        self.field = options["field"]
        self.score_field, self.flag_field = options["score_field"], options["flag_field"]
        self.on_error = options["on_error"]
        self.config = AdsConfig(**{name: options[name] for name in (
            "learn", "history", "window", "margin", "min_sigma", "stuck_after", "close_after",
            "min_gap", "relearn", "confirm")})
        try:
            self.config.check()
        except ValueError as exc:
            raise OptionError(str(exc)) from None
        self.detectors: dict[str, ads.SeriesDetector] = {}

    def _detector(self, group: str):
        detector = self.detectors.get(group)
        if detector is None:
            detector = self.detectors[group] = self.ads.SeriesDetector(self.config)
        return detector

    def points(self, points):
        series: dict[str, tuple[list[int], list[int], list[float]]] = {}
        field = self.field
        for i, point in enumerate(points):
            try:
                value = number(point, field, MAX_MAGNITUDE)
            except PointError as exc:
                self.reject(point, str(exc))
                continue
            rows = series.get(point.group)
            if rows is None:
                rows = series[point.group] = ([], [], [])
            rows[0].append(i)
            rows[1].append(point.time)
            rows[2].append(value)
        periods: dict[int, object] = {}
        for group, (indices, times, values) in list(series.items()):
            detector = self._detector(group)
            scored = self.isolated(group, [points[i] for i in indices],
                                   lambda: detector.score_many(times, values))  # noqa: B023
            if scored is None:  # its state may be half-updated: the series starts over
                del series[group], self.detectors[group]
                continue
            self._annotate(points, indices, scored, periods)
        if periods or self._rejected:
            return self._ordered(points, series, periods)
        return points

    def _annotate(self, points, indices, scored, periods) -> None:
        score_field, flag_field = self.score_field, self.flag_field
        for i, score, flag in zip(indices, scored.scores, scored.anomalous, strict=True):
            point = points[i]
            point.fieldsDouble[score_field] = score
            point.fieldsBool[flag_field] = flag
        for k in scored.alerts:
            points[indices[k]].fieldsBool["anomaly_start"] = True
        for k, period in scored.periods.items():
            periods[indices[k]] = self._period_point(points[indices[k]], period)

    @staticmethod
    def _ordered(points, series, periods) -> list:
        """Scored points in input order, each closed period right after the point closing it."""
        kept = sorted(i for indices, _, _ in series.values() for i in indices)
        out = []
        for i in kept:
            out.append(points[i])
            if i in periods:
                out.append(periods[i])
        return out

    def _period_point(self, point, period):
        closed = like(point, time=period.end_ns)
        closed.fieldsInt["period_start"] = period.start_ns
        closed.fieldsInt["period_end"] = period.end_ns
        closed.fieldsDouble["duration_s"] = (period.end_ns - period.start_ns) / 1e9
        closed.fieldsDouble["max_score"] = period.max_score
        return closed

    def state(self):
        return {"groups": {g: d.to_state() for g, d in self.detectors.items()}}

    def restore(self, state):
        self.detectors = {g: self.ads.SeriesDetector.from_state(s)
                          for g, s in state["groups"].items()}


if __name__ == "__main__":
    run(AdsModel)
