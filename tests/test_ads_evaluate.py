"""simulator.evaluate: the demo's recall / false periods / delay against injected anomalies."""

from __future__ import annotations

from simulator import generate
from simulator.evaluate import Episode, evaluate, injected_episodes


def test_ground_truth_is_the_simulators() -> None:
    sensors = generate.sensor_names(3)
    episodes = injected_episodes(1, sensors, 1200)
    labelled = generate.environment_labelled(1, 1200, sensors)
    steps = {(p[1]["sensor"], i // 3) for i, (p, label) in enumerate(labelled) if label}
    assert steps == {(e.sensor, s) for e in episodes for s in range(e.first, e.last + 1)}
    assert {e.kind for e in episodes} <= set(generate.ANOMALY_KINDS)


def test_recall_false_periods_and_delay() -> None:
    episodes = [Episode("a", "spike", 10, 10), Episode("a", "level_shift", 200, 240),
                Episode("b", "stuck", 300, 320), Episode("b", "spike", 500, 500)]
    flagged = {"a": {10, 203, 260}, "b": {900}}
    periods = {"a": [(10, 10), (203, 260)], "b": [(900, 905), (1500, 1501)]}
    outcome = evaluate(episodes, flagged, periods, steps=3664, learn=64)
    assert (outcome.found, outcome.episodes) == (1, 3)  # the spike at 10 is in learning
    assert outcome.mean_delay_s == 3.0
    assert outcome.false_periods == 2
    assert outcome.false_per_sensor_hour == 2 / 2.0
