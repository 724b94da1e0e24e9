"""A UDF for the agent's tests: sleeps, fails or reports its vectorised call sizes on demand."""

import sys
import time

from udfkit import DOUBLE, STRING, Handler, Opt, run


class Probe(Handler):
    """Per-point handler: `sleep` seconds per point; raises on points that carry `fail_field`."""

    name = "probe"
    options = (
        Opt("sleep", DOUBLE, 0.0),
        Opt("fail_field", STRING, "boom"),
        Opt("on_error", STRING, "drop", choices=("drop", "pass")),
    )

    def init(self, options, context):
        self.sleep, self.fail_field = options["sleep"], options["fail_field"]
        self.on_error = options["on_error"]

    def point(self, point):
        if self.sleep:
            time.sleep(self.sleep)
        if self.fail_field in point.fieldsDouble:
            raise ValueError(f"refusing field {self.fail_field}")
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
