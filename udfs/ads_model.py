"""ads_model: anomaly scores for each series (group) with a streaming IsolationForest.

Each group gets its own detector (mlkit.ads.SeriesDetector): it learns from the
first `learn` points of the group (or starts from a pretrained model file),
then scores every point and refits periodically on recent normal data. The
point that opens an anomalous period also carries `anomaly_start=true` (the
alert); when the period closes, one extra point with `period_start`, `period_end` and
`max_score` follows, so a TICKscript can route it with isPresent("period_end").
"""

from __future__ import annotations

from mlkit.ads import AdsConfig  # light: numpy and scikit-learn load only in init
from udfkit import INT, STRING, Handler, Opt, run
from udfkit.options import non_negative
from udfkit.points import PointError, like, number

MIN_LEARN = AdsConfig.long_window + 32  # what AdsConfig.check requires


def _at_least_min_learn(value: int) -> str | None:
    return None if value >= MIN_LEARN else f"must be >= {MIN_LEARN}"


class AdsModel(Handler):
    """Adds `anomaly_score` in [0, 1] and `is_anomaly` to each point; reports closed periods."""

    name = "ads_model"
    options = (
        Opt("field", STRING, "value", help="numeric field to watch"),
        Opt("model", STRING, "", help="pretrained model file under $MODELS_DIR; "
                                      "empty: learn from each group's first points"),
        Opt("learn", INT, AdsConfig.learn, check=_at_least_min_learn,
            help="points learnt from before scoring (learn-as-you-go)"),
        Opt("refit_every", INT, AdsConfig.refit_every, check=non_negative,
            help="scored points between refits on recent normal data (0: never)"),
        Opt("score_field", STRING, "anomaly_score"),
        Opt("flag_field", STRING, "is_anomaly"),
        Opt("on_error", STRING, "drop", choices=("pass", "drop")),
    )
    snapshot_version = 1

    def init(self, options, context):
        import sklearn.ensemble  # noqa: F401 - loads here (Init), not on a group's first fit

        from mlkit import ads
        from mlkit.manifest import load_pickle

        self.ads = ads
        self.field = options["field"]
        self.score_field, self.flag_field = options["score_field"], options["flag_field"]
        self.on_error = options["on_error"]
        self.model = load_pickle(options["model"]) if options["model"] else None
        self.overrides = {"refit_every": options["refit_every"]}
        if self.model is None:
            self.overrides["learn"] = options["learn"]
        self.detectors: dict[str, ads.SeriesDetector] = {}

    def _detector(self, group: str):
        detector = self.detectors.get(group)
        if detector is None:
            detector = self.ads.SeriesDetector(model=self.model, **self.overrides)
            self.detectors[group] = detector
        return detector

    def points(self, points):
        series: dict[str, tuple[list[int], list[int], list[float]]] = {}
        field = self.field
        for i, point in enumerate(points):
            try:
                value = number(point, field)
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
        for group, (indices, times, values) in series.items():
            scores = self._detector(group).score_many(times, values)
            self._annotate(points, indices, scores, periods)
        if periods or self._rejected:
            return self._ordered(points, series, periods)
        return points

    def _annotate(self, points, indices, scores, periods) -> None:
        score_field, flag_field = self.score_field, self.flag_field
        for i, score in zip(indices, scores, strict=True):
            point = points[i]
            point.fieldsDouble[score_field] = score.score
            point.fieldsBool[flag_field] = score.is_anomaly
            if score.alert:
                point.fieldsBool["anomaly_start"] = True
            if score.period is not None:
                periods[i] = self._period_point(point, score.period)

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
