"""The fleet detector core (mlkit.ads.FleetDetector): bit for bit what the per-series detector
gave (tests/golden), however the streams are split or interleaved; its state and snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from mlkit.ads import AdsConfig, FleetDetector, SeriesDetector
from tests.golden import ads_golden as golden
from udfkit import snapshot

GOLDEN = np.load(golden.GOLDEN)
TIMES = np.asarray(golden.times(golden.LENGTH))


def assert_golden(seed: int, scores: np.ndarray, anomalous: np.ndarray, alerts: list[int],
                  periods: dict) -> None:
    assert np.array_equal(scores, GOLDEN[f"scores_{seed}"]), f"stream {seed}: scores differ"
    assert np.array_equal(anomalous, GOLDEN[f"anomalous_{seed}"])
    assert alerts == GOLDEN[f"alerts_{seed}"].tolist()
    assert [(k, p.start_ns, p.end_ns) for k, p in sorted(periods.items())] == \
        [tuple(row) for row in GOLDEN[f"periods_{seed}"].tolist()]
    assert [p.max_score for _, p in sorted(periods.items())] == \
        GOLDEN[f"period_max_{seed}"].tolist()


def split_scores(seed: int, cuts: list[int]) -> tuple[np.ndarray, np.ndarray, list[int], dict]:
    """One series fed in calls that end at `cuts`."""
    det, values = SeriesDetector(**golden.config_of(seed)), golden.stream(seed)
    scores, anomalous, alerts, periods = [], [], [], {}
    for start, end in zip([0, *cuts], [*cuts, golden.LENGTH], strict=True):
        part = det.score_and_learn(TIMES[start:end].tolist(), values[start:end])
        scores += part.scores
        anomalous += part.anomalous
        alerts += [start + k for k in part.alerts]
        periods |= {start + k: p for k, p in part.periods.items()}
    return np.asarray(scores), np.asarray(anomalous), alerts, periods


@pytest.mark.parametrize("seed", range(golden.STREAMS))
def test_whole_streams_score_as_the_per_series_detector(seed: int) -> None:
    assert_golden(seed, *split_scores(seed, []))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 6, 10])
def test_one_point_per_call_scores_the_same(seed: int) -> None:
    """Includes changes that become the new normal on a call's last point."""
    assert_golden(seed, *split_scores(seed, list(range(1, golden.LENGTH))))


