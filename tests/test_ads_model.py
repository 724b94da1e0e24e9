"""ads_model: scores, periods, options, snapshot/restore, and tasks in real kapacitord."""

from __future__ import annotations

import json
import math
import random
import re
import time

import pytest

from localstack.kapacitord import udf_function
from tests.agent_helpers import Request, point, point_requests, read_points, spawn, udf_module
from tests.conftest import ROOT
from tests.testbed import wait_for
from udfkit import udf_pb2

MINUTE = 60_000_000_000
SPIKE = range(900, 906)


def series(n: int, seed: int = 1, spike: range = SPIKE) -> list[float]:
    """A daily-like cycle of 96 points whose noise repeats with it, so that once one cycle is
    learnt only the injected spike is new."""
    rng = random.Random(seed)
    noise = [rng.gauss(0, 0.2) for _ in range(96)]
    return [20 + 2 * math.sin(2 * math.pi * i / 96) + noise[i % 96]
            + (8.0 if i in spike else 0.0) for i in range(n)]


def run_points(client, values, group="sensor=s1", start=0):
    client.send(point_requests(point((start + i) * MINUTE, group=group, value=v)
                               for i, v in enumerate(values)))


def test_scores_flags_the_spike_and_reports_its_period():
    client = spawn("ads_model.py")
    assert client.init({"learn": 400}).success
    values = series(1100)
    run_points(client, values)
    out = read_points(client, 1101)
    scored = [p for p in out if "period_end" not in p.fieldsInt]
    periods = [p for p in out if "period_end" in p.fieldsInt]
    assert all(0.0 <= p.fieldsDouble["anomaly_score"] <= 1.0 for p in scored)
    flagged = {p.time // MINUTE for p in scored if p.fieldsBool["is_anomaly"]}
    assert flagged & set(SPIKE)
    assert not {t for t in flagged if t < 880 or t > 930}, sorted(flagged)
    (period,) = periods
    assert period.fieldsInt["period_start"] // MINUTE in SPIKE
    assert period.tags["host"] == "sensor=s1"
    assert period.fieldsDouble["max_score"] > 0.5
    client.close_input()


def test_groups_learn_separately():
    client = spawn("ads_model.py")
    assert client.init({"learn": 200}).success
    run_points(client, series(150, seed=2), group="sensor=a")
    run_points(client, series(300, seed=3), group="sensor=b")
    out = read_points(client, 450)
    a = [p.fieldsDouble["anomaly_score"] for p in out if p.group == "sensor=a"]
    b = [p.fieldsDouble["anomaly_score"] for p in out if p.group == "sensor=b"]
    assert set(a) == {0.0}, "group a is still learning"
    assert any(s > 0 for s in b[200:])
    client.close_input()


def test_options_are_checked():
    client = spawn("ads_model.py")
    result = client.init({"learn": 1, "min_gap": -1, "confirm": 0})
    client.close_input()
    assert "learn: must be >= 2, got 1" in result.error
    assert "min_gap: must be >= 0, got -1" in result.error
    assert "confirm: must be 1 to 64, got 0" in result.error
    client = spawn("ads_model.py")
    result = client.init({"relearn": 5})
    client.close_input()
    assert "relearn must be 0 or > window (24)" in result.error


def test_missing_field_dropped_and_counted():
    client = spawn("ads_model.py")
    assert client.init({"field": "temperature", "learn": 200}).success
    client.send(point_requests([point(1, temperature=20.0), point(2, humidity=3.0),
                                point(3, temperature=21.0)]))
    assert [p.time for p in read_points(client, 2)] == [1, 3]
    client.close_input()
    client.wait()
    assert any("field 'temperature' is missing" in line for line in client.stderr)


def test_snapshot_restore_continues_exactly():
    values = series(1100)
    whole = spawn("ads_model.py")
    assert whole.init({"learn": 400}).success
    run_points(whole, values)
    expected = [p.fieldsDouble["anomaly_score"] for p in read_points(whole, 1101)
                if "period_end" not in p.fieldsInt]
    whole.close_input()

    first = spawn("ads_model.py")
    assert first.init({"learn": 400}).success
    run_points(first, values[:700])
    got = [p.fieldsDouble["anomaly_score"] for p in read_points(first, 700)]
    data = first.request(Request(snapshot=udf_pb2.SnapshotRequest())).snapshot.snapshot
    first.close_input()
    second = spawn("ads_model.py")
    assert second.init({"learn": 400}).success
    restore = Request(restore=udf_pb2.RestoreRequest(snapshot=data))
    assert second.request(restore).restore.success
    run_points(second, values[700:], start=700)
    got += [p.fieldsDouble["anomaly_score"] for p in read_points(second, 401)
            if "period_end" not in p.fieldsInt]
    second.close_input()
    assert got == pytest.approx(expected, abs=1e-12)


def _lines(values, start_s: int, sensor: str = "s1") -> str:
    return "".join(f"environment,sensor={sensor} temperature={v:.4f} {start_s + 60 * i}\n"
                   for i, v in enumerate(values))


@pytest.mark.kapacitor
@pytest.mark.influxdb
def test_anomaly_task_writes_scores_and_periods_to_influxdb(kapacitord, influxdb):
    influxdb.query('CREATE DATABASE "telemetry"')
    kap = kapacitord([udf_function("ads_model", "ads_model.py", timeout="20s")],
                     influxdb_url=influxdb.url)
    alert_log = kap.data_dir / "anomalies.log"
    kap.api.define_topic_handler("anomalies", "log-anomalies", "log", {"path": str(alert_log)})
    script = (ROOT / "tick_scripts" / "temperature_anomalies.tick").read_text()
    kap.api.define_task("anomalies", script.replace(".field('temperature')",
                                                    ".field('temperature')\n        .learn(400)"),
                        [{"db": "telemetry", "rp": "autogen"}], enabled=True)
    assert kap.api.wait_task("anomalies")["executing"], kap.log_text()[-2000:]
    start = int(time.time()) - 1100 * 60
    kap.api.write(_lines(series(1100), start), db="telemetry", precision="s")
    def stored() -> int:
        rows = influxdb.query("SELECT count(anomaly_score) FROM anomaly_scores", "telemetry")
        return rows[0]["count"] if rows else 0

    assert wait_for(lambda: stored() == 1100, timeout=30), (stored(), kap.log_text()[-3000:])
    periods = influxdb.query("SELECT * FROM anomaly_periods", "telemetry")
    assert len(periods) == 1 and periods[0]["sensor"] == "s1"
    assert (periods[0]["period_start"] - start * 10**9) // MINUTE in SPIKE
    # the period opened a CRITICAL alert on the topic and its closing point recovered it
    def logged() -> list[str]:
        text = alert_log.read_text() if alert_log.exists() else ""
        return [json.loads(line)["message"] for line in text.splitlines()]

    assert wait_for(lambda: len(logged()) == 2, timeout=10), logged()
    messages = logged()
    alert = kap.api.alert_events("anomalies").get("temperature_anomaly:s1")
    assert alert and alert["level"] == "OK", alert
    said = re.fullmatch(r"s1: temperature (\d+\.\d), a spike (\d+\.\d) deviations above its "
                        r"normal range (\d+\.\d)\u2013(\d+\.\d) \(score [01]\.\d\d\)", messages[0])
    assert said, messages
    value, sigma, low, high = map(float, said.groups())
    assert low < high < value and float(sigma) >= 4  # the spike left the range it names
    stored_why = influxdb.query("SELECT anomaly_view, normal_high FROM anomaly_scores "
                                "WHERE anomaly_start = true", "telemetry")
    assert [r["anomaly_view"] for r in stored_why] == ["spike_up"]
    assert re.fullmatch(r"s1: temperature back to normal after (a single anomalous reading|"
                        r"\d+ s of anomalous readings) \(highest score [01]\.\d\d\)",
                        messages[1]), messages
    node_stats = kap.api.task("anomalies")["stats"]["node-stats"]
    alert_node = next(v for k, v in node_stats.items() if k.startswith("alert"))
    assert alert_node["crits_triggered"] == 1 and alert_node["oks_triggered"] == 1, alert_node


@pytest.mark.kapacitor
def test_detector_state_survives_a_kapacitor_restart(kapacitord):
    kap = kapacitord([udf_function("ads_model", "ads_model.py", timeout="20s")],
                     snapshot_interval="1s")
    script = """
stream
    |from()
        .measurement('environment')
        .groupBy('sensor')
    @ads_model()
        .field('temperature')
        .learn(400)
    |httpOut('out')
"""
    kap.api.define_task("anomalies", script, [{"db": "telemetry", "rp": "autogen"}],
                        enabled=True)
    assert kap.api.wait_task("anomalies")["executing"]
    values = series(600, spike=range(0))
    start = int(time.time()) - 700 * 60
    kap.api.write(_lines(values[:500], start), db="telemetry", precision="s")
    assert wait_for(lambda: kap.api.task("anomalies")["stats"]["node-stats"]
                    ["ads_model2"]["emitted"] == 500)
    time.sleep(2.5)  # at least one snapshot after the detector has learnt
    kap.restart()
    assert kap.api.wait_task("anomalies")["executing"], kap.log_text()[-2000:]
    kap.api.write(_lines(values[500:501], start + 500 * 60), db="telemetry", precision="s")

    def last_score():
        rows = kap.api.http_out_rows("anomalies", "out")
        row = rows and rows[-1]
        return row and row["temperature"] == pytest.approx(values[500], abs=1e-3) and row
    row = wait_for(last_score, timeout=20)
    assert row, kap.log_text()[-3000:]
    assert row["anomaly_score"] > 0.0, "a restarted detector without its state would be learning"
    assert "state restored" in kap.log_text()




def test_udf_over_the_protocol_alerts_like_the_detector_on_nab():
    """`make nab` scores the UDF through udfkit.replay with default options; on NAB files it
    alerts exactly as mlkit.ads does in-process and finds the labelled windows of these two
    (the whole corpus in-process: tests/test_ads_detector.py; its tables: `make nab`)."""
    from mlkit.ads import SeriesDetector
    from mlkit.nab import NAB_DIR, ads_model_udf, score_file
    from mlkit.nabdata import load_series, load_windows

    windows = load_windows(NAB_DIR)
    for name in ("ec2_cpu_utilization_825cc2.csv", "art_daily_jumpsup.csv"):
        ts, values = load_series(NAB_DIR / name)
        via_udf = ads_model_udf(ts, values)
        assert via_udf == SeriesDetector().alerts(ts, values)
        score = score_file(name, ts, via_udf, windows[name])
        assert score.hit == score.windows and score.false_alerts <= 1, score


def test_make_nab_options_reach_the_udf():
    """`bench/nab_score.py --option confirm=3`: the UDF alerts as the detector with it does,
    and the lone spikes of this bursty file no longer alert."""
    from mlkit.ads import SeriesDetector
    from mlkit.nab import NAB_DIR, ads_model_udf
    from mlkit.nabdata import load_series

    ts, values = load_series(NAB_DIR / "grok_asg_anomaly.csv")
    quiet = ads_model_udf(ts, values, {"confirm": "3"})
    assert quiet == SeriesDetector(confirm=3).alerts(ts, values)
    assert len(quiet) < len(ads_model_udf(ts, values))


@pytest.mark.parametrize(("shifts", "history", "expected"), [
    ((150,), 4096, [150, 900]),  # one odd block does not widen the range for long
    ((150, 400), 4096, [150]),  # soon after one, and after two, an equal shift is normal
    ((150, 400), 256, [150, 900]),  # unless the range has forgotten them
])
def test_what_an_earlier_anomaly_hides(shifts, history, expected):
    """40-point shifts of +4 on a steady sensor: which ones alert."""
    client = spawn("ads_model.py")
    assert client.init({"learn": 100, "history": history}).success
    rng = random.Random(4)
    noise = [rng.gauss(0, 0.2) for _ in range(64)]
    starts = (*shifts, 900)
    values = [22.0 + noise[i % 64] + (4.0 if any(s <= i < s + 40 for s in starts) else 0.0)
              for i in range(1100)]
    run_points(client, values)
    out = [p for p in read_points(client, 1100) if "period_end" not in p.fieldsInt]
    alerts = [p.time // MINUTE for p in out if p.fieldsBool.get("anomaly_start")]
    assert alerts == expected
    client.close_input()


@pytest.mark.parametrize("bad_count", [0, 60])
def test_columns_from_the_wire_score_bit_for_bit_as_points(bad_count):
    """The agent gives ads_model its calls as udfkit.columns.Columns: scores, alerts, periods
    and rejections are those of the same calls given as parsed points, with bad points among
    them or not, in calls below and above MIN_READ."""
    from faultkit.protocol import mixed_stream, sensor
    from udfkit.columns import MIN_READ, Columns
    from udfkit.options import parse_options
    from udfkit.points import decoded

    AdsModel = udf_module("ads_model.py").AdsModel
    rng = random.Random(4)
    good = [sensor(rng, t // 40, f"s{t % 40}") for t in range(40 * 300)]
    messages = [udf_pb2.Request(point=p).SerializeToString()
                for p in mixed_stream(good, "value", bad_count).stream]
    cuts = sorted(set(rng.choices(range(1, len(messages)), k=60)) | {MIN_READ, MIN_READ + 1})
    outputs = []
    for as_columns in (False, True):
        handler = AdsModel()
        handler.init(parse_options(AdsModel.options, [_learn(100)]), None)
        out, rejected = [], []
        for start, end in zip([0, *cuts], [*cuts, len(messages)], strict=True):
            call = messages[start:end]
            points = Columns(call, handler.column) if as_columns else \
                [Request.FromString(m).point for m in call]
            out += [p.SerializeToString() for p in decoded(handler.points(points))]
            rejected += [(p.SerializeToString(), why) for p, why in handler.take_rejected()]
        outputs.append((out, rejected))
    assert outputs[0] == outputs[1]
    assert len(outputs[0][1]) == bad_count and sum(b"anomaly_start" in p for p in out) > 5


def _learn(points: int) -> udf_pb2.Option:
    return udf_pb2.Option(name="learn", values=[udf_pb2.OptionValue(type=udf_pb2.INT,
                                                                      intValue=points)])
