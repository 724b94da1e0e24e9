"""Pure, deterministic generation of the demo telemetry (no I/O, standard library only).

Why a generator of our own: the TICKscripts and UDFs need data with the exact names of the
project's data model, with known anomalies and failures in it so that a person watching the
dashboard (and the tests) can tell whether the detectors fire where they should. Each series
has its own random stream seeded from (seed, series name), so the same seed always gives the
same data, and adding a sensor does not change the others.

Data model (fixed by the project, read by the TICKscripts):
- `environment`, tag `sensor`: fields `temperature` (float, degC), `humidity` (float, %).
- `machine`, tag `machine`: float fields `air_temperature` [K], `process_temperature` [K],
  `rotational_speed` [rpm], `torque` [Nm], `tool_wear` [min]; integer field `product_type`
  (0/1/2 for L/M/H). Every other field is always a float, so InfluxDB never sees a type clash.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

Fields = dict[str, float | int | bool | str]
Point = tuple[str, dict[str, str], Fields, int]
"""(measurement, tags, fields, time in ns since the epoch)."""

ENVIRONMENT = "environment"
MACHINE = "machine"
MEASUREMENTS = (ENVIRONMENT, MACHINE)
TOPIC_ROOT = "sensors"
# MQTT topic filters a consumer subscribes to: sensors/<measurement>/<sensor or machine id>.
TOPIC_FILTERS = tuple(f"{TOPIC_ROOT}/{m}/+" for m in MEASUREMENTS)
SERIES_TAG = {ENVIRONMENT: "sensor", MACHINE: "machine"}

DEFAULT_START_NS = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z: fixed, so seed alone decides
DAY_S = 86_400.0

# Advertised rates (the tests hold the generator to them).
ANOMALY_RATE = 0.002
"""Probability that an environment point outside an anomaly starts a new anomaly episode."""
FAILURE_RATE = 0.01
"""Probability that a machine point gets an injected HDF, PWF or OSF failure condition."""
TOOL_FAILURE_PROB = 0.5
"""Probability that a tool fails (TWF) at a wear drawn in [200, 240] min instead of being
changed as planned when it would pass 250 min."""

ANOMALY_KINDS = ("spike", "level_shift", "stuck")
PRODUCT_WEIGHTS = (0.5, 0.3, 0.2)  # AI4I: 50 % L, 30 % M, 20 % H
WEAR_PER_PRODUCT = (2.0, 3.0, 5.0)  # AI4I: each process adds 2/3/5 min of wear for L/M/H
OVERSTRAIN_LIMIT = (11_000.0, 12_000.0, 13_000.0)  # AI4I OSF: wear x torque [min Nm] for L/M/H
TOOL_LIFE_MAX = 250.0
TWF_RANGE = (200.0, 240.0)
POWER_RANGE_W = (3_500.0, 9_000.0)
HDF_MAX_DIFF_K = 8.6
HDF_MAX_SPEED = 1_380.0


@dataclass(frozen=True)
class Anomaly:
    """Ground truth for one environment point: which injected episode it belongs to."""

    kind: str
    episode: int


@dataclass(frozen=True)
class MachineLabel:
    """Ground truth for one machine point.

    `modes` are the AI4I failure modes its values meet (natural or injected) plus TWF;
    `injected` is the mode forced on purpose at this point, if any.
    """

    modes: frozenset[str]
    injected: str | None = None


def sensor_names(count: int, prefix: str = "sensor") -> list[str]:
    """Return `prefix-1 .. prefix-count`, the naming the TICKscripts and dashboard expect."""
    return [f"{prefix}-{i}" for i in range(1, count + 1)]


def topic_for(point: Point) -> str:
    """MQTT topic of a point: sensors/<measurement>/<series id>; Telegraf subscribes to it."""
    measurement, tags, _, _ = point
    return f"{TOPIC_ROOT}/{measurement}/{tags[SERIES_TAG[measurement]]}"


def power_w(torque: float, speed_rpm: float) -> float:
    """Mechanical power in W from torque [Nm] and speed [rpm] (the AI4I PWF quantity)."""
    return torque * speed_rpm * 2.0 * math.pi / 60.0


def failure_modes(fields: Fields) -> set[str]:
    """AI4I failure rules that a machine point's values meet (TWF needs the tool's history)."""
    modes = set()
    diff = float(fields["process_temperature"]) - float(fields["air_temperature"])
    speed, torque = float(fields["rotational_speed"]), float(fields["torque"])
    if diff < HDF_MAX_DIFF_K and speed < HDF_MAX_SPEED:
        modes.add("HDF")
    power = power_w(torque, speed)
    if not POWER_RANGE_W[0] <= power <= POWER_RANGE_W[1]:
        modes.add("PWF")
    if float(fields["tool_wear"]) * torque > OVERSTRAIN_LIMIT[int(fields["product_type"])]:
        modes.add("OSF")
    return modes


class EnvironmentSensor:
    """One sensor: daily sinusoid + noise, with spikes, level shifts and stuck values."""

    def __init__(self, name: str, seed: int, anomaly_rate: float, period_s: float) -> None:
        self.name = name
        self.rng = random.Random(f"environment:{seed}:{name}")
        self.anomaly_rate = anomaly_rate
        self.period_s = period_s
        self.base = 22.5 + self.rng.uniform(-1.0, 1.0)
        self.phase = self.rng.uniform(0.0, 2.0 * math.pi)
        self.episode = -1
        self.kind: str | None = None
        self.left = 0
        self.shift = 0.0
        self.last: tuple[float, float] = (self.base, 45.0)

    def _start_episode(self) -> None:
        """Draw the kind and length of a new anomaly episode."""
        self.episode += 1
        self.kind = self.rng.choice(ANOMALY_KINDS)
        sign = self.rng.choice((-1.0, 1.0))
        if self.kind == "spike":
            self.left, self.shift = 1, sign * self.rng.uniform(6.0, 10.0)
        elif self.kind == "level_shift":
            self.left, self.shift = self.rng.randint(20, 60), sign * self.rng.uniform(3.0, 5.0)
        else:
            self.left, self.shift = self.rng.randint(10, 30), 0.0

    def _normal(self, t_ns: int) -> tuple[float, float]:
        """Normal behaviour: temperature follows the day, humidity moves against it."""
        angle = 2.0 * math.pi * (t_ns / 1e9) / self.period_s + self.phase
        daily = 1.5 * math.sin(angle)
        temperature = self.base + daily + self.rng.gauss(0.0, 0.2)
        humidity = min(100.0, max(0.0, 45.0 - 3.0 * daily + self.rng.gauss(0.0, 1.0)))
        return temperature, humidity

    def step(self, t_ns: int) -> tuple[Point, Anomaly | None]:
        """Return the next point and its ground truth."""
        if self.left == 0 and self.rng.random() < self.anomaly_rate:
            self._start_episode()
        temperature, humidity = self._normal(t_ns)
        label = None
        if self.left > 0:
            label = Anomaly(str(self.kind), self.episode)
            if self.kind == "stuck":
                temperature, humidity = self.last
            else:
                temperature += self.shift
            self.left -= 1
        self.last = (temperature, humidity)
        fields: Fields = {"temperature": round(temperature, 3), "humidity": round(humidity, 2)}
        return (ENVIRONMENT, {"sensor": self.name}, fields, t_ns), label


class Machine:
    """One milling machine drawn to resemble the AI4I 2020 data set, with injected failures."""

    def __init__(self, name: str, seed: int, failure_rate: float) -> None:
        self.name = name
        self.rng = random.Random(f"machine:{seed}:{name}")
        self.failure_rate = failure_rate
        self.air = 300.0 + self.rng.gauss(0.0, 2.0)
        self.offset = self.rng.gauss(0.0, 1.0)
        self.wear = 0.0
        self.fail_at = self._draw_tool_life()

    def _draw_tool_life(self) -> float | None:
        """Wear at which the new tool fails (TWF), or None if it lasts to the planned change."""
        if self.rng.random() < TOOL_FAILURE_PROB:
            return self.rng.uniform(*TWF_RANGE)
        return None

    def _drift(self) -> tuple[float, float]:
        """Air temperature and process-air offset as AR(1) walks (sd 2 K and 1 K, as in AI4I)."""
        phi = 0.99
        innovation = math.sqrt(1 - phi**2)
        self.air = 300.0 + phi * (self.air - 300.0) + self.rng.gauss(0.0, 2.0 * innovation)
        self.offset = phi * self.offset + self.rng.gauss(0.0, innovation)
        return self.air, self.air + 10.0 + self.offset

    def _draw(self, product: int) -> Fields:
        """Normal operation: torque ~ N(40, 10); speed ~ 1540 +- 180 rpm, correlated -0.87
        with torque as in AI4I (the power stays fairly steady, so natural PWF stays rare)."""
        air, process = self._drift()
        torque = max(3.0, self.rng.gauss(40.0, 10.0))
        speed = max(1_000.0, 1_540.0 - 15.7 * (torque - 40.0) + self.rng.gauss(0.0, 87.0))
        return {
            "air_temperature": air,
            "process_temperature": process,
            "rotational_speed": speed,
            "torque": torque,
            "tool_wear": self.wear,
            "product_type": product,
        }

    def _inject(self, fields: Fields) -> str:
        """Force one failure condition onto the point and return its mode."""
        modes = ["HDF", "PWF"] + (["OSF"] if self.wear >= 180.0 else [])
        mode = self.rng.choice(modes)
        if mode == "HDF":
            fields["process_temperature"] = float(fields["air_temperature"]) + self.rng.uniform(
                7.0, 8.5
            )
            fields["rotational_speed"] = self.rng.uniform(1_200.0, 1_370.0)
        elif mode == "PWF" and self.rng.random() < 0.5:
            fields["torque"], fields["rotational_speed"] = (
                self.rng.uniform(5.0, 12.0),
                self.rng.uniform(1_400.0, 2_000.0),
            )
        elif mode == "PWF":
            fields["torque"], fields["rotational_speed"] = (
                self.rng.uniform(65.0, 75.0),
                self.rng.uniform(1_400.0, 1_700.0),
            )
        else:
            limit = OVERSTRAIN_LIMIT[int(fields["product_type"])]
            fields["torque"] = limit / self.wear * self.rng.uniform(1.05, 1.2)
        return mode

    def _advance_tool(self, product: int) -> bool:
        """Wear the tool; return True when it fails (TWF) at this point. Changes it when due."""
        failed = self.fail_at is not None and self.wear >= self.fail_at
        if failed or self.wear + WEAR_PER_PRODUCT[product] > TOOL_LIFE_MAX:
            self.wear, self.fail_at = 0.0, self._draw_tool_life()
        else:
            self.wear += WEAR_PER_PRODUCT[product]
        return failed

    def step(self, t_ns: int) -> tuple[Point, MachineLabel]:
        """Return the next point (one finished product) and its ground truth."""
        product = self.rng.choices(range(3), weights=PRODUCT_WEIGHTS)[0]
        fields = self._draw(product)
        injected = self._inject(fields) if self.rng.random() < self.failure_rate else None
        fields = {k: v if k == "product_type" else round(float(v), 3) for k, v in fields.items()}
        modes = failure_modes(fields)
        if self._advance_tool(product):
            modes.add("TWF")
        label = MachineLabel(frozenset(modes), injected)
        return (MACHINE, {"machine": self.name}, fields, t_ns), label


def _times(start_ns: int, step_s: float) -> Iterator[int]:
    """Endless timestamps start, start + step, ... in ns."""
    step_ns = round(step_s * 1e9)
    t = start_ns
    while True:
        yield t
        t += step_ns


def iter_environment(
    seed: int,
    sensors: Sequence[str],
    *,
    start_ns: int = DEFAULT_START_NS,
    step_s: float = 1.0,
    anomaly_rate: float = ANOMALY_RATE,
    period_s: float = DAY_S,
) -> Iterator[list[tuple[Point, Anomaly | None]]]:
    """Endless environment data, one list (one point per sensor) per time step."""
    states = [EnvironmentSensor(s, seed, anomaly_rate, period_s) for s in sensors]
    for t in _times(start_ns, step_s):
        yield [s.step(t) for s in states]


def iter_machines(
    seed: int,
    machines: Sequence[str],
    *,
    start_ns: int = DEFAULT_START_NS,
    step_s: float = 1.0,
    failure_rate: float = FAILURE_RATE,
) -> Iterator[list[tuple[Point, MachineLabel]]]:
    """Endless machine data, one list (one point per machine) per time step."""
    states = [Machine(m, seed, failure_rate) for m in machines]
    for t in _times(start_ns, step_s):
        yield [m.step(t) for m in states]


def environment_labelled(
    seed: int, n: int, sensors: Sequence[str], **options: float
) -> list[tuple[Point, Anomaly | None]]:
    """`n` time steps of environment points with their ground truth, time-ordered."""
    steps = iter_environment(seed, sensors, **options)  # type: ignore[arg-type]
    return [item for _, step in zip(range(n), steps, strict=False) for item in step]


def environment_points(seed: int, n: int, sensors: Sequence[str], **options: float) -> list[Point]:
    """`n` time steps of environment points (one per sensor per step), time-ordered."""
    return [p for p, _ in environment_labelled(seed, n, sensors, **options)]


def machine_labelled(
    seed: int, n: int, machines: Sequence[str], **options: float
) -> list[tuple[Point, MachineLabel]]:
    """`n` time steps of machine points with their ground truth, time-ordered."""
    steps = iter_machines(seed, machines, **options)  # type: ignore[arg-type]
    return [item for _, step in zip(range(n), steps, strict=False) for item in step]


def machine_points(seed: int, n: int, machines: Sequence[str], **options: float) -> list[Point]:
    """`n` time steps of machine points (one per machine per step), time-ordered."""
    return [p for p, _ in machine_labelled(seed, n, machines, **options)]


def iter_all(
    seed: int,
    sensors: Sequence[str],
    machines: Sequence[str],
    *,
    start_ns: int,
    step_s: float,
    anomaly_rate: float = ANOMALY_RATE,
    failure_rate: float = FAILURE_RATE,
    period_s: float = DAY_S,
) -> Iterator[list[Point]]:
    """Endless combined data for the publisher: all points of one time step per item."""
    env = iter_environment(
        seed,
        sensors,
        start_ns=start_ns,
        step_s=step_s,
        anomaly_rate=anomaly_rate,
        period_s=period_s,
    )
    mach = iter_machines(
        seed, machines, start_ns=start_ns, step_s=step_s, failure_rate=failure_rate
    )
    for env_step, mach_step in zip(env, mach, strict=False):
        yield [p for p, _ in env_step] + [p for p, _ in mach_step]


# --- InfluxDB line protocol -------------------------------------------------------------------

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})


def _check_name(text: str) -> None:
    """Reject what line protocol cannot carry in names: newlines and a trailing backslash."""
    if not text or "\n" in text or text.endswith("\\"):
        raise ValueError(f"not representable in line protocol: {text!r}")


def _escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key (commas, equals signs, spaces)."""
    _check_name(text)
    return text.translate(_KEY_ESCAPES)


def _field_value(value: float | int | bool | str) -> str:
    """Format a field value with its type: 1.5, 3i, true, "text"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"line protocol has no NaN or infinity: {value!r}")
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"unsupported field value {value!r}")


def to_line_protocol(point: Point) -> str:
    """One point as a line of InfluxDB line protocol (ns precision, tags sorted by key)."""
    measurement, tags, fields, t_ns = point
    if not fields:
        raise ValueError("a point needs at least one field")
    _check_name(measurement)
    head = measurement.translate(_MEASUREMENT_ESCAPES)
    tag_part = "".join(
        f",{_escape_key(k)}={_escape_key(v)}" for k, v in sorted(tags.items()) if v != ""
    )
    field_part = ",".join(f"{_escape_key(k)}={_field_value(v)}" for k, v in fields.items())
    return f"{head}{tag_part} {field_part} {int(t_ns)}"


def to_line_protocol_batch(points: Sequence[Point]) -> str:
    """Several points as one write body (newline-terminated lines)."""
    return "".join(to_line_protocol(p) + "\n" for p in points)
