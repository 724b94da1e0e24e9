"""moving_average: the mean of the last `size` values of a field, per group.

A drop-in for Kapacitor's own moving_avg example UDF: the same options (`field`, `size`,
`as` defaulting to `avg`) and by default the same output, a point from the first value on
carrying the mean of what its group has so far (at most `size` values) in place of the
point's numeric and string fields. `full_window(TRUE)` emits only once a group has `size`
values (this project's behaviour before the drop-in change) and `keep_fields(TRUE)` keeps
the point's fields beside the average.
"""

from __future__ import annotations

from collections import deque

from udfkit import BOOL, INT, STRING, Handler, Opt, run
from udfkit.options import positive
from udfkit.points import number


class MovingAverage(Handler):
    """Each point, with the mean of its group's last `size` values in field `as`."""

    name = "moving_average"
    options = (
        Opt("field", STRING, help="numeric field to average"),
        Opt("size", INT, check=positive, help="number of points in the window"),
        Opt("as", STRING, "avg", help="output field"),
        Opt("full_window", BOOL, False,
            help="emit nothing until a group has `size` values (default: from the first)"),
        Opt("keep_fields", BOOL, False,
            help="keep the point's fields (default: only the average, as Kapacitor's example)"),
    )
    snapshot_version = 1

    def init(self, options, context):
        self.field, self.size, self.output = options["field"], options["size"], options["as"]
        self.full_window, self.keep_fields = options["full_window"], options["keep_fields"]
        self.windows: dict[str, deque[float]] = {}

    def point(self, point):
        value = number(point, self.field)
        window = self.windows.get(point.group)
        if window is None:
            window = self.windows[point.group] = deque(maxlen=self.size)
        window.append(value)
        if self.full_window and len(window) < self.size:
            return None
        if not self.keep_fields:
            for fields in (point.fieldsDouble, point.fieldsInt, point.fieldsString):
                fields.clear()
        point.fieldsDouble[self.output] = sum(window) / len(window)
        return point

    def state(self):
        return {"size": self.size, "windows": {g: list(w) for g, w in self.windows.items()}}

    def restore(self, state):
        for group, values in state["windows"].items():
            self.windows[group] = deque(values[-self.size:], maxlen=self.size)


if __name__ == "__main__":
    run(MovingAverage)
