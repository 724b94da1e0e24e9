"""rfc_classifier: predicts machine failure from telemetry with the AI4I random forest.

Stream (`rfc_classifier`) and batch (`--mode batch`, `rfc_classifier_batch`)
variants share one scorer. Points are scored together as they arrive (the
vectorised path), so the forest runs once per batch of waiting points.
"""

from __future__ import annotations

from mlkit.rfc import PRODUCT_TYPES, RAW_FEATURES  # light: numpy loads only in init
from udfkit import BATCH, STRING, Batch, Handler, Opt, OptionError, run
from udfkit.points import PointError, number


def _options() -> tuple[Opt, ...]:
    fields = tuple(Opt(name, STRING, name, help=f"point field (or tag) holding {name}")
                   for name in RAW_FEATURES)
    return (
        Opt("model", STRING, "rfc.joblib", help="file in $MODELS_DIR, listed in its manifest"),
        *fields,
        Opt("prediction_field", STRING, "prediction"),
        Opt("probability_field", STRING, "failure_probability"),
        Opt("on_error", STRING, "pass", choices=("pass", "drop"),
            help="pass: bad points go on with an `error` field; drop: they are dropped"),
    )


def product_type(point, name: str) -> float:
    """The product type from a numeric field 0/1/2, or L/M/H in a string field or tag."""
    try:
        code = number(point, name)
    except PointError:
        text = point.fieldsString.get(name) or point.tags.get(name)
        if text is None:
            raise
        if text not in PRODUCT_TYPES:
            raise PointError(f"{name} {text!r} is not one of L, M, H") from None
        return PRODUCT_TYPES[text]
    if code not in (0.0, 1.0, 2.0):
        raise PointError(f"{name} {code} is not 0, 1 or 2")
    return code


class RfcClassifier(Handler):
    """Adds `prediction` (0/1) and `failure_probability` to each telemetry point."""

    name = "rfc_classifier"
    options = _options()

    def init(self, options, context):
        from mlkit.manifest import load_pickle

        self.model = load_pickle(options["model"])
        if tuple(self.model.raw_features) != RAW_FEATURES:
            raise OptionError(f"model: {options['model']} expects inputs "
                              f"{self.model.raw_features}, this UDF reads {RAW_FEATURES}")
        self.fields = [options[name] for name in RAW_FEATURES]
        self.prediction_field = options["prediction_field"]
        self.probability_field = options["probability_field"]
        self.on_error = options["on_error"]

    def points(self, points):
        import numpy as np

        measurements, codes, good = [], [], []
        type_field, *numeric = self.fields
        for point in points:
            # fast path: float measurements and an integer type code; .get, not [], which
            # would insert a default into the map on a miss
            row = list(map(point.fieldsDouble.get, numeric))
            code = point.fieldsInt.get(type_field)
            if None in row or code not in (0, 1, 2):
                try:
                    row = [*(number(point, f) for f in numeric)]
                    code = product_type(point, type_field)
                except PointError as exc:
                    self.reject(point, str(exc))
                    continue
            measurements.append(row)
            codes.append(code)
            good.append(point)
        if not good:
            return []
        raw = np.column_stack([np.asarray(codes, dtype=float),
                               np.asarray(measurements, dtype=float)])
        raw, good = self._scorable(raw, good)
        if not good:
            return []
        labels, proba = self.model.predict(raw)
        for point, label, p in zip(good, labels.tolist(), proba.tolist(), strict=True):
            point.fieldsInt[self.prediction_field] = label
            point.fieldsDouble[self.probability_field] = p
        return good


    def _scorable(self, raw, good):
        """Reject the rows the forest cannot score (NaN, inf, overflow), each with its reason."""
        from mlkit.rfc import unscorable

        reasons = unscorable(raw)
        if not reasons:
            return raw, good
        for row, reason in reasons.items():
            self.reject(good[row], reason)
        keep = [row for row in range(len(good)) if row not in reasons]
        return raw[keep], [good[row] for row in keep]


class RfcBatchClassifier(RfcClassifier):
    """Batch variant: every point of a batch scored at once, the batch sent on."""

    name = "rfc_classifier_batch"
    wants = BATCH
    provides = BATCH

    def batch(self, batch: Batch) -> Batch:
        return Batch(batch.begin, self.points(batch.points), batch.end)


if __name__ == "__main__":
    run(RfcClassifier, batch=RfcBatchClassifier)
