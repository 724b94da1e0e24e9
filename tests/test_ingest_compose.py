"""docker-compose-subscriptions.override.yml run for real: simulator → MQTT → Telegraf →
InfluxDB only → (subscription) → Kapacitor → kapacitor_results, each point once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kapacitorkit.api import ApiError, KapacitorApi
from tests.dockerbed import ROOT, ensure_base_images, influx_rows, poll
from tests.test_container_files import compose_config
from tests.test_docker_compose import Compose

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]
OVERRIDE = "docker-compose-subscriptions.override.yml"
TASKS = ("machine_failure", "uncomfortable")


@pytest.fixture
def stack(kapacitor_image: str, simulator_image: str, tmp_path: Path) -> Iterator[Compose]:
    ensure_base_images("influxdb", "mosquitto", "telegraf")
    compose = Compose(tmp_path, "docker-compose.yml", OVERRIDE)
    shutil.copy2(ROOT / OVERRIDE, tmp_path / OVERRIDE)
    shutil.copytree(ROOT / "Samples/influxdb_subscription",
                    tmp_path / "Samples/influxdb_subscription")
    for path in [tmp_path / OVERRIDE, *(tmp_path / "Samples").rglob("*"), tmp_path / "Samples"]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    services = [name for name in compose_config(ROOT / "docker-compose.yml", ROOT / OVERRIDE)
                ["services"] if name != "grafana"]  # no registry serves Grafana here
    compose("up", "-d", "--no-build", *services)
    try:
        yield compose
    finally:
        compose.down()
        assert compose.leftovers() == [], "docker-compose down -v left these behind"


def test_simulated_points_reach_kapacitor_only_through_influxdb(stack: Compose) -> None:
    api = KapacitorApi(stack.port("kapacitor", 9092))
    influx = stack.port("influxdb", 8086)

    def executing() -> bool:
        try:
            return all(api.task(t).get("executing") for t in TASKS)
        except (OSError, ApiError):
            return False
    poll(executing, 240, f"{TASKS} executing:\n{stack.logs('kapacitor')[-3000:]}")

    def predictions() -> int:
        try:
            return len(influx_rows(influx, "SELECT prediction FROM machine_predictions",
                                   db="kapacitor_results"))
        except AssertionError:  # the database is made by the first result written
            return 0
    poll(lambda: predictions() > 0, 180,
         f"scored machine points in kapacitor_results:\n{stack.logs('kapacitor')[-3000:]}")

    # Kapacitor holds only points InfluxDB stored (read after its count): a second writer
    # feeding Kapacitor directly would show about twice as many.
    stats = api.task("machine_failure")["stats"]["node-stats"]
    collected = next(v["collected"] for k, v in stats.items() if k.startswith("from"))
    stored = len(influx_rows(influx, "SELECT torque FROM machine"))
    assert 0 < collected <= stored, (collected, stored)
    assert "machine_predictions" not in str(influx_rows(influx, "SHOW MEASUREMENTS"))
