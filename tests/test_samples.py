"""Each sample end to end with its one command (run.sh): entrypoint, kapacitord, influxd."""

from __future__ import annotations

import os
import subprocess

import pytest

from localstack.process import free_port
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
}


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_sample_runs_with_one_command(sample, kapacitor_bin, influxdb):
    env = {**os.environ, "INFLUXDB_URL": influxdb.url,
           "KAPACITOR_HTTP_BIND": f"127.0.0.1:{free_port()}",
           "KAPACITORD": str(kapacitor_bin / "kapacitord")}
    done = subprocess.run([str(ROOT / "Samples" / sample / "run.sh")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = [ln for ln in done.stdout.splitlines() if ln.startswith(("uncomfortable", "too_"))]
    assert sorted(results) == sorted(EXPECTED[sample]), done.stdout[-3000:]
    assert "task(s) executing" in done.stdout
