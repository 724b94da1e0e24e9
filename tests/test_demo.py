"""`make demo`'s script end to end (short run), and the ground truth it reports against."""

from __future__ import annotations

import subprocess
import sys

import pytest

from simulator import generate
from simulator.truth import labelled_run
from tests.testbed import ROOT


def test_labelled_run_is_the_simulators_data_with_its_labels():
    sensors, machines = generate.sensor_names(3), generate.sensor_names(2, prefix="mill")
    start = generate.DEFAULT_START_NS
    steps, truth = labelled_run(1, sensors, machines, start, 3000)
    sent = list(zip(range(3000), generate.iter_all(1, sensors, machines, start_ns=start,
                                                   step_s=1.0), strict=False))
    assert steps == [step for _, step in sent]
    labelled = generate.environment_labelled(1, 3000, sensors, start_ns=start)
    for sensor in sensors:
        flagged = {p[3] for p, a in labelled if a is not None and p[1]["sensor"] == sensor}
        covered = {t for e in truth.episodes[sensor]
                   for t in range(e.start_ns, e.end_ns + 1, truth.step_ns)}
        assert flagged <= covered and flagged, sensor
    assert all(t for m in machines for t, modes in truth.failures[m] if modes)


@pytest.mark.kapacitor
@pytest.mark.influxdb
def test_demo_reports_against_ground_truth_and_plots(tmp_path, kapacitor_bin):
    png = tmp_path / "demo.png"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--minutes", "20",
                           "--png", str(png)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "learns each sensor's normal from its first" in out, out
    assert "injected:" in out and "readings met a failure condition" in out, out
    assert "anomalous for 0 s" not in out and " is CRITICAL:" not in out, out
    assert png.stat().st_size > 20_000
