"""moving_average: the mean of the last `size` values of a field, per group.

A drop-in for Kapacitor's own moving_avg example UDF: the same options (`field`, `size`,
`as` defaulting to `avg`) and by default the same output, a point from the first value on
carrying the mean of what its group has so far (at most `size` values) in place of the
point's numeric and string fields. `full_window(TRUE)` emits only once a group has `size`
values (this project's behaviour before the drop-in change) and `keep_fields(TRUE)` keeps
the point's fields beside the average. A group that sent nothing for `forget_after` (of its
points' own time) is forgotten (udfkit.groups).
"""

from __future__ import annotations

from collections import deque

from udfkit import BOOL, DURATION, INT, STRING, Handler, Opt, run
from udfkit.groups import DAY_NS, GroupTable
from udfkit.options import non_negative, positive
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
        Opt("forget_after", DURATION, DAY_NS, check=non_negative,
            help="forget a group that sent nothing for this long, in its points' time "
                 "(0s: never)"),
    )
    snapshot_version = 1

    def init(self, options, context):
        self.field, self.size, self.output = options["field"], options["size"], options["as"]
        self.full_window, self.keep_fields = options["full_window"], options["keep_fields"]
        self.groups = GroupTable(options["forget_after"])
        self.windows: list[deque[float] | None] = []  # by the group's slot

    def point(self, point):
        value = number(point, self.field)
        slot = self.groups.slot(point.group, point.time)
        if slot == len(self.windows):
            self.windows.append(None)
        self._forget_idle()
        window = self.windows[slot]
        if window is None:
            window = self.windows[slot] = deque(maxlen=self.size)
        window.append(value)
        if self.full_window and len(window) < self.size:
            return None
        if not self.keep_fields:
            for fields in (point.fieldsDouble, point.fieldsInt, point.fieldsString):
                fields.clear()
        point.fieldsDouble[self.output] = sum(window) / len(window)
        return point

    def _forget_idle(self) -> None:
        for gone in self.groups.expire():
            self.windows[gone] = None

    def state(self):
        self._forget_idle()
        groups = self.groups
        return {"size": self.size, "groups": groups.state(),
                "windows": {groups.keys[s]: list(self.windows[s] or ()) for s in groups.live()}}

    def restore(self, state):
        if "groups" in state:
            self.groups = GroupTable.restore(state["groups"], self.groups.forget_after)
        else:  # saved before groups were forgotten: no last times
            self.groups.add(state["windows"])
        self.windows = [deque(state["windows"][key][-self.size:], maxlen=self.size)
                        for key in self.groups.keys]


if __name__ == "__main__":
    run(MovingAverage)
