"""Each sample end to end with its one command (run.sh): entrypoint, kapacitord, influxd."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from tests.testbed import ROOT

pytestmark = [pytest.mark.kapacitor, pytest.mark.influxdb]

EXPECTED = {
    # temperature_classifier keeps temperatures outside [20, 25]; humidity_classifier in
    # annotate mode flags those with humidity above 25.
    "multi_udfs_single_task": [
        'uncomfortable: {"humid": true, "humidity": 40, "sensor": "office", "temperature": 27.5}',
        'uncomfortable: {"humid": false, "humidity": 20, "sensor": "office", "temperature": 26}',
        'uncomfortable: {"humid": true, "humidity": 80, "sensor": "cellar", "temperature": 14}',
        'uncomfortable: {"humid": false, "humidity": 10, "sensor": "cellar", "temperature": 19}',
    ],
    # One threshold UDF, two tasks from one template: above 25 °C, and below 30 % humidity.
    "single_udf_multi_tasks": [
        'too_dry: {"humidity": 20, "sensor": "office", "temperature": 26}',
        'too_dry: {"humidity": 10, "sensor": "cellar", "temperature": 19}',
        'too_hot: {"humidity": 40, "sensor": "office", "temperature": 27.5}',
        'too_hot: {"humidity": 20, "sensor": "office", "temperature": 26}',
    ],
    # EII's layout: both classifiers as socket UDFs the entrypoint starts; outside [20, 25]
    # °C, then humidity above 25 %.
    "eii_socket_udfs": [
        'point_classifier_results: {"humidity": 40, "sensor": "office", "temperature": 27.5}',
        'point_classifier_results: {"humidity": 80, "sensor": "cellar", "temperature": 14}',
    ],
    # EII's data path: the points go to InfluxDB only and reach the tasks by subscription; the
    # results land in a database of their own.
    "influxdb_subscription": [
        'machine_predictions: {"air_temperature": 298.1, "failure_probability": 0, "machine": '
        '"mill-1", "prediction": 0, "process_temperature": 308.6, "product_type": 1, '
        '"rotational_speed": 1551, "tool_wear": 0, "torque": 42.8}',
        'machine_predictions: {"air_temperature": 303, "failure_probability": 0.9098900756270001,'
        ' "machine": "mill-2", "prediction": 1, "process_temperature": 311, "product_type": 0, '
        '"rotational_speed": 1250, "tool_wear": 220, "torque": 68}',
        'uncomfortable: {"humidity": 40, "sensor": "office", "temperature": 27.5}',
        'uncomfortable: {"humidity": 80, "sensor": "cellar", "temperature": 14}',
    ],
}


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_sample_runs_with_one_command(sample, kapacitor_bin):
    """With nothing set, a sample starts its own influxd and kapacitord on free ports."""
    env = {k: v for k, v in os.environ.items() if k not in ("INFLUXDB_URL", "KAPACITOR_HTTP_BIND")}
    env["KAPACITORD"] = str(kapacitor_bin / "kapacitord")
    done = subprocess.run([str(ROOT / "Samples" / sample / "run.sh")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    measurements = tuple({line.split(":")[0] + ":" for line in EXPECTED[sample]})
    results = [ln for ln in done.stdout.splitlines() if ln.startswith(measurements)]
    assert sorted(results) == sorted(EXPECTED[sample]), done.stdout[-3000:]
    assert "task(s) executing" in done.stdout


def test_sample_refuses_a_taken_port_and_touches_nothing_there(kapacitor_bin, influxdb):
    """Another Kapacitor on the port it is told to use: stop at once, naming the port, and
    never connect to it (no task defined, no point written)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken.settimeout(0.5)
        port = taken.getsockname()[1]
        env = {**os.environ, "INFLUXDB_URL": influxdb.url,
               "KAPACITOR_HTTP_BIND": f"127.0.0.1:{port}",
               "KAPACITORD": str(kapacitor_bin / "kapacitord")}
        started = time.monotonic()
        done = subprocess.run([str(ROOT / "Samples" / "single_udf_multi_tasks" / "run.sh")],
                              env=env, capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - started
        with pytest.raises(TimeoutError):
            taken.accept()
    assert done.returncode != 0
    assert f"port {port} is already in use" in done.stderr, done.stderr[-2000:]
    assert elapsed < 10, elapsed
