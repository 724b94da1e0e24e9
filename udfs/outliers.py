"""outliers: keeps the points of a batch outside Tukey's fences.

A drop-in for Kapacitor's own outliers example UDF: the same options (`field`, `scale`
default 1.5) and output (each batch with only its outlier points, unmodified). By default
the quartiles are the ones the example's code computes, which are not the ones its README
describes: so a TICKscript written for the example flags the same points. Two other
methods are options: `quartiles('halves')` (what the example's README describes) and
`quartiles('interpolated')` (Python's statistics.quantiles, 'inclusive').
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

from udfkit import BATCH, DOUBLE, STRING, Batch, Handler, Opt, run
from udfkit.options import positive
from udfkit.points import number

MIN_POINTS = 4  # fewer: no point can lie outside the fences of any method below


def hinge_quartiles(values: Sequence[float]) -> tuple[float, float]:
    """Q1 and Q3 as the medians of the halves below and above the median, neither half
    holding the median itself (the example's README)."""
    ordered = sorted(values)
    half = len(ordered) // 2
    return statistics.median(ordered[:half]), statistics.median(ordered[len(ordered) - half:])


def _right_median(ordered: Sequence[float]) -> float | None:
    """The example's median: the middle value, or for an even count the mean of the two
    values right of the centre. None where that reads past the end (0 or 2 values)."""
    size, mid = len(ordered), len(ordered) // 2
    if size % 2:
        return ordered[mid]
    return (ordered[mid] + ordered[mid + 1]) / 2 if mid + 1 < size else None


def example_quartiles(values: Sequence[float]) -> tuple[float, float]:
    """Q1 and Q3 as Kapacitor's example computes them (Go and Python alike).

    Its median of an even count is shifted one place right, so for an even count the
    lower half runs up to and including that shifted middle (n/2 + 1 values) and the upper
    half holds the n/2 - 1 values after it; each half's median is shifted the same way.
    Where the example would index past the end of a half (batches of 5 or 6 points; it
    then fails the task) the README's halves are used instead.
    """
    ordered = sorted(values)
    mid = len(ordered) // 2
    lower = ordered[:mid + 1] if len(ordered) % 2 == 0 else ordered[:mid]
    q1, q3 = _right_median(lower), _right_median(ordered[mid + 1:])
    if q1 is None or q3 is None:
        return hinge_quartiles(ordered)
    return q1, q3


def interpolated_quartiles(values: Sequence[float]) -> tuple[float, float]:
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


QUARTILES: dict[str, Callable[[Sequence[float]], tuple[float, float]]] = {
    "example": example_quartiles, "halves": hinge_quartiles, "interpolated": interpolated_quartiles}


class Outliers(Handler):
    """Batch in, batch out: points whose field is outside [Q1 - scale*IQR, Q3 + scale*IQR]."""

    name = "outliers"
    wants = BATCH
    provides = BATCH
    options = (
        Opt("field", STRING, help="numeric field to test"),
        Opt("scale", DOUBLE, 1.5, check=positive, help="fence distance in IQRs"),
        Opt("quartiles", STRING, "example", choices=tuple(QUARTILES),
            help="example: as Kapacitor's example code; halves: as its README; interpolated"),
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
