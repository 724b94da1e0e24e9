"""A UDF for the entrypoint's tests: passes points through, and exits the process on `die=1`.

The process exit fails the Kapacitor task the way a crashing UDF does, so the
entrypoint's supervisor has something to restart.
"""

import os

from udfkit import Handler, run


class Dying(Handler):
    """Stream in, stream out; a point with field die=1 kills the process (exit status 3)."""

    name = "dying"

    def point(self, point):
        if point.fieldsDouble.get("die") == 1 or point.fieldsInt.get("die") == 1:
            os._exit(3)
        return point


if __name__ == "__main__":
    run(Dying)
