"""rfc_classifier: options, bad points, the model check, and the UDF inside real kapacitord."""

from __future__ import annotations

import os
import re
import shutil
import time

import pytest

from localstack.kapacitord import udf_function
from tests.agent_helpers import point, point_requests, read_points, spawn
from tests.conftest import ROOT
from tests.testbed import wait_for

HEALTHY = dict(air_temperature=298.0, process_temperature=308.5, rotational_speed=1500.0,
               torque=40.0, tool_wear=20.0, product_type="M")
FAILING = dict(air_temperature=303.0, process_temperature=311.0, rotational_speed=1250.0,
               torque=68.0, tool_wear=220.0, product_type="L")


def test_scores_points_and_passes_bad_ones_with_an_error_field():
    client = spawn("rfc_classifier.py")
    assert client.init({}).success
    bad = {**HEALTHY, "torque": "high"}
    client.send(point_requests([point(1, **HEALTHY), point(2, **FAILING), point(3, **bad)]))
    out = {p.time: p for p in read_points(client, 3)}
    assert out[1].fieldsInt["prediction"] == 0 and out[1].fieldsDouble["failure_probability"] < 0.3
    assert out[2].fieldsInt["prediction"] == 1 and out[2].fieldsDouble["failure_probability"] > 0.5
    assert out[3].fieldsString["error"] == "field 'torque' is not a number"
    assert "prediction" not in out[3].fieldsInt
    client.close_input()
    assert client.wait() == 0


def test_field_mapping_options_and_drop_mode():
    client = spawn("rfc_classifier.py")
    assert client.init({"torque": "torque_nm", "prediction_field": "fails",
                        "on_error": "drop"}).success
    renamed = {**HEALTHY, "torque_nm": HEALTHY["torque"]}
    del renamed["torque"]
    client.send(point_requests([point(1, **HEALTHY), point(2, **renamed)]))
    (out,) = read_points(client, 1)
    assert out.time == 2 and out.fieldsInt["fails"] == 0
    client.close_input()
    client.wait()
    assert any("1 point(s) dropped" in line for line in client.stderr)


def test_product_type_codes_and_tags_are_accepted():
    client = spawn("rfc_classifier.py")
    assert client.init({}).success
    as_code = {**HEALTHY, "product_type": 1}
    as_tag = point(2, **{k: v for k, v in HEALTHY.items() if k != "product_type"})
    as_tag.tags["product_type"] = "M"
    client.send(point_requests([point(1, **as_code), as_tag, point(3, **{**HEALTHY,
                                                                       "product_type": "X"})]))
    out = {p.time: p for p in read_points(client, 3)}
    assert out[1].fieldsDouble["failure_probability"] == out[2].fieldsDouble["failure_probability"]
    assert out[3].fieldsString["error"] == "product_type 'X' is not one of L, M, H"
    client.close_input()


def test_missing_model_file_fails_init_naming_the_path():
    client = spawn("rfc_classifier.py")
    result = client.init({"model": "nope.joblib"})
    client.close_input()
    assert not result.success
    assert "model file not found" in result.error and "nope.joblib" in result.error


def test_tampered_model_is_refused_before_unpickling(tmp_path):
    shutil.copy(ROOT / "models" / "manifest.json", tmp_path)
    data = bytearray((ROOT / "models" / "rfc.joblib").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "rfc.joblib").write_bytes(bytes(data))
    client = spawn("rfc_classifier.py", env={**os.environ, "MODELS_DIR": str(tmp_path)})
    result = client.init({})
    client.close_input()
    assert not result.success
    assert "does not match" in result.error and str(tmp_path / "rfc.joblib") in result.error


def test_batch_variant_scores_whole_batches():
    from udfkit import udf_pb2

    client = spawn("rfc_classifier.py", "--mode", "batch")
    assert client.init({}).success
    begin = udf_pb2.BeginBatch(name="machine", group="machine=m1", size=2)
    end = udf_pb2.EndBatch(name="machine", group="machine=m1", tmax=2)
    client.send([udf_pb2.Request(begin=begin),
                 *point_requests([point(1, **HEALTHY), point(2, **FAILING)]),
                 udf_pb2.Request(end=end)])
    kinds = [client.recv() for _ in range(4)]
    assert [k.WhichOneof("message") for k in kinds] == ["begin", "point", "point", "end"]
    assert [k.point.fieldsInt["prediction"] for k in kinds[1:3]] == [0, 1]
    client.close_input()


@pytest.mark.kapacitor
def test_machine_failure_task_in_kapacitor(kapacitord):
    kap = kapacitord([udf_function("rfc_classifier", "rfc_classifier.py", timeout="20s")])
    script = (ROOT / "tick_scripts" / "machine_failure.tick").read_text()
    script = re.sub(r"\|influxDBOut\(\)(\n\s+\..*)+", "|httpOut('out')", script)
    kap.api.define_task("machine_failure", script, [{"db": "telemetry", "rp": "autogen"}],
                        enabled=True)
    assert kap.api.wait_task("machine_failure")["executing"], kap.log_text()[-2000:]
    now = int(time.time())

    def line(t: int, values: dict, machine: str) -> str:
        codes = {"L": 0, "M": 1, "H": 2}
        fields = ",".join(f"{k}={codes[v]}i" if k == "product_type" else f"{k}={v}"
                          for k, v in values.items())
        return f"machine,machine={machine} {fields} {t}\n"

    kap.api.write(line(now - 2, HEALTHY, "mill-1") + line(now - 1, FAILING, "mill-2"),
                  db="telemetry", precision="s")

    def both():
        last = {row["machine"]: row for row in kap.api.http_out_rows("machine_failure", "out")}
        return len(last) == 2 and last

    rows = wait_for(both, timeout=20)
    assert rows, kap.log_text()[-3000:]
    assert rows["mill-1"]["prediction"] == 0 and rows["mill-2"]["prediction"] == 1
    assert 0.5 < rows["mill-2"]["failure_probability"] <= 1.0
    # only the failing machine changed state: one CRITICAL alert on the topic
    alerts = wait_for(lambda: kap.api.alert_events("machine_failures"), timeout=10)
    assert set(alerts) == {"machine_failure:mill-2"}, alerts
    assert alerts["machine_failure:mill-2"]["level"] == "CRITICAL"
    assert re.fullmatch(r"mill-2: failure predicted \(failure probability 0\.\d\d, at or above "
                        r"the model threshold in models/rfc.json\)",
                        alerts["machine_failure:mill-2"]["message"])

    # hysteresis: the alert resets to OK only after ok_after (30) healthy predictions in a row
    def level() -> str:
        return kap.api.alert_events("machine_failures")["machine_failure:mill-2"]["level"]

    def emitted() -> int:
        stats = kap.api.task("machine_failure")["stats"]["node-stats"]
        return next(v["collected"] for k, v in stats.items() if k.startswith("alert"))

    healthy = "".join(line(now + i, HEALTHY, "mill-2") for i in range(29))
    kap.api.write(healthy, db="telemetry", precision="s")
    assert wait_for(lambda: emitted() == 31, timeout=10), emitted()
    assert level() == "CRITICAL"
    kap.api.write(line(now + 29, HEALTHY, "mill-2"), db="telemetry", precision="s")
    assert wait_for(lambda: level() == "OK", timeout=10)
    message = kap.api.alert_events("machine_failures")["machine_failure:mill-2"]["message"]
    assert re.fullmatch(r"mill-2: no failure predicted for 30 readings in a row \(failure "
                        r"probability now 0\.\d\d\)", message), message
