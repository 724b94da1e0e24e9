"""The classic UDFs through real kapacitord with their shipped TICKscripts."""

from __future__ import annotations

import time
import urllib.request

import pytest

from kapacitorkit.api import ApiError
from localstack.kapacitord import udf_function
from tests.conftest import ROOT
from tests.testbed import wait_for

pytestmark = pytest.mark.kapacitor
DBRP = [{"db": "telemetry", "rp": "autogen"}]
CLASSIC = [
    udf_function("temperature_classifier", "temperature_classifier.py"),
    udf_function("humidity_classifier", "humidity_classifier.py"),
    udf_function("moving_average", "moving_average.py"),
    udf_function("threshold", "threshold.py"),
    udf_function("outliers", "outliers.py", "--mode", "batch"),
]


def tick(name: str, output: str | None = None) -> str:
    """A shipped TICKscript, with influxDBOut swapped for httpOut when no InfluxDB is used."""
    script = (ROOT / "tick_scripts" / name).read_text()
    if output:
        script = script[:script.index("    |influxDBOut()")] + f"    |httpOut('{output}')\n"
    return script


def rows(kap, task: str, endpoint: str = "out") -> list[dict]:
    return kap.api.http_out_rows(task, endpoint)


def test_temperature_classifier_forwards_only_out_of_band(kapacitord):
    kap = kapacitord(CLASSIC)
    kap.api.define_task("temp", tick("temperature_alerts.tick", "out"), DBRP, enabled=True)
    assert kap.api.wait_task("temp")["executing"], kap.log_text()[-2000:]
    base = int(time.time()) - 60
    temps = [21.0, 26.5, 22.0, 18.0, 24.9, 30.0]
    kap.api.write("".join(f"environment,sensor=s1 temperature={t},humidity=10 {base + i}\n"
                          for i, t in enumerate(temps)), db="telemetry", precision="s")
    assert wait_for(lambda: kap.api.task("temp")["stats"]["node-stats"]
                    ["temperature_classifier2"]["emitted"] == 3), kap.log_text()[-2000:]
    assert rows(kap, "temp")[-1]["temperature"] == 30.0


def test_moving_average_in_kapacitor(kapacitord):
    kap = kapacitord(CLASSIC)
    kap.api.define_task("avg", tick("temperature_moving_average.tick", "out"), DBRP,
                        enabled=True)
    assert kap.api.wait_task("avg")["executing"], kap.log_text()[-2000:]
    base = int(time.time()) - 60
    kap.api.write("".join(f"environment,sensor=s1 temperature={i}.0 {base + i}\n"
                          for i in range(12)), db="telemetry", precision="s")
    last = wait_for(lambda: (r := rows(kap, "avg")) and r[-1]["temperature"] == 11.0 and r[-1])
    assert last, kap.log_text()[-2000:]
    assert last["temperature_avg"] == pytest.approx(sum(range(2, 12)) / 10)


def test_init_failure_is_a_task_error_naming_the_option(kapacitord):
    kap = kapacitord(CLASSIC)
    script = """
stream
    |from()
        .measurement('environment')
    @threshold()
        .field('temperature')
        .min(30.0)
        .max(20.0)
    |httpOut('out')
"""
    kap.api.define_task("bad_range", script, DBRP, enabled=True)
    info = wait_for(lambda: (t := kap.api.task("bad_range"))["error"] and t)
    assert info, kap.log_text()[-2000:]
    assert not info["executing"]
    assert "min: must not exceed max" in info["error"]


def test_kapacitor_rejects_a_wrong_option_type_from_info(kapacitord):
    kap = kapacitord(CLASSIC)
    script = tick("temperature_alerts.tick", "out").replace(
        "@temperature_classifier()", "@temperature_classifier().min(3)")
    with pytest.raises(ApiError) as refused:
        kap.api.define_task("bad_type", script, DBRP, enabled=True)
    assert refused.value.status == 400
    assert "unexpected arg to min, got INT expected DOUBLE" in str(refused.value)


@pytest.mark.influxdb
def test_batch_task_through_the_outliers_udf(kapacitord, influxdb):
    influxdb.query('CREATE DATABASE "telemetry"')
    now = int(time.time())
    torques = [40.0, 41.0, 39.5, 40.5, 40.2, 90.0, 39.8, 40.1, 5.0, 40.3]
    body = "".join(f"machine,machine=mill-1 torque={v} {now - 100 + i}\n"
                   for i, v in enumerate(torques)).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"{influxdb.url}/write?db=telemetry&precision=s", data=body, method="POST")).close()
    kap = kapacitord(CLASSIC, influxdb_url=influxdb.url)
    script = tick("torque_outliers.tick", "out").replace(".every(1m)", ".every(1s)")
    kap.api.define_task("outliers", script, DBRP, task_type="batch", enabled=True)
    assert kap.api.wait_task("outliers")["executing"], kap.log_text()[-2000:]
    found = wait_for(lambda: rows(kap, "outliers"), timeout=20)
    assert found, kap.log_text()[-3000:]
    assert sorted(r["torque"] for r in found) == [5.0, 90.0]
    assert {r["machine"] for r in found} == {"mill-1"}
