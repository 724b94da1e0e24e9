"""Results survive an InfluxDB outage: the shipped tasks write through Telegraf (the shipped
deploy/telegraf/results.conf, our own build) to a real influxd that is stopped for a minute
under load; the health check says so during the outage and is healthy after. Beyond the
buffer's bound the loss is counted by Telegraf and named by the health check."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kapacitorkit.ports import free_port
from localstack.entrypoint import LocalEntrypoint, make_home
from localstack.influxd import LocalInfluxd
from localstack.process import Process
from tests.testbed import ROOT, wait_for

pytestmark = [pytest.mark.kapacitor, pytest.mark.influxdb]

RATE = 500  # points/s into Kapacitor, each giving one anomaly score
SENSORS = 5


class Influx(LocalInfluxd):
    def start_again(self) -> None:
        """Start the stopped influxd on its port and data (an outage that ends)."""
        self._log = self.log_path.open("ab")
        self._spawn()
        if not wait_for(self._ping, 30):
            raise RuntimeError(f"influxd did not come back:\n{self.log_text()[-2000:]}")


def telegraf_binary() -> str:
    built = subprocess.run(["bash", str(ROOT / "scripts" / "install_telegraf.sh")],
                           capture_output=True, text=True, timeout=900)
    if built.returncode != 0:
        pytest.fail(f"scripts/install_telegraf.sh failed:\n{built.stderr[-2000:]}")
    return built.stdout.strip().splitlines()[-1]


class Bed:
    """influxd, Telegraf with the shipped results.conf, and the entrypoint running the
    shipped temperature tasks with INFLUXDB_RESULTS_URL pointing at Telegraf."""

    def __init__(self, root: Path, kapacitor_bin: Path, buffer_limit: int,
                 extra: dict[str, str] | None = None) -> None:
        self.influx = Influx(_mkdir(root / "influxd"))
        self.influx.query("CREATE DATABASE telemetry")
        listen = f"127.0.0.1:{free_port()}"
        self.telegraf = Process(
            [telegraf_binary(), "--config", str(ROOT / "deploy" / "telegraf" / "results.conf")],
            root / "telegraf.log",
            env={"PATH": "/usr/bin:/bin", "INFLUXDB_URL": self.influx.url,
                 "RESULTS_LISTEN": listen, "RESULTS_BUFFER_LIMIT": str(buffer_limit)})
        assert wait_for(lambda: "Started HTTP listener" in self.telegraf.log_text(), 15), \
            self.telegraf.log_text()
        home = make_home(root)
        shipped = json.loads((ROOT / "config" / "config.json").read_text())
        keep = {"temperature_alerts", "temperature_anomalies"}
        tasks = [t for t in shipped["tasks"] if t["name"] in keep]
        udfs = {u for t in tasks for u in t["udfs"]}
        for name, tick in (extra or {}).items():  # tasks without UDFs
            (home / "tick_scripts" / f"{name}.tick").write_text(tick)
            tasks.append({"name": name, "tick_script": f"{name}.tick", "type": "stream",
                          "dbrps": tasks[0]["dbrps"], "udfs": [], "enabled": True})
            keep.add(name)
        config = {"udfs": [u for u in shipped["udfs"] if u["name"] in udfs], "tasks": tasks}
        (home / "config" / "config.json").write_text(json.dumps(config))
        self.run = LocalEntrypoint(home, root, kapacitor_bin, self.influx.url,
                                   INFLUXDB_RESULTS_URL=f"http://{listen}",
                                   RESULTS_BUFFER_LIMIT=str(buffer_limit), LOG_LEVEL="INFO")
        self.run.wait_tasks(sorted(keep), timeout=60)
        self.sent = self.out_of_band = 0

    def health(self) -> tuple[int, str]:
        done = subprocess.run([sys.executable, "-m", "entrypoint.health"], env=self.run._env,
                              capture_output=True, text=True, timeout=30)
        return done.returncode, done.stdout

    def load(self, seconds: float, start_ms: int) -> threading.Thread:
        """RATE points/s for `seconds`, written to Kapacitor in tenths of a second; every
        tenth reading is out of the comfort band (an environment alert)."""
        def send() -> None:
            began, tick = time.monotonic(), 0
            while time.monotonic() < began + seconds:  # a slow machine sends less, not longer
                tick += 1
                lines = []
                for _ in range(RATE // 10):
                    n = self.sent
                    value = 26.0 if n % 10 == 0 else 22.0 + (n % 7) / 10
                    self.out_of_band += value > 25
                    lines.append(f"environment,sensor=s{n % SENSORS} temperature={value},"
                                 f"humidity=40 {start_ms + n // SENSORS}\n")
                    self.sent += 1
                self.run.api.write("".join(lines), db="telemetry", precision="ms")
                time.sleep(max(0.0, began + tick / 10 - time.monotonic()))
        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        return thread

    def count(self, measurement: str, db: str = "telemetry") -> int:
        """Points of a measurement in InfluxDB (its most complete field's count)."""
        try:
            rows = self.influx.query(f'SELECT count(*) FROM "{measurement}"', db)
        except RuntimeError:  # no such database (yet)
            return 0
        return max((v for k, v in rows[0].items() if k.startswith("count_")), default=0) \
            if rows else 0

    def stop(self) -> None:
        for process in (self.run, self.telegraf, self.influx):
            process.stop()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def bed(kapacitor_bin, tmp_path) -> Iterator:
    made: list[Bed] = []

    def make(buffer_limit: int, extra: dict[str, str] | None = None) -> Bed:
        made.append(Bed(tmp_path, kapacitor_bin, buffer_limit, extra))
        return made[-1]

    yield make
    for each in made:
        each.stop()


def dropped_by_telegraf(log: str) -> int:
    return sum(int(n) for n in re.findall(r"Metric buffer overflow; (\d+) metrics have been "
                                          r"dropped", log))


def test_influxdb_stopped_for_60_s_under_load_loses_no_result(bed):
    b = bed(buffer_limit=300_000)  # the shipped size
    start_ms = int(time.time() * 1000) - 3_600_000
    load = b.load(70, start_ms)
    time.sleep(5)
    b.influx.stop()
    outage = time.monotonic()
    assert wait_for(lambda: b.health()[0] == 1, 30)
    unhealthy_after = time.monotonic() - outage
    said = b.health()[1]
    assert re.search(r"unhealthy: InfluxDB at http://127\.0\.0\.1:\d+ unreachable: .* \(since "
                     r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)", said), said
    time.sleep(max(0.0, outage + 60 - time.monotonic()))
    b.influx.start_again()
    back = time.monotonic()
    assert wait_for(lambda: b.health()[0] == 0, 45), b.health()[1]
    healthy_after = time.monotonic() - back
    load.join(30)
    assert not load.is_alive()
    expected = {"anomaly_scores": b.sent, "environment_alerts": b.out_of_band}
    found = wait_for(lambda: (c := {m: b.count(m) for m in expected}) == expected and c, 90)
    assert found == expected, ({m: b.count(m) for m in expected}, expected,
                               b.telegraf.log_text()[-2000:])
    assert dropped_by_telegraf(b.telegraf.log_text()) == 0
    print(f"\nfigures: {b.sent} points in over 70 s, InfluxDB stopped {back - outage:.0f} s; "
          f"stored {found}; unhealthy {unhealthy_after:.1f} s into the outage, healthy "
          f"{healthy_after:.1f} s after InfluxDB was back; all stored "
          f"{time.monotonic() - back:.1f} s after")
    assert "failed to write points to InfluxDB" not in b.run.log_text()


def test_beyond_the_buffer_the_oldest_results_are_dropped_counted_and_named(bed):
    b = bed(buffer_limit=1000)
    start_ms = int(time.time() * 1000) - 3_600_000
    load = b.load(16, start_ms)
    time.sleep(2)
    b.influx.stop()
    assert wait_for(lambda: "results buffer overflowing" in b.health()[1], 20), b.health()[1]
    load.join(30)
    b.influx.start_again()
    scores, alerts = b.sent, b.out_of_band

    def accounted() -> tuple[int, int] | None:
        """(stored, dropped) once every result is either in InfluxDB or counted dropped."""
        stored = b.count("anomaly_scores") + b.count("environment_alerts")
        dropped = dropped_by_telegraf(b.telegraf.log_text())
        return (stored, dropped) if stored + dropped == scores + alerts else None
    found = wait_for(accounted, 60)
    assert found, (b.count("anomaly_scores"), b.count("environment_alerts"),
                   dropped_by_telegraf(b.telegraf.log_text()), scores, alerts)
    stored, dropped = found
    assert dropped > 0 and stored >= 1000  # the buffer's worth, and what came before
    print(f"\nfigures: buffer 1000, {scores} scores + {alerts} alerts in, InfluxDB stopped "
          f"for the last {16 - 2} s of load: {stored} stored, {dropped} dropped (Telegraf)")


FRESH_TICK = """
stream
    |from()
        .measurement('environment')
    |influxDBOut()
        .database('fresh')
        .retentionPolicy('autogen')
        .measurement('copied')
"""
REFUSED_TICK = FRESH_TICK.replace("'fresh'", "'telemetry'").replace("'autogen'", "'forever'")


def test_behind_the_buffer_a_new_database_is_created_and_a_refusal_is_named(bed):
    """The buffer takes every write, so Kapacitor sees no error. A database InfluxDB lacks
    is created before the first write to it (as influxDBOut().create() means to); a
    retention policy it lacks makes InfluxDB refuse and Telegraf drop: the health check
    names that task, and only that one."""
    b = bed(buffer_limit=300_000, extra={"fresh": FRESH_TICK, "refused": REFUSED_TICK})
    load = b.load(2, int(time.time() * 1000) - 3_600_000)
    assert wait_for(lambda: "task refused:" in b.health()[1], 20), b.health()[1]
    load.join(10)
    assert wait_for(lambda: b.count("copied", db="fresh") == b.sent, 30), \
        (b.count("copied", db="fresh"), b.sent, b.telegraf.log_text()[-2000:])
    # the new database's line goes at the next check; the refused one stays
    assert wait_for(lambda: "task fresh" not in b.health()[1], 15), b.health()[1]
    said = b.health()[1]
    assert re.search(r"unhealthy: task refused: writes its results to telemetry\.forever, a "
                     r"retention policy InfluxDB at http://127\.0\.0\.1:\d+ does not have: they "
                     r"are refused", said), said
    assert "temperature_" not in said, said
    # dropped by Telegraf (it does not retry a refusal other than a missing database)
    assert wait_for(lambda: "retention policy not found: forever" in b.telegraf.log_text(), 20)
    assert "failed to write points to InfluxDB" not in b.run.log_text()  # unseen by Kapacitor


def test_compose_sends_results_through_the_buffer() -> None:
    """The Compose stack runs the configuration tested above, sized as results.conf says."""
    out = subprocess.run(["docker-compose", "config"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    services = yaml.safe_load(out.stdout)["services"]
    buffer, kapacitor = services["results-buffer"], services["kapacitor"]
    assert buffer["volumes"] == [f"{ROOT}/deploy/telegraf/results.conf:/etc/telegraf/"
                                 "results.conf:ro"]
    assert buffer["command"][-1] == "/etc/telegraf/results.conf"
    assert "influxdb" not in buffer.get("depends_on", {})  # takes results while InfluxDB is away
    env = kapacitor["environment"]
    assert env["INFLUXDB_RESULTS_URL"] == "http://results-buffer:8186"
    assert env["RESULTS_BUFFER_LIMIT"] == buffer["environment"]["RESULTS_BUFFER_LIMIT"]
    conf = (ROOT / "deploy" / "telegraf" / "results.conf").read_text()
    assert "metric_buffer_limit = ${RESULTS_BUFFER_LIMIT:-300000}" in conf
    assert env["RESULTS_BUFFER_LIMIT"] == "300000"
