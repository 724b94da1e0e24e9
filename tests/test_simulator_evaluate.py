"""simulator.evaluate: the demo's recall / false periods / delay against injected anomalies."""

from __future__ import annotations

from simulator.evaluate import evaluate
from simulator.truth import Episode, GroundTruth

S = 10**9  # one step, 1 s


def test_recall_false_periods_and_delay() -> None:
    truth = GroundTruth(0, S, episodes={
        "a": [Episode("spike", 10 * S, 10 * S), Episode("level_shift", 200 * S, 240 * S)],
        "b": [Episode("stuck", 300 * S, 320 * S), Episode("spike", 500 * S, 500 * S)]})
    flagged = {"a": [10 * S, 203 * S, 260 * S], "b": [900 * S]}
    periods = {"a": [(10 * S, 10 * S), (203 * S, 260 * S)], "b": [(900 * S, 905 * S),
                                                                   (1500 * S, 1501 * S)]}
    outcome = evaluate(truth, flagged, periods, learn=64, end_ns=3664 * S)
    assert (outcome.found, outcome.episodes) == (1, 3)  # the spike at 10 s is in learning
    assert outcome.mean_delay_s == 3.0
    assert outcome.false_periods == 2
    assert outcome.false_per_sensor_hour == 2 / 2.0
    assert outcome.lines()[0] == "injected anomalies found after learning: 1/3 (33%)"