@pytest.mark.parametrize("seed", range(golden.STREAMS))
def test_random_calls_score_the_same(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cuts = sorted(set(rng.integers(1, golden.LENGTH, 300).tolist()))
    assert_golden(seed, *split_scores(seed, cuts))


def interleaved(seeds: list[int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Which stream each point of a fleet feed belongs to and its index in that stream: the
    streams' points in a random interleaving that keeps each stream's order."""
    owner = rng.permutation(np.repeat(np.arange(len(seeds)), golden.LENGTH))
    index = np.zeros(len(owner), dtype=np.int64)
    for n in range(len(seeds)):
        mine = owner == n
        index[mine] = np.arange(mine.sum())
    return owner, index


@pytest.mark.parametrize("config", range(len(golden.CONFIGS)))
def test_interleaved_series_in_random_chunks_score_as_each_alone(config: int) -> None:
    seeds = [s for s in range(golden.STREAMS) if s % len(golden.CONFIGS) == config]
    rng = np.random.default_rng(config)
    owner, index = interleaved(seeds, rng)
    streams = np.stack([golden.stream(s) for s in seeds])
    values, times = streams[owner, index], TIMES[index]
    slots = owner * 7 + 3  # any slots, not 0 .. n - 1
    det = FleetDetector(AdsConfig(**golden.CONFIGS[config]))
    scores, anomalous = np.zeros(streams.shape), np.zeros(streams.shape, dtype=bool)
    alerts: list[list[int]] = [[] for _ in seeds]
    periods: list[dict] = [{} for _ in seeds]
    start = 0
    while start < len(owner):
        end = min(len(owner), start + int(rng.integers(1, 700)))
        out = det.score_and_learn(slots[start:end], times[start:end], values[start:end])
        scores[owner[start:end], index[start:end]] = out.scores
        anomalous[owner[start:end], index[start:end]] = out.anomalous
        for k in out.alerts:
            alerts[owner[start + k]].append(int(index[start + k]))
        for k, period in out.periods.items():
            periods[owner[start + k]][int(index[start + k])] = period
        start = end
    for n, seed in enumerate(seeds):
        assert_golden(seed, scores[n], anomalous[n], alerts[n], periods[n])


def fleet_feed(series: int, ticks: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """One point per series per tick, series interleaved: slots, times, values."""
    rng = np.random.default_rng(seed)
    base = rng.normal(20, 3, series)
    values = base[None, :] + rng.normal(0, 0.5, (ticks, series))
    values[rng.integers(100, ticks, 20), rng.integers(0, series, 20)] += 25  # spikes
    slots = np.tile(np.arange(series), ticks)
    times = np.repeat(golden.T0 + np.arange(ticks) * golden.STEP, series)
    return slots, times, values.ravel()


def test_a_fleet_in_chunks_of_a_few_points_per_series_scores_as_each_series_alone() -> None:
    """Past FLEET_ROUND series in a call, rounds take one point per series: the same."""
    series, ticks = 400, 300
    slots, times, values = fleet_feed(series, ticks, seed=3)
    det, rng, start = FleetDetector(), np.random.default_rng(3), 0
    scores = np.zeros(len(values))
    while start < len(values):
        end = min(len(values), start + int(rng.integers(series // 2, 3 * series)))
        scores[start:end] = det.score_and_learn(slots[start:end], times[start:end],
                                                values[start:end]).scores
        start = end
    for s in (0, 17, 399):
        alone = SeriesDetector().score_and_learn(times[s::series].tolist(), values[s::series])
        assert np.array_equal(scores[s::series], alone.scores)


def test_a_snapshot_of_many_series_continues_exactly() -> None:
    slots, times, values = fleet_feed(300, 400)
    whole = FleetDetector().score_and_learn(slots, times, values)
    det, cut = FleetDetector(), 300 * 250 + 17  # mid-tick, mid-block
    first = det.score_and_learn(slots[:cut], times[:cut], values[:cut])
    data = det.to_bytes(range(300))
    restored, _ = FleetDetector.from_bytes(data)
    rest = restored.score_and_learn(slots[cut:], times[cut:], values[cut:])
    assert np.array_equal(np.r_[first.scores, rest.scores], whole.scores)
    assert first.alerts + [cut + k for k in rest.alerts] == whole.alerts
    assert restored.to_bytes(range(300)) == \
        FleetDetector.from_bytes(restored.to_bytes(range(300)))[0].to_bytes(range(300))


def test_forgotten_slots_start_fresh() -> None:
    """A slot given to a new series scores it as a detector that never saw the old one."""
    slots, times, values = fleet_feed(4, 300)
    det = FleetDetector()
    det.score_and_learn(slots, times, values)
    det.forget([2])
    again = det.score_and_learn(np.full(300, 2), times[::4], values[::4] + 100)
    fresh = FleetDetector().score_and_learn(np.zeros(300, dtype=np.int64), times[::4],
                                            values[::4] + 100)
    assert np.array_equal(again.scores, fresh.scores) and again.alerts == fresh.alerts


@pytest.mark.parametrize("seed", golden.SNAPSHOT_STREAMS)
def test_a_format_3_series_state_continues_exactly(seed: int) -> None:
    """States of the per-series detector (snapshots of ads_model before the fleet core)."""
    groups = snapshot.decode(golden.SNAPSHOT.read_bytes(), "ads_model", 3)["groups"]
    det = FleetDetector(AdsConfig(**golden.config_of(seed)))
    det.load_series_state(5, groups[f"sensor=s{seed}"])
    at = golden.SNAPSHOT_AT
    rest = det.score_and_learn(np.full(golden.LENGTH - at, 5), TIMES[at:],
                               golden.stream(seed)[at:])
    assert np.array_equal(rest.scores, GOLDEN[f"scores_{seed}"][at:])
    assert [at + k for k in rest.alerts] == [a for a in GOLDEN[f"alerts_{seed}"] if a >= at]


def test_state_of_another_history_or_window_is_refused_by_name() -> None:
    data = FleetDetector(AdsConfig(history=256)).to_bytes([0])
    with pytest.raises(ValueError, match="history 256"):
        FleetDetector.from_bytes(data, AdsConfig())
    restored, _ = FleetDetector.from_bytes(data, AdsConfig(history=256, min_sigma=5))
    assert restored.config.min_sigma == 5  # other settings follow the task


def test_state_memory_per_series_with_history_full() -> None:
    """The arrays one series holds (the issue's bound: 16 KiB with `history` full)."""
    assert FleetDetector().nbytes_per_series() <= 16 * 1024


def explained(values: np.ndarray, **settings: float) -> list:
    """The explanation of each alert of a series."""
    scored = SeriesDetector(**settings).score_and_learn(golden.times(len(values)), values)
    return [scored.explanations[k] for k in scored.alerts]


def steady(n: int = 3000, seed: int = 0) -> np.ndarray:
    """One block of noise around 50, repeated: nothing new once seen."""
    return 50 + np.resize(np.random.default_rng(seed).normal(0, 1.0, 64), n)


def alternating(n: int = 3000) -> np.ndarray:
    """Values swinging 45 to 55 about a steady mean of 50: a level inside that swing moves
    only the short mean."""
    return 50 + 5 * np.resize([1.0, -1.0], n) + \
        np.resize(np.random.default_rng(0).normal(0, 0.3, 64), n)


def level(at: float):
    quiet = np.resize(np.random.default_rng(1).normal(0, 0.3, 64), 100)
    return lambda x: x.__setitem__(slice(2000, 2100), at + quiet)


@pytest.mark.parametrize(("view", "base", "inject"), [
    ("spike_up", steady, lambda x: x.__setitem__(2000, x[2000] + 30)),
    ("spike_down", steady, lambda x: x.__setitem__(2000, x[2000] - 30)),
    ("level_up", alternating, level(53)),
    ("level_down", alternating, level(47)),
    ("volatility", steady, lambda x: x.__setitem__(
        slice(2000, 2100), 50 + np.resize([-2.8, 2.8], 100))),
    ("stuck", steady, lambda x: x.__setitem__(slice(2000, 2100), 50.2)),
])
def test_each_view_explains_the_anomaly_built_for_it(view: str, base, inject) -> None:
    values = base()
    inject(values)
    (why,) = explained(values)
    assert why.view == view
    assert why.sigma >= AdsConfig.min_sigma
    assert why.normal_low < why.normal_high
    if view == "spike_up":
        assert why.normal_high < values[2000] and 46 < why.normal_low < 50 < why.normal_high < 54
    if view == "spike_down":
        assert values[2000] < why.normal_low
    if view in ("level_up", "level_down"):  # the short mean's range, about 50
        assert 49 < why.normal_low < 50 < why.normal_high < 51
    if view == "volatility":  # the steps' range
        assert why.normal_low == 0 and why.normal_high < 2 * 2.8


def test_a_period_carries_the_explanation_of_its_highest_point() -> None:
    values = steady()
    values[2000] += 6  # scores under 1 (a clipped score ties)
    values[2003] += 11
    scored = SeriesDetector(min_gap=0).score_and_learn(golden.times(3000), values)
    (period,) = scored.periods.values()
    assert scored.scores[2000] < scored.scores[2003] == period.max_score < 1
    assert period.explanation == scored.explanations[2003]
