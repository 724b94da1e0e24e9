"""outliers: keeps the points of a batch outside Tukey's fences.

A drop-in for Kapacitor's own outliers example UDF: the same options (`field`, `scale`
default 1.5) and output (each batch with only its outlier points, unmodified), with the
quartiles its README specifies: the medians of the lower and upper halves, neither half
containing the overall median. `quartiles('interpolated')` keeps this project's earlier
quartiles (linear interpolation, Python's statistics.quantiles 'inclusive').
"""

from __future__ import annotations

import statistics

from udfkit import BATCH, DOUBLE, STRING, Batch, Handler, Opt, run
from udfkit.options import positive
from udfkit.points import number

MIN_POINTS = 4  # fewer: no point can lie outside the fences of the median-of-halves method


def hinge_quartiles(values: list[float]) -> tuple[float, float]:
    """Q1 and Q3 as the medians of the halves below and above the median (Tukey's hinges
    without the median itself)."""
    ordered = sorted(values)
    half = len(ordered) // 2
    return statistics.median(ordered[:half]), statistics.median(ordered[len(ordered) - half:])


def interpolated_quartiles(values: list[float]) -> tuple[float, float]:
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


QUARTILES = {"halves": hinge_quartiles, "interpolated": interpolated_quartiles}


class Outliers(Handler):
    """Batch in, batch out: points whose field is outside [Q1 - scale*IQR, Q3 + scale*IQR]."""

    name = "outliers"
    wants = BATCH
    provides = BATCH
    options = (
        Opt("field", STRING, help="numeric field to test"),
        Opt("scale", DOUBLE, 1.5, check=positive, help="fence distance in IQRs"),
        Opt("quartiles", STRING, "halves", choices=tuple(QUARTILES),
            help="halves: medians of the half-batches (Kapacitor's example); interpolated"),
    )

    def init(self, options, context):
        self.field, self.scale = options["field"], options["scale"]
        self.quartiles = QUARTILES[options["quartiles"]]

    def batch(self, batch: Batch) -> Batch:
        values = [number(p, self.field) for p in batch.points]
        if len(values) < MIN_POINTS:
            return Batch(batch.begin, [], batch.end)
        q1, q3 = self.quartiles(values)
        low, high = q1 - self.scale * (q3 - q1), q3 + self.scale * (q3 - q1)
        kept = [p for p, v in zip(batch.points, values, strict=True) if v < low or v > high]
        return Batch(batch.begin, kept, batch.end)


if __name__ == "__main__":
    run(batch=Outliers)
