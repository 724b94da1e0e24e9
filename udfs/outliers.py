"""outliers: keeps the points of a batch outside Tukey's fences."""

from __future__ import annotations

import statistics

from udfkit import BATCH, DOUBLE, STRING, Batch, Handler, Opt, run
from udfkit.options import positive
from udfkit.points import number


class Outliers(Handler):
    """Batch in, batch out: points whose field is outside [Q1 - scale*IQR, Q3 + scale*IQR]."""

    name = "outliers"
    wants = BATCH
    provides = BATCH
    options = (
        Opt("field", STRING, help="numeric field to test"),
        Opt("scale", DOUBLE, 1.5, check=positive, help="fence distance in IQRs"),
    )

    def init(self, options, context):
        self.field, self.scale = options["field"], options["scale"]

    def batch(self, batch: Batch) -> Batch:
        values = [number(p, self.field) for p in batch.points]
        if len(values) < 4:
            return Batch(batch.begin, [], batch.end)
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        low, high = q1 - self.scale * (q3 - q1), q3 + self.scale * (q3 - q1)
        kept = [p for p, v in zip(batch.points, values, strict=True) if v < low or v > high]
        return Batch(batch.begin, kept, batch.end)


if __name__ == "__main__":
    run(batch=Outliers)
