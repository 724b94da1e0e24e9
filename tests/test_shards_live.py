"""Three Kapacitor shards behind the Telegraf shard router, for real (docs/scaling.md).

docker-compose.yml plus the generated docker-compose.shards.yml: InfluxDB, the router
(Telegraf with deploy/telegraf/router.conf) and kapacitor, kapacitor-1, kapacitor-2 (our
image, each with its own volume). The test is the data source: the simulator's series
(simulator.generate, 9 sensors and 6 machines), one point per series per 100 ms tick, written
to the router's InfluxDB listener, so every count below is exact:

1. every series lands on exactly one shard, the one scripts/shards.py computes (so the
   router's Starlark and the Python mirror agree), and its results carry that shard's tag;
2. `docker kill` of one shard while points flow: the other shards' results go on; the killed
   shard, started again, resumes from its snapshot (the moving average needs no new warm-up)
   and gets every point it missed: points in = points out, per series, over all shards;
3. killed again for longer than its output buffer holds: the oldest of its points are dropped,
   the newest delivered, the other shards unaffected, and Telegraf says so in its log;
4. the batch tasks process each machine once (only its shard's batch query selects it);
5. growing from 3 to 4 shards moves at most 1/3 of the series, all to the new shard, which
   then produces their results.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kapacitorkit.api import ApiError, KapacitorApi
from localstack.polling import wait_for
from simulator.generate import iter_all, to_line_protocol_batch
from tests.dockerbed import COMPOSE, REPORT, ROOT, docker, ensure_base_images, poll, unique
from tests.test_shards import shards

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

SENSORS = [f"sensor-{i}" for i in range(1, 10)]
MACHINES = [f"mill-{i}" for i in range(1, 7)]
TICK_S = 0.1
WARMUP = 10  # moving_average's window: outputs start at the 10th point of a series
FLUSH_S = 1.0  # the TICKscripts' influxDBOut flushInterval
PROJECT_FILES = ("docker-compose.yml", "Dockerfile", "deploy", "udfs", "tick_scripts", "config",
                 "simulator")
TASKS = ("temperature_alerts", "humidity_alerts", "temperature_moving_average",
         "temperature_anomalies", "machine_failure", "machine_failure_batch", "torque_outliers")


def key(series: str) -> str:
    measurement, tag = ("environment", "sensor") if series.startswith("sensor") else \
        ("machine", "machine")
    return shards.series_key(measurement, {tag: series})


def owner(series: str, count: int) -> int:
    return shards.shard_of(key(series), count)


class Stack:
    """One compose project in a copy of the repo's files; `down()` removes all it made."""

    def __init__(self, workdir: Path, shard_count: int, buffer_limit: int) -> None:
        for name in PROJECT_FILES:
            src, dst = ROOT / name, workdir / name
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, dst)
        self.dir = workdir
        self.buffer_limit = buffer_limit
        self.name = unique("kmushards").replace("-", "")
        self.env = {**os.environ, "INFLUXDB_PORT": "", "KAPACITOR_PORT": "", "ROUTER_PORT": "",
                    "GRAFANA_PORT": ""}
        self.generate(shard_count)

    def generate(self, shard_count: int) -> None:
        """The router and compose files for shard_count shards, plus a 2 s snapshot interval."""
        shards.write(shard_count, self.dir, self.buffer_limit)
        services = {shards.kapacitor_host(i): {"environment": {
            "KAPACITOR_TASK_SNAPSHOT_INTERVAL": "2s"}} for i in range(shard_count)}
        (self.dir / "docker-compose.test.yml").write_text(
            json.dumps({"version": "3.8", "services": services}))
        for path in [self.dir, *self.dir.rglob("*")]:  # readable by the containers' users
            path.chmod(0o755 if path.is_dir() else 0o644)

    def __call__(self, *args: str, timeout: float = 300.0) -> str:
        cmd = [COMPOSE, "--project-name", self.name, "--project-directory", str(self.dir)]
        for name in ("docker-compose.yml", "docker-compose.shards.yml", "docker-compose.test.yml"):
            cmd += ["-f", str(self.dir / name)]
        out = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout,
                             env=self.env, cwd=self.dir)
        assert out.returncode == 0, f"docker-compose {' '.join(args)}:\n{out.stderr[-3000:]}"
        return out.stdout

    def url(self, service: str, port: int) -> str:
        host, _, number = self("port", service, str(port)).strip().rpartition(":")
        assert host == "127.0.0.1", f"{service}:{port} published on {host}"
        return f"http://127.0.0.1:{number}"

    def container(self, service: str) -> str:
        return self("ps", "-q", service).strip()

    def down(self) -> None:
        self("down", "--volumes", "--remove-orphans", "--timeout", "10")


