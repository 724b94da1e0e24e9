"""A UDF for the agent's tests: sleeps, fails or reports its vectorised call sizes on demand."""

import sys
import threading
import time

from udfkit import BOOL, DOUBLE, STRING, Handler, Opt, run


class Probe(Handler):
    """Per-point handler: `sleep` seconds per point; raises on points that carry `fail_field`,
    never returns from points that carry `hang_field`.

    With `init_once`, a second Init in the same process raises (as a model that became
    unreadable would); its state is a point count, and restore() raises on a state
    without one.
    """

    name = "probe"
    options = (
        Opt("sleep", DOUBLE, 0.0),
        Opt("fail_field", STRING, "boom"),
        Opt("on_error", STRING, "drop", choices=("drop", "pass")),
        Opt("init_once", BOOL, False),
        Opt("hang_field", STRING, "hang"),
    )
    snapshot_version = 1
    inits = 0

    def init(self, options, context):
        Probe.inits += 1
        if options["init_once"] and Probe.inits > 1:
            raise RuntimeError("init ran twice")
        self.sleep, self.fail_field = options["sleep"], options["fail_field"]
        self.hang_field = options["hang_field"]
        self.on_error = options["on_error"]
        self.count = 0

    def state(self):
        return {"count": self.count}

    def restore(self, state):
        self.count = -1  # half-restored: a fresh handler must not inherit this
        self.count = state["count"]

    def point(self, point):
        if self.sleep:
            time.sleep(self.sleep)
        if self.hang_field in point.fieldsDouble:
            threading.Event().wait()  # a deadlock: never returns
        if self.fail_field in point.fieldsDouble:
            raise ValueError(f"refusing field {self.fail_field}")
        self.count += 1
        point.fieldsInt["count"] = self.count
        return point


class VectorProbe(Handler):
    """Vectorised handler: stamps every point with the size of the call it came in."""

    name = "vector_probe"

    def points(self, points):
        for point in points:
            point.fieldsInt["call_size"] = len(points)
        return points


if __name__ == "__main__":
    run(Probe if "--vector" not in sys.argv else VectorProbe,
        argv=[a for a in sys.argv[1:] if a != "--vector"])
