"""Streaming anomaly detector (mlkit.ads): alerts, hysteresis, gap, re-learning, state, NAB."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from mlkit.ads import AdsConfig, SeriesDetector, View

STEP = 300 * 10**9  # 5 minutes in ns


def times(n: int) -> list[int]:
    return [1_600_000_000 * 10**9 + k * STEP for k in range(n)]


def noise(n: int, seed: int = 0, level: float = 50.0) -> np.ndarray:
    """Steady behaviour: one block of Gaussian noise, repeated (it sets no new records once
    seen, so every alert in these tests comes from what the test injects; how often fresh
    noise sets records is measured by `make nab` on NAB's noisy series)."""
    block = np.random.default_rng(seed).normal(0, 1.0, 64)
    return level + np.resize(block, n)


def seasonal(n: int, seed: int = 0) -> np.ndarray:
    """Daily-like sine (period 288) with fresh Gaussian noise."""
    rng = np.random.default_rng(seed)
    return 50 + rng.normal(0, 1.0, n) + 20 * np.sin(2 * np.pi * np.arange(n) / 288)


def test_permanent_level_shift_one_alert_then_quiet_and_relearnt() -> None:
    """A level that changes for good is reported once; after `relearn` points the new level
    is the normal, so a smaller step from it is an anomaly again."""
    values = noise(3000)
    values[1000:] += 40
    det = SeriesDetector()
    scored = det.score_and_learn(times(3000), values)
    assert scored.alerts == [1000]
    assert not any(scored.anomalous[1000 + AdsConfig.relearn:])
    assert len(scored.periods) == 1
    # the old range (50 +- 4) is forgotten: a step of 15 below the new level is a record
    probe = noise(50, seed=1, level=75.0)
    assert det.alerts(times(3050)[3000:], probe), "the range still spans the old level"


def lowest_value_in_range(det: SeriesDetector) -> float:
    """The lowest value the detector's range still holds (over its full blocks)."""
    fleet = det.fleet
    return -float(fleet.maxima[0, :fleet.count[0], View.SPIKE_DOWN].max())


def test_no_relearning_keeps_the_old_range() -> None:
    values = noise(3000)
    values[1000:] += 40
    kept, relearnt = SeriesDetector(relearn=0), SeriesDetector()
    assert kept.alerts(times(3000), values) == relearnt.alerts(times(3000), values)
    assert lowest_value_in_range(kept) < 50 < 85 < lowest_value_in_range(relearnt)


def test_hysteresis_one_period_for_a_burst_with_gaps() -> None:
    """Anomalous points separated by fewer than close_after normal points are one period."""
    values = noise(2000)
    for start, height in ((1200, 30), (1210, 40), (1225, 55)):  # 10 and 15 points apart
        values[start] += height
    scored = SeriesDetector(min_gap=0).score_and_learn(times(2000), values)
    assert scored.alerts == [1200]
    (closed_at, period), = scored.periods.items()
    # the short mean carries a spike for `window` points: it may stay anomalous a little
    last = (period.end_ns - times(2000)[0]) // STEP
    assert 1225 <= last < 1225 + AdsConfig.window
    assert closed_at == last + AdsConfig.close_after
    assert period.start_ns == times(2000)[1200]
    assert 0.5 < period.max_score <= 1.0


def test_alert_gap_holds_back_a_second_alert() -> None:
    """Two periods closer than min_gap give one alert; far enough apart, two."""
    def spikes(second: int) -> np.ndarray:
        values = noise(3000)
        values[1200] += 30
        values[second] += 60
        return values

    close_by = SeriesDetector(close_after=5, min_gap=100).score_and_learn(times(3000), spikes(1250))
    assert close_by.alerts == [1200]
    assert times(3000)[1250] in [p.start_ns for p in close_by.periods.values()]
    far = SeriesDetector(close_after=5, min_gap=100).score_and_learn(times(3000), spikes(1350))
    assert far.alerts == [1200, 1350]


def test_snapshot_after_relearning_restores_the_new_normal() -> None:
    values = noise(3000)
    values[1000:] += 40
    det = SeriesDetector()
    det.score_and_learn(times(3000), values)
    copy = SeriesDetector.from_bytes(det.to_bytes())
    assert copy.to_bytes() == det.to_bytes()
    probe_t, probe = times(3200)[3000:], noise(200, level=90.0)
    probe[100] = 75.0  # below the new normal, inside the old range: anomalous now
    restored = copy.score_and_learn(probe_t, probe)
    assert restored == det.score_and_learn(probe_t, probe)
    assert restored.alerts == [100]


@pytest.mark.parametrize("confirm", [1, 3])
def test_batches_and_snapshots_equal_single_points(confirm: int) -> None:
    values = seasonal(3000)
    values[1500:1510] += 25
    values[2200:] -= 30
    whole = SeriesDetector(confirm=confirm).score_and_learn(times(3000), values)
    det, rng, i = SeriesDetector(confirm=confirm), np.random.default_rng(0), 0
    scores, alerts = [], []
    while i < 3000:
        j = min(3000, i + int(rng.integers(1, 200)))
        part = det.score_and_learn(times(3000)[i:j], values[i:j])
        scores += part.scores
        alerts += [i + k for k in part.alerts]
        det = SeriesDetector.from_bytes(det.to_bytes())
        i = j
    assert scores == whole.scores and alerts == whole.alerts
    assert 1500 in whole.alerts


def spike_history(n: int) -> np.ndarray:
    """Noise with a spike of +40 at 1000: the range's highest block, not its edge."""
    values = noise(n)
    values[1000] += 40
    return values


def test_confirm_holds_back_a_lone_point_that_sets_no_record() -> None:
    """A spike of +20 after one of +40: beyond the range's edge but no record."""
    values = spike_history(3000)
    values[2000] += 20
    assert SeriesDetector().alerts(times(3000), values) == times(3000)[1000:2001:1000]
    quiet = SeriesDetector(confirm=3).score_and_learn(times(3000), values)
    assert quiet.alerts == [1000] and quiet.anomalous[2000]  # flagged, period, no alert
    assert times(3000)[2000] in [p.start_ns for p in quiet.periods.values()]


def test_confirm_alerts_a_sustained_excursion_at_its_confirming_point() -> None:
    values = spike_history(3000)
    values[2000:2010] += 20
    scored = SeriesDetector(confirm=3).score_and_learn(times(3000), values)
    assert scored.alerts == [1000, 2002]


def test_confirm_alerts_a_new_record_at_once() -> None:
    values = spike_history(3000)
    values[2000] += 60
    assert SeriesDetector(confirm=3).score_and_learn(times(3000), values).alerts == [1000, 2000]


def test_snapshot_while_a_period_waits_for_confirmation() -> None:
    values = spike_history(3000)
    values[2000:2010] += 20
    det = SeriesDetector(confirm=3)
    assert det.score_and_learn(times(3000)[:2001], values[:2001]).alerts == [1000]
    copy = SeriesDetector.from_bytes(det.to_bytes())
    rest = copy.score_and_learn(times(3000)[2001:], values[2001:])
    assert rest.alerts == [1]  # 2002: the third anomalous point
    assert rest == det.score_and_learn(times(3000)[2001:], values[2001:])


def test_quiet_on_steady_noise_and_a_repeating_daily_cycle() -> None:
    """Once a cycle has been seen whole it is normal (the first one may alert: the range is
    still being learnt)."""
    assert not SeriesDetector().alerts(times(8000), noise(8000, seed=3))
    cycle = np.resize(seasonal(288, seed=4), 8000)
    alerts = SeriesDetector().score_and_learn(times(8000), cycle).alerts
    assert not [a for a in alerts if a >= 288], alerts


def quantised(n: int, seed: int = 0) -> np.ndarray:
    """Steady quantised behaviour: one cycle of integer levels (two neighbours never equal),
    each held for 1 to 6 points, repeated; runs of up to 5 repeats are normal here."""
    rng = np.random.default_rng(seed)
    levels = 40 + 2 * rng.integers(0, 10, 64) + np.arange(64) % 2
    return np.resize(np.repeat(levels, rng.integers(1, 7, 64)), n).astype(float)


def test_repeats_alert_only_past_twice_the_longest_recent_run() -> None:
    """A stuck sensor: where values repeat anyway, a run a little longer than before is no
    news; a run over twice the longest in the range is (one alert). Alerts while the first
    cycle is learnt are left out, as in the seasonal test."""
    values = quantised(3000)
    assert max(len(list(g)) - 1 for _, g in itertools.groupby(values[:2000])) == 5
    stuck_at = 47.5  # inside the usual values: only the repeats view can see it

    def alerts_after_learning(series: np.ndarray) -> list[int]:
        return [a for a in SeriesDetector().score_and_learn(times(3000), series).alerts if a > 1000]

    assert not alerts_after_learning(values)
    slightly = values.copy()
    slightly[2000:2010] = stuck_at  # 9 repeats: a record, but under twice the longest run
    assert not alerts_after_learning(slightly)
    stuck = values.copy()
    stuck[2000:2100] = stuck_at
    assert alerts_after_learning(stuck) == [2000 + 2 * 5 + 1]


def test_a_sensor_stuck_again_and_again_alerts_every_time() -> None:
    """Where readings never repeat, each stuck episode is a fault: two earlier ones do not
    make a third normal (the repeats view's edge is its fourth-highest block)."""
    values = noise(3000)
    starts = [1000, 1500, 2000]
    for start in starts:
        values[start:start + 30] = values[start]
    alerts = SeriesDetector().score_and_learn(times(3000), values).alerts
    assert len(alerts) == len(starts)
    # the first after `stuck_after` repeats; later ones a little later, as the earlier
    # episodes widened the deviation `min_sigma` is measured in
    assert alerts[0] == starts[0] + AdsConfig.stuck_after
    assert all(start + AdsConfig.stuck_after <= alert < start + 20
               for start, alert in zip(starts, alerts, strict=True)), alerts


def test_scores_early_and_bad_values_ignored() -> None:
    values = noise(200)
    values[10] = np.nan
    values[150] += 30
    det = SeriesDetector()
    scored = det.score_and_learn(times(200), values)
    assert scored.scores[10] == 0.0 and not scored.anomalous[10]
    assert all(s > 0 for s in scored.scores[AdsConfig.learn + 1:])
    assert scored.alerts == [150]
    assert all(0.0 <= s <= 1.0 for s in scored.scores)


def test_bad_settings_named() -> None:
    with pytest.raises(ValueError, match="relearn must be 0 or > window"):
        SeriesDetector(relearn=10)
    with pytest.raises(ValueError, match="margin must be"):
        SeriesDetector(margin=-1.0)
    with pytest.raises(ValueError, match="unsupported detector state version"):
        SeriesDetector().fleet.load_series_state(0, {"version": 1})


def test_large_offset_keeps_its_precision() -> None:
    """Moments are taken about the first value: fresh noise on a counter-like level of 1e9
    alerts exactly where the same noise does at 50."""
    fresh = np.random.default_rng(5).normal(0, 1.0, 8000)
    fresh[6000] += 30
    at_50 = SeriesDetector().score_and_learn(times(8000), 50 + fresh).alerts
    assert 6000 in at_50
    assert SeriesDetector().score_and_learn(times(8000), 1e9 + fresh).alerts == at_50


def corpus_scores(**options):
    """Per-file NAB scores of the detector with `options` on all 46 corpus files."""
    from mlkit.nab import NAB_DIR, detector_scores
    from mlkit.nabdata import load_corpus

    series, windows = load_corpus(NAB_DIR)
    assert len(series) == 46
    return detector_scores(options, series, windows)


@pytest.mark.slow
def test_whole_nab_corpus_holds_its_floor() -> None:
    """The detector's defaults on all 46 corpus files, in-process (the UDF alerts identically:
    tests/test_ads_model.py): the overall NAB score and the windows hit stay at the detector's
    earlier targets, and no series without anomalies alerts. `make nab` prints the tables."""
    from mlkit.nab import NAB_DIR, totals

    scores = corpus_scores()
    total = totals(scores)
    assert total["score"] >= 60, total
    assert total["hit"] >= 0.75 * total["windows"], total
    no_anomaly = json.loads((NAB_DIR / "categories.json").read_text())["artificialNoAnomaly"]
    assert len(no_anomaly) == 5
    assert not [s for s in scores if s.name in no_anomaly and s.false_alerts]


@pytest.mark.slow
def test_confirm_trades_a_few_windows_for_far_fewer_false_alerts_on_the_corpus() -> None:
    """What the README promises of `confirm` 3 (`make nab-tradeoff`): under two thirds of
    the default's false alerts and fewer files over 1 per 2,000 points, the score >= 60."""
    from mlkit.nab import totals

    default, confirmed = corpus_scores(), corpus_scores(confirm=3)
    assert totals(confirmed)["score"] >= 60
    assert totals(confirmed)["false_alerts"] < 2 / 3 * totals(default)["false_alerts"]
    over = [sum(s.fp_per_2000 > 1 for s in scores) for scores in (default, confirmed)]
    assert over[1] < over[0], over
