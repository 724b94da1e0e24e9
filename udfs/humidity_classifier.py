"""humidity_classifier: forwards humidity readings above 25 %."""

import math

from threshold import Threshold, threshold_options
from udfkit import run


class HumidityClassifier(Threshold):
    """Forward points whose `humidity` is above 25 (options as threshold)."""

    name = "humidity_classifier"
    options = threshold_options("humidity", -math.inf, 25.0)


if __name__ == "__main__":
    run(HumidityClassifier)
