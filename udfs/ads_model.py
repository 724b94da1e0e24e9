"""ads_model: anomaly scores for each series (group) with a streaming IsolationForest.

Each group gets its own detector (mlkit.ads.SeriesDetector): it learns from the
first `learn` points of the group (or starts from a pretrained model file),
then scores every point and refits periodically on recent normal data. When an
anomalous period closes, one extra point with `period_start`, `period_end` and
`max_score` follows, so a TICKscript can route it with isPresent("period_end").
"""

from __future__ import annotations

from udfkit import INT, STRING, Handler, Opt, run
from udfkit.options import non_negative
from udfkit.points import PointError, like, number

MIN_LEARN = 128  # mlkit.ads: learn >= long_window (96) + 32


def _at_least_min_learn(value: int) -> str | None:
    return None if value >= MIN_LEARN else f"must be >= {MIN_LEARN}"


class AdsModel(Handler):
    """Adds `anomaly_score` in [0, 1] and `is_anomaly` to each point; reports closed periods."""

    name = "ads_model"
    options = (
        Opt("field", STRING, "value", help="numeric field to watch"),
        Opt("model", STRING, "", help="pretrained model file under $MODELS_DIR; "
                                      "empty: learn from each group's first points"),
        Opt("learn", INT, 750, check=_at_least_min_learn,
            help="points learnt from before scoring (learn-as-you-go)"),
        Opt("refit_every", INT, 10_000, check=non_negative,
            help="scored points between refits on recent normal data (0: never)"),
        Opt("score_field", STRING, "anomaly_score"),
        Opt("flag_field", STRING, "is_anomaly"),
        Opt("on_error", STRING, "drop", choices=("pass", "drop")),
    )
    snapshot_version = 1

    def init(self, options, context):
        from mlkit import ads
        from mlkit.manifest import load_verified, model_path

        self.ads = ads
        self.field = options["field"]
        self.score_field, self.flag_field = options["score_field"], options["flag_field"]
        self.on_error = options["on_error"]
        self.model = load_verified(model_path(options["model"])) if options["model"] else None
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
        by_group: dict[str, list] = {}
        for point in points:
            try:
                value = number(point, self.field)
            except PointError as exc:
                self.reject(point, str(exc))
                continue
            by_group.setdefault(point.group, []).append((point, value))
        scores = {}
        for group, items in by_group.items():
            results = self._detector(group).score_many([p.time for p, _ in items],
                                                       [v for _, v in items])
            scores.update(zip((id(p) for p, _ in items), results, strict=True))
        out = []
        for point in points:
            score = scores.get(id(point))
            if score is None:
                continue
            point.fieldsDouble[self.score_field] = score.score
            point.fieldsBool[self.flag_field] = score.is_anomaly
            out.append(point)
            if score.period is not None:
                out.append(self._period_point(point, score.period))
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
