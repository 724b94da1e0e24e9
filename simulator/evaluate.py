"""What an anomaly detector found against the anomalies the simulator injected.

The simulator's episodes depend on its seed and sensor names only (not on the start time), so
the ground truth of a run is regenerated here step by step. An episode counts as found when the
detector flags a point of its sensor from its first step to `tolerance` steps after its last
(a level shift is also seen when it ends; a short mean lags by its window); its delay is the
time from its first step to the first such flag. Episodes that start while the detector is
still learning are left out. A detected period that overlaps no episode (with the same
tolerance) is a false period.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from simulator import generate


@dataclass(frozen=True)
class Episode:
    """One injected anomaly: sensor, kind, first and last step (steps are 1 s apart)."""

    sensor: str
    kind: str
    first: int
    last: int


@dataclass(frozen=True)
class Outcome:
    """Recall, false periods and delay of a detector over one run."""

    found: int
    episodes: int
    false_periods: int
    sensor_hours: float
    mean_delay_s: float | None
    learn: int

    @property
    def recall(self) -> float:
        return self.found / self.episodes if self.episodes else 1.0

    @property
    def false_per_sensor_hour(self) -> float:
        return self.false_periods / self.sensor_hours if self.sensor_hours else 0.0

    def lines(self) -> list[str]:
        delay = "-" if self.mean_delay_s is None else f"{self.mean_delay_s:.1f} s"
        return [
            f"learning period: the first {self.learn} points (s) of each sensor; episodes "
            "starting in it are not counted",
            f"injected anomalies found: {self.found}/{self.episodes} ({self.recall:.0%})",
            f"false periods: {self.false_periods} in {self.sensor_hours:.2f} sensor-hours "
            f"({self.false_per_sensor_hour:.2f} per sensor-hour)",
            f"mean delay from an anomaly's start to its first flagged point: {delay}",
        ]


def injected_episodes(seed: int, sensors: Sequence[str], steps: int,
                      anomaly_rate: float = generate.ANOMALY_RATE) -> list[Episode]:
    """The episodes `python -m simulator --seed S --sensors N` injects in its first `steps`."""
    spans: dict[tuple[str, int], list] = {}
    timeline = generate.iter_environment(seed, sensors, anomaly_rate=anomaly_rate)
    for step, points in enumerate(itertools.islice(timeline, steps)):
        for (_, tags, _, _), label in points:
            if label is not None:
                key = (tags["sensor"], label.episode)
                spans.setdefault(key, [label.kind, step, step])[2] = step
    return sorted((Episode(sensor, kind, first, last)
                   for (sensor, _), (kind, first, last) in spans.items()),
                  key=lambda e: (e.sensor, e.first))


def evaluate(episodes: Iterable[Episode], flagged: dict[str, set[int]],
             periods: dict[str, list[tuple[int, int]]], steps: int, learn: int,
             tolerance: int = 24) -> Outcome:
    """Score flagged steps and detected periods (first, last step) per sensor."""
    counted = [e for e in episodes if e.first >= learn]
    delays = []
    for e in counted:
        hits = sorted(s for s in flagged.get(e.sensor, ()) if e.first <= s <= e.last + tolerance)
        if hits:
            delays.append(hits[0] - e.first)
    false_periods = 0
    for sensor, spans in periods.items():
        mine = [e for e in episodes if e.sensor == sensor]
        false_periods += sum(
            1 for first, last in spans
            if not any(first <= e.last + tolerance and last >= e.first for e in mine))
    sensors = {e.sensor for e in episodes} | set(flagged) | set(periods)
    hours = len(sensors) * max(steps - learn, 0) / 3600.0
    mean_delay = sum(delays) / len(delays) if delays else None
    return Outcome(len(delays), len(counted), false_periods, hours, mean_delay, learn)