@dataclass
class Feed:
    """The simulator's series, one point each per tick, written to the router tick by tick.

    A tick is stamped with the time it is sent, so the batch tasks (the last minute, every
    minute) always find the points of the last minute.
    """

    router: str
    times: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.steps = iter_all(16, SENSORS, MACHINES, start_ns=time.time_ns(), step_s=TICK_S)

    @property
    def sent(self) -> int:
        return len(self.times)

    @property
    def start_ns(self) -> int:
        return self.times[0]

    def tick_ns(self, tick: int) -> int:
        """The time of a tick sent, or the end of the last one for tick == sent."""
        return self.times[tick] if tick < self.sent else self.times[-1] + 1

    def send(self, ticks: int) -> None:
        for _ in range(ticks):
            now = time.time_ns()
            points = [(m, tags, fields, now) for m, tags, fields, _ in next(self.steps)]
            body = to_line_protocol_batch(points).encode()
            request = urllib.request.Request(f"{self.router}/write?db=telemetry", data=body,
                                             method="POST")
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 204
            self.times.append(now)
            time.sleep(TICK_S)


def query(influx: str, q: str) -> list[dict]:
    """Every series of the first result, with times in ns."""
    params = urllib.parse.urlencode({"q": q, "db": "telemetry", "epoch": "ns"})
    with urllib.request.urlopen(f"{influx}/query?{params}", timeout=20) as answer:
        result = json.loads(answer.read())["results"][0]
    assert "error" not in result, f"{q}: {result['error']}"
    return result.get("series", [])


def output_times(influx: str, measurement: str, value_field: str, lo: int, hi: int
                 ) -> dict[tuple[str, str], list[int]]:
    """{(series, shard): times} of a measurement's points with lo <= time < hi."""
    tag = "sensor" if measurement in ("environment", "environment_smoothed",
                                      "anomaly_scores") else "machine"
    rows = query(influx, f'SELECT "{value_field}" FROM "{measurement}" WHERE time >= {lo} '
                         f'AND time < {hi} GROUP BY "{tag}", "shard"')
    return {(s["tags"][tag], s["tags"].get("shard", "")): [v[0] for v in s["values"]]
            for s in rows}


def per_series(times: dict[tuple[str, str], list[int]]) -> dict[str, list[int]]:
    merged: dict[str, list[int]] = {}
    for (series, _), values in times.items():
        merged.setdefault(series, []).extend(values)
    return {s: sorted(v) for s, v in merged.items()}


def tasks_executing(api: KapacitorApi) -> bool:
    try:
        states = {t["id"]: t for t in api.tasks("executing")}
    except (OSError, ApiError):
        return False
    return all(states.get(n, {}).get("executing") for n in TASKS)


@pytest.fixture
def stack(kapacitor_image: str, tmp_path: Path) -> Iterator[Stack]:
    ensure_base_images("influxdb", "mosquitto", "telegraf")
    victim_series = [s for s in SENSORS + MACHINES if owner(s, 3) == 1]
    # The buffer holds 60 ticks of the victim's points: a 30-tick outage fits, 100 do not.
    compose = Stack(tmp_path, 3, buffer_limit=60 * len(victim_series))
    try:
        compose("up", "-d", "--no-build", "influxdb", "mosquitto", "kapacitor", "kapacitor-1",
                "kapacitor-2", "telegraf", timeout=600)
        yield compose
    finally:
        compose.down()


def wait_outputs(influx: str, feed: Feed, series: list[str], upto: int, what: str) -> None:
    """Until every listed series has its anomaly score for tick upto - 1."""
    last = feed.tick_ns(upto - 1)

    def done() -> bool:
        got = per_series(output_times(influx, "anomaly_scores", "anomaly_score", last, last + 1)
                         ) | per_series(output_times(influx, "machine_predictions", "prediction",
                                                     last, last + 1))
        return all(got.get(s) for s in series)
    poll(done, 90, what)


def restart(stack: Stack, service: str) -> None:
    docker("start", stack.container(service))
    api = KapacitorApi(stack.url(service, 9092))
    poll(lambda: tasks_executing(api), 120, f"{service} executing its tasks again")


