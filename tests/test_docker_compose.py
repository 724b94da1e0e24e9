"""docker-compose.yml run for real: the data path and DEV_MODE, then `down -v` leaves nothing.

Every service that can be built here comes up (Grafana cannot: no registry serves it, and it
has no Debian package; tests/test_docker.py runs its dashboard's queries instead). The compose
files, configs and code are copied to a temporary project directory, so DEV_MODE's edits never
touch the working tree. Host ports are free loopback ports (INFLUXDB_PORT="" etc.).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kapacitorkit.api import ApiError, KapacitorApi
from tests.dockerbed import COMPOSE, ROOT, docker, ensure_base_images, influx_rows, poll, unique
from tests.test_docker import TASKS, udf_pids

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

PROJECT_FILES = ("docker-compose.yml", "docker-compose-dev.override.yml", "Dockerfile",
                 "deploy", "udfs", "tick_scripts", "config", "simulator")
DATA_PATH = ("influxdb", "kapacitor", "mosquitto", "telegraf", "simulator")


class Compose:
    """One compose project in a copy of the repo's files; `down()` removes all it made."""

    def __init__(self, workdir: Path, *files: str) -> None:
        for name in PROJECT_FILES:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, workdir / name,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, workdir / name)
        for path in [workdir, *workdir.rglob("*")]:  # readable by the containers' users
            path.chmod(0o755 if path.is_dir() else 0o644)
        self.dir = workdir
        self.name = unique("kmutest").replace("-", "")
        self.files = files or ("docker-compose.yml",)
        self.env = {**os.environ, "INFLUXDB_PORT": "", "KAPACITOR_PORT": "", "GRAFANA_PORT": ""}

    def __call__(self, *args: str, timeout: float = 300.0) -> str:
        cmd = [COMPOSE, "--project-name", self.name, "--project-directory", str(self.dir)]
        for f in self.files:
            cmd += ["-f", str(self.dir / f)]
        out = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout,
                             env=self.env, cwd=self.dir)
        assert out.returncode == 0, f"docker-compose {' '.join(args)}:\n{out.stderr[-3000:]}"
        return out.stdout

    def port(self, service: str, container_port: int) -> str:
        host, _, port = self("port", service, str(container_port)).strip().rpartition(":")
        assert host == "127.0.0.1", f"{service}:{container_port} published on {host}"
        return f"http://127.0.0.1:{port}"

    def container(self, service: str) -> str:
        return self("ps", "-q", service).strip()

    def logs(self, service: str) -> str:
        return self("logs", "--no-color", service)

    def leftovers(self) -> list[str]:
        label = f"label=com.docker.compose.project={self.name}"
        found = []
        for kind, ls in (("container", ["ps", "-a"]), ("network", ["network", "ls"]),
                         ("volume", ["volume", "ls"])):
            found += [f"{kind} {i}" for i in
                      docker(*ls, "-q", "--filter", label).stdout.split()]
        return found

    def down(self) -> None:
        self("down", "--volumes", "--remove-orphans", "--timeout", "10")


def wait_executing(api: KapacitorApi) -> None:
    def executing() -> bool:
        try:
            states = {t["id"]: t for t in api.tasks("executing")}
        except (OSError, ApiError):
            return False
        return all(states.get(n, {}).get("executing") for n in TASKS)
    poll(executing, 240, f"all of {TASKS} executing")


@pytest.fixture
def images(kapacitor_image: str, simulator_image: str) -> None:
    ensure_base_images("influxdb", "mosquitto", "telegraf")


@pytest.fixture
def stack(images, tmp_path: Path) -> Iterator[Compose]:
    compose = Compose(tmp_path)
    compose("up", "-d", "--no-build", *DATA_PATH)
    try:
        yield compose
    finally:
        compose.down()
        assert compose.leftovers() == [], "docker-compose down -v left these behind"


@pytest.fixture
def dev_stack(images, tmp_path: Path) -> Iterator[Compose]:
    compose = Compose(tmp_path, "docker-compose.yml", "docker-compose-dev.override.yml")
    compose("up", "-d", "--no-build", "kapacitor")
    try:
        yield compose
    finally:
        compose.down()
        assert compose.leftovers() == [], "docker-compose down -v left these behind"


def test_points_flow_simulator_mqtt_telegraf_influxdb_kapacitor(stack: Compose) -> None:
    influx = stack.port("influxdb", 8086)
    # Telegraf stores what the simulator publishes on MQTT ...
    for measurement in ("environment", "machine"):
        poll(lambda m=measurement: influx_rows(influx, f'SELECT * FROM "{m}" LIMIT 1'), 180,
             f"{measurement} points from the simulator via MQTT and Telegraf\n"
             f"{stack.logs('telegraf')[-2000:]}")
    # ... and feeds the stream tasks, whose UDF results land in InfluxDB.
    for measurement in ("machine_predictions", "environment_smoothed"):
        poll(lambda m=measurement: influx_rows(influx, f'SELECT * FROM "{m}" LIMIT 1'), 180,
             f"{measurement} written by Kapacitor\n{stack.logs('kapacitor')[-2000:]}")
    kapacitor = json.loads(docker("inspect", stack.container("kapacitor")).stdout)[0]
    assert kapacitor["State"]["Health"]["Status"] == "healthy"


def test_dev_mode_redefines_only_what_changed(dev_stack: Compose) -> None:
    compose = dev_stack
    api = KapacitorApi(compose.port("kapacitor", 9092))
    wait_executing(api)
    box_id = compose.container("kapacitor")

    class Box:  # udf_pids wants an object with exec()
        def exec(self, *cmd: str) -> str:
            return docker("exec", box_id, *cmd).stdout

    box = Box()

    def settled_pids() -> dict[str, set[int]]:
        time.sleep(1.0)
        return udf_pids(box)

    # A TICKscript edit: only its task is redefined.
    before = settled_pids()
    tick = compose.dir / "tick_scripts/temperature_alerts.tick"
    tick.write_text(tick.read_text() + "\n// edited by the DEV_MODE test\n")
    poll(lambda: "edited by the DEV_MODE test" in api.task("temperature_alerts")["script"], 60,
         "temperature_alerts redefined from the edited TICKscript")
    poll(lambda: api.task("temperature_alerts").get("executing"), 30, "it executing again")
    logs = compose.logs("kapacitor")
    assert "dev: task temperature_alerts: redefining" in logs
    assert logs.count("dev: task ") == 1, [ln for ln in logs.splitlines() if "dev: task" in ln]
    after = settled_pids()
    for script, pids in before.items():
        if script != "temperature_classifier.py":
            assert after.get(script) == pids, f"{script} restarted by a TICKscript edit"

    # A UDF edit: only the tasks that use it restart.
    before = after
    udf = compose.dir / "udfs/moving_average.py"
    udf.write_text(udf.read_text() + "\n# edited by the DEV_MODE test\n")
    poll(lambda: "dev: task temperature_moving_average: UDF code changed, restarting"
         in compose.logs("kapacitor"), 60, "the moving_average task restarted")
    poll(lambda: udf_pids(box).get("moving_average.py", set()).isdisjoint(
        before["moving_average.py"]), 30, "a new moving_average process")
    wait_executing(api)
    after = settled_pids()
    for script, pids in before.items():
        if script != "moving_average.py":
            assert after.get(script) == pids, f"{script} restarted by a moving_average edit"
