"""What an anomaly detector found against the anomalies the simulator injected (the demo's
recall, false periods per sensor-hour and delay).

An injected episode counts as found when the detector flags a point of its sensor from the
episode's first point to `tolerance` points after its last (a level shift is also seen where
it ends, and a short mean lags by its window); its delay is the time from its first point to
the first such flag. Episodes that start while the detector is still learning are left out.
A detected period that overlaps no episode of its sensor (with the same tolerance) is false.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.truth import GroundTruth


@dataclass(frozen=True)
class Outcome:
    """Recall, false periods and delay of a detector over one run."""

    found: int
    episodes: int
    false_periods: int
    sensor_hours: float
    mean_delay_s: float | None

    @property
    def recall(self) -> float:
        return self.found / self.episodes if self.episodes else 1.0

    @property
    def false_per_sensor_hour(self) -> float:
        return self.false_periods / self.sensor_hours if self.sensor_hours else 0.0

    def lines(self) -> list[str]:
        delay = "-" if self.mean_delay_s is None else f"{self.mean_delay_s:.1f} s"
        return [
            f"injected anomalies found after learning: {self.found}/{self.episodes} "
            f"({self.recall:.0%})",
            f"false periods: {self.false_periods} in {self.sensor_hours:.2f} sensor-hours "
            f"after learning ({self.false_per_sensor_hour:.2f} per sensor-hour)",
            f"mean delay from an anomaly's start to its first flagged reading: {delay}",
        ]


def evaluate(truth: GroundTruth, flagged: dict[str, list[int]],
             periods: dict[str, list[tuple[int, int]]], learn: int, end_ns: int,
             tolerance: int = 24) -> Outcome:
    """Score flagged times and detected (start, end) periods per sensor, all in ns, of a run
    that ended at `end_ns`, against `truth` for a detector that learns from `learn` points."""
    learnt_ns = truth.start_ns + learn * truth.step_ns
    slack = tolerance * truth.step_ns
    delays = []
    counted = 0
    for sensor, episodes in truth.episodes.items():
        flags = sorted(flagged.get(sensor, ()))
        for e in episodes:
            if e.start_ns < learnt_ns:
                continue
            counted += 1
            hits = [t for t in flags if e.start_ns <= t <= e.end_ns + slack]
            if hits:
                delays.append((hits[0] - e.start_ns) / 1e9)
    false_periods = sum(
        1 for sensor, spans in periods.items() for start, end in spans
        if not any(start <= e.end_ns + slack and end >= e.start_ns
                   for e in truth.episodes.get(sensor, ())))
    hours = len(truth.episodes) * max(end_ns - learnt_ns, 0) / 3600e9
    mean_delay = sum(delays) / len(delays) if delays else None
    return Outcome(len(delays), counted, false_periods, hours, mean_delay)