def test_three_shards_kill_one_then_grow_to_four(stack: Stack) -> None:
    influx = stack.url("influxdb", 8086)
    feed = Feed(stack.url("telegraf", shards.ROUTER_PORT))
    everyone = SENSORS + MACHINES
    victim = [s for s in everyone if owner(s, 3) == 1]
    others = [s for s in everyone if s not in victim]
    assert victim and others

    # 1. all up; kill shard 1 between two ticks while points flow, 30 ticks, restart
    feed.send(60)
    docker("kill", stack.container("kapacitor-1"))
    feed.send(30)
    wait_outputs(influx, feed, others, 90, "the other shards' results while shard 1 is down")
    restart(stack, "kapacitor-1")
    feed.send(30)
    check_every_point_processed_once(influx, feed, victim, 0, 120, killed_at=60)

    # 2. killed for longer than its buffer holds (100 ticks, the buffer 60)
    docker("kill", stack.container("kapacitor-1"))
    feed.send(100)
    restart(stack, "kapacitor-1")
    feed.send(20)
    check_overflow_dropped_oldest(stack, influx, feed, victim, others)

    # 3. batch tasks: each machine's batch ran on its own shard only
    grown_at = feed.tick_ns(feed.sent)
    check_batches_once(influx, feed.start_ns, grown_at)

    # 4. grow to 4 shards: the new shard first, then the router with the new config
    stack.generate(4)
    stack("up", "-d", "--no-build", "kapacitor-3", timeout=600)
    poll(lambda: tasks_executing(KapacitorApi(stack.url("kapacitor-3", 9092))), 180,
         "kapacitor-3 executing its tasks")
    stack("up", "-d", "--no-build", "--no-deps", "--force-recreate", "telegraf")
    feed.router = stack.url("telegraf", shards.ROUTER_PORT)
    poll(lambda: reachable(feed.router), 60, "the router listening again")
    first = feed.sent
    feed.send(30)
    check_growth(influx, feed, first)


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2):
            return True
    except OSError:
        return False


def check_every_point_processed_once(influx: str, feed: Feed, victim: list[str], first: int,
                                     end: int, killed_at: int) -> None:
    """Points in = points out for every series, each on its own shard; the killed shard got
    every point from the kill on (the router's buffer) and resumed from its snapshot (its
    moving average needs no second warm-up).

    The one loss allowed: results the killed Kapacitor had computed but not yet written
    (influxDBOut flushes every second), i.e. points just before the kill, on its series only.
    """
    lo, hi = feed.tick_ns(first), feed.tick_ns(end)
    series = SENSORS + MACHINES
    want = {s: [feed.tick_ns(t) for t in range(first, end)] for s in series}
    flush_window = set(range(killed_at - int(FLUSH_S / TICK_S) - 5, killed_at))

    def outputs() -> tuple[dict, dict, dict]:
        return (output_times(influx, "anomaly_scores", "anomaly_score", lo, hi),
                output_times(influx, "machine_predictions", "prediction", lo, hi),
                output_times(influx, "environment_smoothed", "temperature_avg", lo, hi))

    def lost(got: dict[str, list[int]]) -> dict[str, set[int]]:
        return {s: {feed.times.index(t) for t in set(want[s]) - set(got.get(s, []))}
                for s in series}

    def complete() -> bool:
        scores, predictions, _ = outputs()
        gone = lost(per_series(scores) | per_series(predictions))
        return all(not g or (s in victim and g <= flush_window) for s, g in gone.items())
    wait_for(complete, 120, 0.5)
    scores, predictions, smoothed = outputs()
    got = per_series(scores) | per_series(predictions)
    gone = lost(got)
    unexpected = {s: g for s, g in gone.items() if g and not (s in victim and g <= flush_window)}
    assert not unexpected, "points in != points out:\n" + missing(feed, got, want)
    assert all(len(v) == len(set(v)) for v in got.values()), "a point processed twice"
    REPORT["shards: kill"] = (f"{sum(map(len, gone.values()))} results of the killed shard "
                              "not yet flushed at the kill; every later point processed")
    raw = output_times(influx, "environment", "temperature", lo, hi) | output_times(
        influx, "machine", "torque", lo, hi)
    for (name, shard) in raw:  # the router's tag in InfluxDB
        assert shard == str(owner(name, 3)), (name, shard)
    assert sorted(n for n, _ in raw) == sorted(series), "every series on exactly one shard"
    assert per_series(raw) == want, "InfluxDB did not store every raw point"
    for (name, shard) in {**scores, **predictions, **smoothed}:  # the producer's tag
        assert shard == str(owner(name, 3)), (name, shard)
    for sensor, times in per_series(smoothed).items():
        expected = want[sensor][WARMUP - 1:]
        if sensor in victim:  # from the kill on, no gap: the window came back from the snapshot
            expected = [t for t in expected if feed.times.index(t) >= killed_at]
            times = [t for t in times if feed.times.index(t) >= killed_at]
        assert times == expected, f"{sensor}: moving average gap or a second warm-up"


