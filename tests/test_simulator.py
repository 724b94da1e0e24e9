"""The simulator: deterministic data, advertised anomaly/failure rates, line protocol, sinks.

Why: the demo and the dashboard are only convincing if the injected anomalies and failures
are really there at the advertised rates, and if what is sent parses as InfluxDB would parse
it. The HTTP sink is checked against a real local HTTP server, the MQTT sink against a fake
paho client (no broker on the test machine).
"""

from __future__ import annotations

import http.server
import itertools
import math
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import ClassVar

import pytest

from localstack import ROOT
from simulator import generate as g
from simulator.__main__ import main
from simulator.publish import HttpSink, MqttSink, SinkError, run_realtime

SENSORS = g.sensor_names(3)
MACHINES = g.sensor_names(2, prefix="mill")


def within(count: int, trials: int, rate: float, sigmas: float = 5.0) -> bool:
    """True if `count` successes in `trials` fit a binomial rate (normal approximation)."""
    mean = trials * rate
    return abs(count - mean) <= sigmas * math.sqrt(trials * rate * (1 - rate)) + 1


# --- a reference line protocol parser, written from the spec, independent of the generator ---


def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on `sep` not preceded by a backslash and not inside a double-quoted string."""
    parts, cur, quoted, i = [], "", False, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur += text[i : i + 2]
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\([,= ])", r"\1", text)


def _value(raw: str) -> float | int | bool | str:
    if raw.startswith('"'):
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if raw in ("true", "false"):
        return raw == "true"
    if raw.endswith("i"):
        return int(raw[:-1])
    return float(raw)


def parse_line(line: str) -> g.Point:
    """Parse one line of line protocol into (measurement, tags, fields, t_ns)."""
    series, fields_raw, t_raw = _split_unescaped(line, " ")
    head, *tag_parts = _split_unescaped(series, ",")
    tags = {}
    for part in tag_parts:
        key, value = _split_unescaped(part, "=")
        tags[_unescape(key)] = _unescape(value)
    fields = {}
    for part in _split_unescaped(fields_raw, ","):
        key, value = _split_unescaped(part, "=")
        fields[_unescape(key)] = _value(value)
    return _unescape(head), tags, fields, int(t_raw)


# --- generation ---------------------------------------------------------------------------------


def test_same_seed_same_data_other_seed_other_data() -> None:
    assert g.environment_points(3, 200, SENSORS) == g.environment_points(3, 200, SENSORS)
    assert g.machine_points(3, 200, MACHINES) == g.machine_points(3, 200, MACHINES)
    assert g.environment_points(3, 200, SENSORS) != g.environment_points(4, 200, SENSORS)
    assert g.machine_points(3, 200, MACHINES) != g.machine_points(4, 200, MACHINES)


def test_series_are_independent_of_other_series() -> None:
    one = [p for p in g.environment_points(5, 100, SENSORS) if p[1]["sensor"] == "sensor-2"]
    alone = g.environment_points(5, 100, ["sensor-2"])
    assert one == alone


def test_shape_follows_the_data_model() -> None:
    env = g.environment_points(1, 10, SENSORS)
    assert len(env) == 30
    for name, tags, fields, _ in env:
        assert name == "environment" and set(tags) == {"sensor"}
        assert set(fields) == {"temperature", "humidity"}
        assert all(isinstance(v, float) for v in fields.values())
    for name, tags, fields, _ in g.machine_points(1, 10, MACHINES):
        assert name == "machine" and set(tags) == {"machine"}
        assert isinstance(fields.pop("product_type"), int)
        assert set(fields) == {
            "air_temperature",
            "process_temperature",
            "rotational_speed",
            "torque",
            "tool_wear",
        }
        assert all(isinstance(v, float) for v in fields.values())
    times = sorted({p[3] for p in env})
    assert times[0] == g.DEFAULT_START_NS and {b - a for a, b in itertools.pairwise(times)} == {
        10**9
    }


def test_environment_normal_range_and_anomaly_rate() -> None:
    labelled = g.environment_labelled(11, 20_000, SENSORS)
    normal = [p[2]["temperature"] for p, label in labelled if label is None]
    assert min(normal) > 18.0 and max(normal) < 27.0  # "normal ~20-25 degC" with noise
    episodes = {(p[1]["sensor"], label.episode, label.kind) for p, label in labelled if label}
    eligible = sum(1 for _, label in labelled if label is None) + len(episodes)
    assert within(len(episodes), eligible, g.ANOMALY_RATE)
    assert {kind for _, _, kind in episodes} == set(g.ANOMALY_KINDS)


def test_anomalies_are_visible_in_the_signal() -> None:
    labelled = g.environment_labelled(12, 20_000, SENSORS)
    by_sensor: dict[str, list] = {s: [] for s in SENSORS}
    for point, label in labelled:
        by_sensor[point[1]["sensor"]].append((point[2], label))
    for series in by_sensor.values():
        for (before, _), (fields, label) in itertools.pairwise(series):
            if label and label.kind == "spike":
                assert abs(fields["temperature"] - before["temperature"]) > 4.0
            if label and label.kind == "stuck":
                assert fields == before


def test_machine_values_resemble_ai4i() -> None:
    labelled = g.machine_labelled(13, 10_000, MACHINES)
    normal = [p[2] for p, label in labelled if label.injected is None]

    def mean(key: str) -> float:
        return sum(float(f[key]) for f in normal) / len(normal)

    assert abs(mean("air_temperature") - 300.0) < 1.5
    assert abs(mean("process_temperature") - mean("air_temperature") - 10.0) < 0.5
    assert abs(mean("rotational_speed") - 1540.0) < 30.0
    assert abs(mean("torque") - 40.0) < 1.0
    assert {f["product_type"] for f in normal} == {0, 1, 2}
    natural = sum(1 for _, label in labelled if label.injected is None and label.modes)
    assert natural / len(labelled) < 0.08  # AI4I itself has 3.4 % failures


def test_failures_are_injected_at_the_advertised_rate_and_meet_their_rule() -> None:
    labelled = g.machine_labelled(14, 20_000, MACHINES)
    injected = [(p, label) for p, label in labelled if label.injected]
    assert within(len(injected), len(labelled), g.FAILURE_RATE)
    assert {label.injected for _, label in injected} == {"HDF", "PWF", "OSF"}
    for point, label in injected:
        assert label.injected in g.failure_modes(point[2])
        assert label.injected in label.modes


def test_tool_wear_ramps_and_fails_between_200_and_240() -> None:
    labelled = g.machine_labelled(15, 20_000, ["mill-1"])
    wear = [p[2]["tool_wear"] for p, _ in labelled]
    assert min(wear) == 0.0 and max(wear) <= g.TOOL_LIFE_MAX
    twf = [p[2]["tool_wear"] for p, label in labelled if "TWF" in label.modes]
    assert twf and all(200.0 <= w <= 240.0 + 5.0 for w in twf)
    for (_p, label), (nxt, _) in itertools.pairwise(labelled):
        if "TWF" in label.modes:
            assert nxt[2]["tool_wear"] == 0.0  # tool changed after the failure


def test_topics_match_the_filters() -> None:
    points = g.environment_points(1, 1, SENSORS) + g.machine_points(1, 1, MACHINES)
    topics = {g.topic_for(p) for p in points}
    assert topics == {f"sensors/environment/{s}" for s in SENSORS} | {
        f"sensors/machine/{m}" for m in MACHINES
    }
    assert g.TOPIC_FILTERS == ("sensors/environment/+", "sensors/machine/+")


# --- line protocol ------------------------------------------------------------------------------


def test_line_protocol_round_trips_generated_points() -> None:
    points = g.environment_points(2, 50, SENSORS) + g.machine_points(2, 50, MACHINES)
    body = g.to_line_protocol_batch(points)
    assert body.endswith("\n") and body.count("\n") == len(points)
    assert [parse_line(line) for line in body.splitlines()] == points
    assert "product_type=" in body and re.search(r"product_type=\di", body)


def test_line_protocol_escapes() -> None:
    point = (
        "my measure,x",
        {"tag key": "a,b=c d", "z": "plain"},
        {"f=1": 1.5, "s": 'say "hi" \\ there', "n": 3, "ok": True},
        123,
    )
    line = g.to_line_protocol(point)
    assert line.startswith(r"my\ measure\,x,tag\ key=a\,b\=c\ d,z=plain ")
    assert r'f\=1=1.5,s="say \"hi\" \\ there",n=3i,ok=true 123' in line
    assert parse_line(line) == point


@pytest.mark.parametrize(
    "point",
    [
        ("m", {}, {"v": float("nan")}, 1),
        ("m", {}, {"v": float("inf")}, 1),
        ("m", {}, {}, 1),
        ("m", {"t": "a\nb"}, {"v": 1.0}, 1),
        ("m", {"t": "ends\\"}, {"v": 1.0}, 1),
    ],
)
def test_line_protocol_rejects_what_influxdb_cannot_store(point: g.Point) -> None:
    with pytest.raises(ValueError):
        g.to_line_protocol(point)


# --- sinks --------------------------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Records POSTs; answers 204 like InfluxDB, or 500 on /fail."""

    requests: ClassVar[list[tuple[str, dict[str, list[str]], str, str]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length).decode("utf-8")
        url = urllib.parse.urlsplit(self.path)
        self.requests.append(
            (url.path, urllib.parse.parse_qs(url.query), self.headers["Content-Type"], body)
        )
        self.send_response(500 if url.path == "/fail" else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (ephemeral port), stopped after the test."""
    _Recorder.requests = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def test_http_sink_posts_line_protocol_to_every_url(server: str) -> None:
    points = g.environment_points(1, 4, SENSORS)
    urls = [f"{server}/write?db=telemetry", f"{server}/kapacitor/v1/write?db=telemetry&rp=autogen"]
    HttpSink(urls, timeout_s=5).write(points)
    assert [r[0] for r in _Recorder.requests] == ["/write", "/kapacitor/v1/write"]
    assert _Recorder.requests[1][1] == {"db": ["telemetry"], "rp": ["autogen"]}
    for _, _, content_type, body in _Recorder.requests:
        assert content_type.startswith("text/plain")
        assert [parse_line(line) for line in body.splitlines()] == points


def test_http_sink_reports_errors(server: str) -> None:
    sink = HttpSink([f"{server}/fail", "http://127.0.0.1:9/write"], timeout_s=2)
    with pytest.raises(SinkError, match=r"HTTP 500.*; POST http://127.0.0.1:9/write"):
        sink.write(g.environment_points(1, 1, SENSORS))


def test_fast_mode_sends_minutes_of_data_at_once(server: str) -> None:
    before = time.time_ns()
    code = main(["--fast", "--duration", "120", "--http-write", f"{server}/write?db=telemetry"])
    assert code == 0
    points = [parse_line(line) for r in _Recorder.requests for line in r[3].splitlines()]
    assert len(points) == 120 * (3 + 2)
    times = sorted({p[3] for p in points})
    assert len(times) == 120 and {b - a for a, b in itertools.pairwise(times)} == {10**9}
    assert before - 121 * 10**9 <= times[0] <= before - 119 * 10**9


def test_cli_exit_code_reports_failed_writes(server: str) -> None:
    assert main(["--fast", "--duration", "2", "--http-write", f"{server}/fail"]) == 1


def test_realtime_paces_on_the_clock() -> None:
    clock = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    class Sink:
        got: ClassVar[list[int]] = []

        def write(self, points: list) -> None:
            self.got.append(len(points))

        def close(self) -> None:
            pass

    steps = iter([[("m", {}, {"v": 1.0}, 0)]] * 4)
    assert run_realtime([Sink()], steps, 0.5, 100.0, clock=lambda: clock[0], sleep=sleep) == 0
    assert Sink.got == [1, 1, 1, 1] and slept == [0.5, 0.5, 0.5]


class _FakePaho:
    """Stands in for paho.mqtt.client.Client: records connect and publish calls."""

    def __init__(self, fail_connects: int = 0) -> None:
        self.fail_connects = fail_connects
        self.published: list[tuple[str, str, int]] = []
        self.calls: list[str] = []

    def connect(self, host: str, port: int, keepalive: int) -> None:
        self.calls.append(f"connect {host}:{port}")
        if self.fail_connects:
            self.fail_connects -= 1
            raise ConnectionRefusedError("not yet")

    def loop_start(self) -> None:
        self.calls.append("loop_start")

    def loop_stop(self) -> None:
        self.calls.append("loop_stop")

    def disconnect(self) -> None:
        self.calls.append("disconnect")

    def publish(self, topic: str, payload: str, qos: int) -> object:
        self.published.append((topic, payload, qos))
        return type("Info", (), {"rc": 0})()


def test_mqtt_sink_publishes_one_line_per_point_on_its_topic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)
    fake = _FakePaho(fail_connects=2)
    sink = MqttSink("mosquitto", 1883, qos=1, client_factory=lambda cid: fake)
    points = g.environment_points(1, 1, SENSORS) + g.machine_points(1, 1, MACHINES)
    sink.write(points)
    sink.close()
    assert fake.calls[:4] == ["connect mosquitto:1883"] * 3 + ["loop_start"]
    assert fake.calls[-2:] == ["loop_stop", "disconnect"]
    assert [(t, parse_line(p), q) for t, p, q in fake.published] == [
        (g.topic_for(p), p, 1) for p in points
    ]


def test_paho_is_imported_only_for_the_mqtt_sink() -> None:
    code = "import sys, simulator.__main__; print('paho' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_paho_client_factory_builds_a_v2_client() -> None:
    from simulator.publish import _paho_client

    client = _paho_client("test-client")
    assert client._client_id == b"test-client"
