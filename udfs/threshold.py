"""threshold: forwards (or annotates) points whose field lies outside [min, max].

The temperature and humidity classifiers are this UDF with other defaults.
"""

from __future__ import annotations

import math

from udfkit import DOUBLE, STRING, Handler, Opt, OptionError, run
from udfkit.points import number


def threshold_options(field: str | None, low: float, high: float) -> tuple[Opt, ...]:
    return (
        Opt("field", STRING, field) if field else Opt("field", STRING),
        Opt("min", DOUBLE, low, help="lowest normal value"),
        Opt("max", DOUBLE, high, help="highest normal value"),
        Opt("mode", STRING, "forward", choices=("forward", "annotate"),
            help="forward: only out-of-range points; annotate: every point with a flag"),
        Opt("as", STRING, "out_of_range", help="bool field set in annotate mode"),
    )


class Threshold(Handler):
    """Forward points whose field is outside [min, max], or annotate every point."""

    name = "threshold"
    options = threshold_options(None, -math.inf, math.inf)

    def init(self, options, context):
        if options["min"] > options["max"]:
            raise OptionError(f"min: must not exceed max ({options['min']} > {options['max']})")
        self.field = options["field"]
        self.low, self.high = options["min"], options["max"]
        self.annotate = options["mode"] == "annotate"
        self.flag = options["as"]

    def point(self, point):
        value = number(point, self.field)
        outside = value < self.low or value > self.high
        if self.annotate:
            point.fieldsBool[self.flag] = outside
            return point
        return point if outside else None


if __name__ == "__main__":
    run(Threshold)
