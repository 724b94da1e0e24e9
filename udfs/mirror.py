"""mirror: passes every stream point through unchanged.

The smallest UDF on udfkit; the tests and the throughput benchmark run it.
"""

from udfkit import Handler, run


class Mirror(Handler):
    """Stream in, stream out, nothing changed."""

    name = "mirror"

    def point(self, point):
        return point


if __name__ == "__main__":
    run(Mirror)
