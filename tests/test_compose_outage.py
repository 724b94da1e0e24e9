"""The Compose stack through an InfluxDB outage: InfluxDB stopped for 60 s while the
simulator runs, every result Kapacitor wrote reaches InfluxDB through the results buffer,
and the image's HEALTHCHECK command is unhealthy during the outage and healthy after."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kapacitorkit.api import KapacitorApi
from tests.dockerbed import docker, influx_rows, poll
from tests.test_docker_compose import DATA_PATH, Compose, images, wait_executing  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

RESULTS = ("anomaly_scores", "anomaly_periods", "environment_alerts", "environment_smoothed",
           "machine_predictions", "machine_predictions_batch", "torque_outliers")


@pytest.fixture
def stack(images, tmp_path: Path) -> Iterator[Compose]:  # noqa: F811
    compose = Compose(tmp_path)
    compose("up", "-d", "--no-build", *DATA_PATH)
    try:
        yield compose
    finally:
        compose.down()
        assert compose.leftovers() == [], "docker-compose down -v left these behind"


def health(stack: Compose) -> tuple[int, str]:
    done = docker("exec", stack.container("kapacitor"), "python", "-m", "entrypoint.health",
                  check=False, timeout=60)
    return done.returncode, done.stdout


def count(influx: str, measurement: str) -> int:
    rows = influx_rows(influx, f'SELECT count(*) FROM "{measurement}"')
    return max(rows[0][1:], default=0) if rows else 0


def written(api: KapacitorApi) -> tuple[int, int]:
    """(points written, write errors) of every influxDBOut node, all tasks."""
    points = errors = 0
    for task in api.tasks("stats"):
        for node, stats in task["stats"]["node-stats"].items():
            if node.startswith("influxdb_out"):
                points += stats.get("points_written", 0)
                errors += stats.get("write_errors", 0)
    return points, errors


def test_influxdb_stopped_for_60_s_loses_no_result(stack: Compose) -> None:
    influx, api = stack.port("influxdb", 8086), KapacitorApi(stack.port("kapacitor", 9092))
    wait_executing(api)
    poll(lambda: count(influx, "anomaly_scores") > 0, 180,
         f"anomaly scores in InfluxDB\n{stack.logs('results-buffer')[-2000:]}")
    poll(lambda: health(stack)[0] == 0, 60, "a healthy kapacitor")

    stack("stop", "influxdb")
    stopped = time.monotonic()
    poll(lambda: health(stack)[0] == 1, 30, "unhealthy while InfluxDB is stopped")
    said = health(stack)[1]
    assert re.search(r"unhealthy: InfluxDB at http://influxdb:8086 unreachable: .*\(since ",
                     said), said
    time.sleep(max(0.0, stopped + 60 - time.monotonic()))
    stack("start", "influxdb")
    influx = stack.port("influxdb", 8086)  # a new free host port
    poll(lambda: health(stack)[0] == 0, 60, f"healthy again\n{health(stack)[1]}")

    stack("stop", "simulator")  # the inputs end; every result made must arrive
    time.sleep(12)  # influxDBOut flushes every 10 s
    before = written(api)
    assert before[1] == 0, "Kapacitor failed to write to the buffer"

    def arrived() -> dict[str, int] | None:
        counts = {m: count(influx, m) for m in RESULTS}
        return counts if sum(counts.values()) == written(api)[0] else None
    counts = poll(arrived, 120, f"every result in InfluxDB ({written(api)} written)\n"
                                f"{stack.logs('results-buffer')[-2000:]}")
    assert count(influx, "environment") == counts["anomaly_scores"]  # one score per reading
    assert "metrics have been dropped" not in stack.logs("results-buffer")
    print(f"\nfigures: compose, InfluxDB stopped 60 s: {written(api)[0]} results written by "
          f"Kapacitor, {sum(counts.values())} in InfluxDB ({counts})")
