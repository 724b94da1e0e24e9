"""temperature_classifier: forwards temperatures outside the comfort band [20, 25]."""

from threshold import Threshold, threshold_options
from udfkit import run


class TemperatureClassifier(Threshold):
    """Forward points whose `temperature` is outside [20, 25] (options as threshold)."""

    name = "temperature_classifier"
    options = threshold_options("temperature", 20.0, 25.0)


if __name__ == "__main__":
    run(TemperatureClassifier)
