"""EII's data path in containers: points written to the InfluxDB container only reach the image
by subscription (InfluxDB calls Kapacitor back at its network alias) and come out scored.

The image runs Samples/influxdb_subscription as docker-compose-subscriptions.override.yml
mounts it: each point is scored once, and only the input database is subscribed.
"""

from __future__ import annotations

import json
import time

import pytest

from kapacitorkit.api import ApiError, KapacitorApi
from localstack.influxd import write
from tests.conftest import ROOT
from tests.dockerbed import (
    Container,
    compose_tag,
    docker,
    ensure_base_images,
    influx_query,
    influx_rows,
    network,
    poll,
    run_influxdb,
    volume,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]
SAMPLE = "/opt/kapacitor-udfs/samples/influxdb_subscription"
TASKS = ("machine_failure", "uncomfortable")


def test_points_written_to_influxdb_only_come_out_scored_once(kapacitor_image: str) -> None:
    ensure_base_images("influxdb")
    net = network()
    influx = run_influxdb(net, compose_tag("influxdb"))
    url = f"http://127.0.0.1:{influx.port(8086)}"
    box = Container.run(
        kapacitor_image, "--network", net, "--network-alias", "kapacitor", "--read-only",
        "--tmpfs", "/tmp", "-v", f"{volume()}:/var/lib/kapacitor",
        "-v", f"{ROOT / 'Samples/influxdb_subscription'}:{SAMPLE}:ro",
        "-e", f"KAPACITOR_CONFIG_JSON={SAMPLE}/config.json", "-e", "KAPACITOR_HOSTNAME=kapacitor",
        "-e", "INFLUXDB_URL=http://influxdb:8086", "-p", "127.0.0.1::9092")
    api = KapacitorApi(f"http://127.0.0.1:{box.port(9092)}")
    try:
        def executing() -> bool:
            try:
                return all(api.task(t).get("executing") for t in TASKS)
            except (OSError, ApiError):
                return False
        poll(executing, 180, f"{TASKS} to execute:\n{box.logs()[-3000:]}")
        subscriptions = json.loads(influx_query(url, "SHOW SUBSCRIPTIONS"))["results"][0]
        forwarded = {s["name"]: s["values"] for s in subscriptions.get("series", [])}
        assert list(forwarded) == ["telemetry"], forwarded
        assert "http://kapacitor:9092" in str(forwarded["telemetry"])

        lines = (ROOT / "Samples/influxdb_subscription/points.lp").read_text().splitlines()
        start = int(time.time()) - len(lines)
        body = "".join(f"{line} {start + i}\n" for i, line in enumerate(lines))
        write(url, body, db="telemetry", precision="s")

        def scored() -> list[list]:
            return influx_rows(url, "SELECT machine, prediction FROM machine_predictions",
                               db="kapacitor_results")
        poll(lambda: len(scored()) == 2, 60, f"two scored machines:\n{box.logs()[-2000:]}")
        assert sorted(r[1:] for r in scored()) == [["mill-1", 0], ["mill-2", 1]]
        stats = api.task("machine_failure")["stats"]["node-stats"]
        assert next(v["collected"] for k, v in stats.items() if k.startswith("from")) == 2
    finally:
        box.remove()
        influx.remove()
        docker("network", "rm", net, check=False)
