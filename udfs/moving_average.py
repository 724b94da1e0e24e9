"""moving_average: the mean of the last `size` values of a field, per group."""

from __future__ import annotations

from collections import deque

from udfkit import INT, STRING, Handler, Opt, run
from udfkit.options import positive
from udfkit.points import number


class MovingAverage(Handler):
    """Emit each point, once its group has `size` values, with their mean in field `as`."""

    name = "moving_average"
    options = (
        Opt("field", STRING, help="numeric field to average"),
        Opt("size", INT, check=positive, help="number of points in the window"),
        Opt("as", STRING, "average", help="output field"),
    )
    snapshot_version = 1

    def init(self, options, context):
        self.field, self.size, self.output = options["field"], options["size"], options["as"]
        self.windows: dict[str, deque[float]] = {}

    def point(self, point):
        value = number(point, self.field)
        window = self.windows.get(point.group)
        if window is None:
            window = self.windows[point.group] = deque(maxlen=self.size)
        window.append(value)
        if len(window) < self.size:
            return None
        point.fieldsDouble[self.output] = sum(window) / self.size
        return point

    def state(self):
        return {"size": self.size, "windows": {g: list(w) for g, w in self.windows.items()}}

    def restore(self, state):
        for group, values in state["windows"].items():
            self.windows[group] = deque(values[-self.size:], maxlen=self.size)


if __name__ == "__main__":
    run(MovingAverage)