def missing(feed: Feed, got: dict[str, list[int]], want: dict[str, list[int]]) -> str:
    """Per series: the ticks without a result and the ticks with more than one."""
    lines = []
    for name, times in sorted(want.items()):
        have = got.get(name, [])
        lost = sorted(set(times) - set(have))
        extra = len(have) - len(set(have))
        if lost or extra:
            ticks = [feed.times.index(t) for t in lost]
            lines.append(f"  {name} (shard {owner(name, 3)}): {len(lost)} missing "
                         f"(ticks {ticks[:12]}{'...' if len(ticks) > 12 else ''}), {extra} twice")
    return "\n".join(lines)


def check_overflow_dropped_oldest(stack: Stack, influx: str, feed: Feed, victim: list[str],
                                  others: list[str]) -> None:
    """Beyond the buffer: the victim's newest points delivered, the oldest dropped."""
    outage = [feed.tick_ns(t) for t in range(120, 220)]
    lo, hi = feed.tick_ns(120), feed.tick_ns(240)
    wait_outputs(influx, feed, others + victim, 240, "the last tick's results of every series")
    got = per_series(output_times(influx, "anomaly_scores", "anomaly_score", lo, hi)
                     ) | per_series(output_times(influx, "machine_predictions", "prediction",
                                                 lo, hi))
    full = [feed.tick_ns(t) for t in range(120, 240)]
    for name in others:
        assert got[name] == full, f"{name} (another shard) lost points"
    delivered = 0
    for name in victim:
        during = [t for t in got[name] if t in set(outage)]
        assert during, f"{name}: none of the newest points delivered"
        assert during == outage[len(outage) - len(during):], f"{name}: not the newest kept"
        assert got[name][len(during):] == full[100:], f"{name}: points after the outage"
        delivered += len(during)
    dropped = 100 * len(victim) - delivered
    REPORT["shards: overflow"] = (f"buffer {stack.buffer_limit} points: {delivered} newest "
                                  f"delivered, {dropped} oldest dropped")
    assert 0 < delivered <= stack.buffer_limit < 100 * len(victim), (delivered, dropped)
    logs = stack("logs", "--no-color", "telegraf")
    assert "buffer overflow" in logs.lower() or "dropped" in logs.lower(), logs[-2000:]


def check_batches_once(influx: str, start_ns: int, end_ns: int) -> None:
    """machine_failure_batch results: every machine, each from its own shard only."""
    def machines() -> dict[str, set[str]]:
        rows = query(influx, f'SELECT "prediction" FROM "machine_predictions_batch" WHERE '
                             f'time >= {start_ns} AND time < {end_ns} GROUP BY "machine", "shard"')
        found: dict[str, set[str]] = {}
        for s in rows:
            found.setdefault(s["tags"]["machine"], set()).add(s["tags"]["shard"])
        return found
    found = poll(lambda: (m := machines()).keys() >= set(MACHINES) and m, 150,
                 "a batch run over the data for every machine")
    assert found == {m: {str(owner(m, 3))} for m in MACHINES}


def check_growth(influx: str, feed: Feed, first: int) -> None:
    lo, hi = feed.tick_ns(first), feed.tick_ns(feed.sent)
    everyone = SENSORS + MACHINES
    moved = [s for s in everyone if owner(s, 3) != owner(s, 4)]
    assert len(moved) <= len(everyone) / 3 and all(owner(s, 4) == 3 for s in moved), moved
    want = [feed.tick_ns(t) for t in range(first, feed.sent)]

    def results() -> dict[tuple[str, str], list[int]]:
        return output_times(influx, "anomaly_scores", "anomaly_score", lo, hi) | output_times(
            influx, "machine_predictions", "prediction", lo, hi)
    poll(lambda: per_series(results()) == {s: want for s in everyone}, 120,
         "results of every series after growing to 4 shards")
    assert {name: shard for name, shard in results()} == {
        s: str(owner(s, 4)) for s in everyone}
    raw = output_times(influx, "environment", "temperature", lo, hi) | output_times(
        influx, "machine", "torque", lo, hi)
    assert {name: shard for name, shard in raw} == {s: str(owner(s, 4)) for s in everyone}
