"""What the simulator injected, per series: the ground truth the demo sets detections against.

The generator labels every point (generate.Anomaly, generate.MachineLabel); this folds the
labels of a run into what a reader compares with alerts: anomaly episodes as time spans per
sensor, and the times at which each machine really met a failure condition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from simulator import generate


@dataclass(frozen=True)
class Episode:
    """One injected anomaly: its kind and the first and last point it covers (ns)."""

    kind: str
    start_ns: int
    end_ns: int


@dataclass
class GroundTruth:
    """Injected anomaly episodes per sensor and failure times (with modes) per machine."""

    start_ns: int
    step_ns: int
    episodes: dict[str, list[Episode]] = field(default_factory=dict)
    failures: dict[str, list[tuple[int, frozenset[str]]]] = field(default_factory=dict)


def labelled_run(seed: int, sensors: Sequence[str], machines: Sequence[str], start_ns: int,
                 steps: int, step_s: float = 1.0) -> tuple[list[list[generate.Point]],
                                                          GroundTruth]:
    """`steps` time steps of every series (as the simulator sends them) and their truth."""
    env = generate.iter_environment(seed, sensors, start_ns=start_ns, step_s=step_s)
    mach = generate.iter_machines(seed, machines, start_ns=start_ns, step_s=step_s)
    truth = GroundTruth(start_ns, round(step_s * 1e9), {s: [] for s in sensors},
                        {m: [] for m in machines})
    out: list[list[generate.Point]] = []
    for _, env_step, mach_step in zip(range(steps), env, mach, strict=False):
        for point, anomaly in env_step:
            if anomaly is not None:
                _extend(truth.episodes[point[1]["sensor"]], anomaly, point[3])
        for point, label in mach_step:
            if label.modes:
                truth.failures[point[1]["machine"]].append((point[3], label.modes))
        out.append([p for p, _ in env_step] + [p for p, _ in mach_step])
    return out, truth


def _extend(episodes: list[Episode], anomaly: generate.Anomaly, t_ns: int) -> None:
    """Add a labelled point to its episode (the generator numbers them per sensor)."""
    if len(episodes) == anomaly.episode + 1:
        last = episodes[-1]
        episodes[-1] = Episode(last.kind, last.start_ns, t_ns)
    else:
        episodes.append(Episode(anomaly.kind, t_ns, t_ns))
