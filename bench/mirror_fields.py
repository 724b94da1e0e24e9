"""Control for bench/fleet.py: the mirror with the two fields ads_model adds to every point.

It writes `anomaly_score` 0.0 and `is_anomaly` false the way ads_model does, so that a task
through it costs Kapacitor what the fields cost, and its difference from ads_model is the
detector's own work. Not used by the product.
"""

import numpy as np

from udfkit import Handler, run
from udfkit.points import FieldEncoder


class MirrorFields(Handler):
    """Stream in; every point out with a constant score and flag."""

    name = "mirror_fields"

    def init(self, options, context):
        self.encode = FieldEncoder("anomaly_score", "is_anomaly")

    def points(self, points):
        return self.encode.annotate(points, np.zeros(len(points)), np.zeros(len(points), bool))


if __name__ == "__main__":
    run(MirrorFields)
