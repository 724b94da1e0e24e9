"""The agent against a hand-driven Kapacitor side: lifecycle, errors, keepalive, vectorising."""

from __future__ import annotations

import fcntl
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from faultkit import PROBE
from localstack.polling import wait_for
from localstack.process import cpu_seconds
from tests.agent_helpers import Request, point, point_requests, read_points, spawn
from tests.conftest import ROOT
from udfkit import framing, udf_pb2
from udfkit.client import UdfClient

UDF_SCRIPTS = ["mirror.py", "threshold.py", "temperature_classifier.py",
               "humidity_classifier.py", "moving_average.py", "outliers.py"]


@pytest.mark.parametrize("script", UDF_SCRIPTS)
def test_info_probe_answers_fast(script):
    client = spawn(script, *(["--mode", "batch"] if script == "outliers.py" else []))
    info = client.info()
    cpu = cpu_seconds(client.proc.pid)
    maps = Path(f"/proc/{client.proc.pid}/maps").read_text()
    client.close_input()
    assert client.wait() == 0
    assert cpu < 0.5, f"{script} used {cpu:.2f} s CPU before answering Info"
    assert "numpy" not in maps and "sklearn" not in maps, "heavy imports belong in Init"
    assert info.wants == (udf_pb2.BATCH if script == "outliers.py" else udf_pb2.STREAM)


def test_info_lists_declared_options_with_types():
    client = spawn("threshold.py")
    info = client.info()
    client.close_input()
    assert {k: list(v.valueTypes) for k, v in info.options.items()} == {
        "field": [udf_pb2.STRING], "min": [udf_pb2.DOUBLE], "max": [udf_pb2.DOUBLE],
        "mode": [udf_pb2.STRING], "as": [udf_pb2.STRING]}


def test_init_error_names_option_and_types():
    client = spawn("threshold.py")
    result = client.init({"field": "t", "min": 3})
    client.close_input()
    assert not result.success
    assert "min: expected DOUBLE, got INT" in result.error


def test_keepalive_answered_while_handler_is_busy():
    client = spawn(PROBE)
    assert client.init({"sleep": 3.0}).success
    client.send(point_requests([point(1, v=1.0)]))
    client.send([Request(keepalive=udf_pb2.KeepaliveRequest(time=77))])
    first = client.recv(timeout=5)  # before the point, which takes 3 s: the reader answered
    assert first.WhichOneof("message") == "keepalive" and first.keepalive.time == 77
    assert read_points(client, 1)[0].time == 1
    client.close_input()
    assert client.wait() == 0


def test_bad_point_is_dropped_and_counted_and_the_udf_goes_on():
    client = spawn(PROBE)
    assert client.init({}).success
    client.send(point_requests([point(1, v=1.0), point(2, boom=1.0), point(3, v=3.0)]))
    assert [p.time for p in read_points(client, 2)] == [1, 3]
    client.close_input()
    assert client.wait() == 0
    log = "\n".join(client.stderr)
    assert "1 point(s) dropped" in log and "refusing field boom" in log
    assert "3 points in, 2 out, 1 failed" in log


def test_bad_point_passed_through_with_error_field_when_declared():
    client = spawn(PROBE)
    assert client.init({"on_error": "pass"}).success
    client.send(point_requests([point(1, boom=1.0), point(2, v=2.0)]))
    first, second = read_points(client, 2)
    assert first.fieldsString["error"] == "refusing field boom"
    assert "error" not in second.fieldsString
    client.close_input()


@pytest.mark.parametrize(("data", "reason"), [
    (b"\xff" * 12, "malformed input"),
    (framing.encode_varint(50) + b"\x8a\x01\x05abc", "truncated input"),
    (framing.frame(b"\x8a\x01\x05\xff\xff"), "malformed point"),
    (framing.frame(b"\xfa\x07\x00"), "unexpected request"),
])
def test_garbage_ends_the_process_with_an_error_response(data, reason):
    client = spawn("mirror.py")
    client.send_raw(data)
    client.close_input()
    response = client.recv(timeout=5)
    assert response.WhichOneof("message") == "error"
    assert reason in response.error.error
    assert client.wait(timeout=5) == 1


def test_closing_stdin_ends_the_process_promptly():
    client = spawn("moving_average.py")
    assert client.init({"field": "v", "size": 3}).success
    client.send(point_requests([point(i, v=float(i)) for i in range(10)]))
    read_points(client, 8)
    start = time.monotonic()
    client.close_input()
    assert client.wait(timeout=5) == 0
    assert time.monotonic() - start < 1.0


def test_vectorised_handler_gets_every_waiting_point_but_a_lone_point_at_once():
    client = spawn(PROBE, "--vector")
    assert client.init({}).success
    client.send(point_requests([point(i, v=1.0) for i in range(2000)]))
    sizes = [p.fieldsInt["call_size"] for p in read_points(client, 2000)]
    assert max(sizes) > 100
    start = time.monotonic()
    client.send(point_requests([point(5000, v=1.0)]))
    lone = read_points(client, 1)[0]
    assert lone.fieldsInt["call_size"] == 1
    # an agent that waited for a call to fill would wait for ever here; 1 s allows a busy
    # machine (the 0.5 ms gather delay is what the agent adds)
    assert time.monotonic() - start < 1.0
    client.close_input()


def test_vectorised_calls_are_bounded_by_max_batch():
    client = spawn(PROBE, "--vector", "--max-batch", "64")
    assert client.init({}).success
    client.send(point_requests([point(i, v=1.0) for i in range(1000)]))
    assert max(p.fieldsInt["call_size"] for p in read_points(client, 1000)) <= 64
    client.close_input()


def test_batch_reply_is_begin_points_end_in_order():
    client = spawn("outliers.py", "--mode", "batch")
    assert client.init({"field": "v"}).success
    values = [10.0, 11.0, 10.5, 9.5, 10.2, 55.0, 10.1, -30.0]
    for name in ("b1", "b2"):
        begin = udf_pb2.BeginBatch(name=name, group="g", size=len(values))
        end = udf_pb2.EndBatch(name=name, group="g", tmax=len(values))
        client.send([Request(begin=begin), *point_requests(
            point(i, v=v) for i, v in enumerate(values)), Request(end=end)])
    kinds = []
    while len(kinds) < 8:
        response = client.recv()
        kinds.append((response.WhichOneof("message"), response))
    assert [k for k, _ in kinds] == ["begin", "point", "point", "end"] * 2
    assert kinds[0][1].begin.size == 2 and kinds[0][1].begin.name == "b1"
    assert sorted(r.point.fieldsDouble["v"] for k, r in kinds[:4] if k == "point") == [-30.0, 55.0]
    assert kinds[3][1].end.tmax == len(values)
    client.close_input()


def test_snapshot_restores_state_in_a_new_process():
    first = spawn("moving_average.py")
    assert first.init({"field": "v", "size": 3, "full_window": True}).success
    first.send(point_requests([point(1, v=1.0), point(2, v=2.0)]))
    data = first.request(Request(snapshot=udf_pb2.SnapshotRequest())).snapshot.snapshot
    first.close_input()
    second = spawn("moving_average.py")
    assert second.init({"field": "v", "size": 3, "full_window": True}).success
    restored = second.request(Request(restore=udf_pb2.RestoreRequest(snapshot=data))).restore
    assert restored.success
    second.send(point_requests([point(3, v=6.0)]))
    assert read_points(second, 1)[0].fieldsDouble["avg"] == 3.0
    second.close_input()


def test_unreadable_snapshot_starts_fresh_without_failing():
    client = spawn("moving_average.py")
    assert client.init({"field": "v", "size": 2, "full_window": True}).success
    restored = client.request(Request(restore=udf_pb2.RestoreRequest(snapshot=b"junk"))).restore
    assert restored.success
    client.send(point_requests([point(1, v=1.0), point(2, v=3.0)]))
    assert read_points(client, 1)[0].fieldsDouble["avg"] == 2.0
    client.close_input()
    assert client.wait() == 0
    assert any("snapshot ignored, starting fresh" in line for line in client.stderr)


def test_profiling_mode_stamps_entry_exit_and_latency():
    client = spawn("mirror.py", env={**os.environ, "PROFILING_MODE": "true"})
    assert client.init({}).success
    client.send(point_requests([point(1, v=1.0)]))
    out = read_points(client, 1)[0]
    assert out.fieldsInt["udf_exit_ns"] >= out.fieldsInt["udf_entry_ns"] > 0
    assert 0 <= out.fieldsDouble["udf_latency_ms"] < 1000
    client.close_input()


def _spiked_series(n: int = 120, spike_at: int = 100) -> list[udf_pb2.Point]:
    values = [10.0 + (i % 7) * 0.1 for i in range(n)]
    values[spike_at] = 50.0
    return [point(i, v=v, note="as sent") for i, v in enumerate(values)]


@pytest.mark.parametrize("profiling", [False, True])
def test_annotated_points_go_out_as_they_came_with_their_fields_added(profiling: bool):
    """ads_model returns its input points Encoded: each is sent as the bytes it came in,
    with score and flag after them, and on the spike its alert and explanation (and, with
    PROFILING_MODE, the stamps): Response parsing merges them into the point."""
    env = {**os.environ, "PROFILING_MODE": "true"} if profiling else None
    client = spawn("ads_model.py", env=env)
    assert client.init({"field": "v"}).success
    sent = _spiked_series()
    client.send(point_requests(sent))
    out = [p for p in read_points(client, len(sent)) if "period_end" not in p.fieldsInt]
    client.close_input()
    stamps = ("udf_entry_ns", "udf_exit_ns") if profiling else ()
    for before, after in zip(sent, out, strict=True):
        assert {k for k in after.fieldsInt if k not in stamps} == set()
        assert after.fieldsString["note"] == "as sent" and after.tags == before.tags
        assert after.time == before.time and after.fieldsDouble["v"] == before.fieldsDouble["v"]
        assert 0.0 <= after.fieldsDouble["anomaly_score"] <= 1.0
        assert ("udf_latency_ms" in after.fieldsDouble) == profiling
    spike = out[100]
    assert spike.fieldsBool["is_anomaly"] and spike.fieldsBool["anomaly_start"]
    assert spike.fieldsString["anomaly_view"] == "spike_up"
    assert spike.fieldsDouble["normal_high"] < 50.0
    assert not any("anomaly_start" in p.fieldsBool for p in out[:100])


def test_annotated_output_keeps_input_order_with_a_bad_point_passed_on():
    """With on_error "pass", a point ads_model rejects goes out with `error` in its place
    among the annotated points (the agent expands Annotated to put it back in order)."""
    client = spawn("ads_model.py")
    assert client.init({"field": "v", "on_error": "pass"}).success
    sent = _spiked_series()
    del sent[70].fieldsDouble["v"]
    sent[70].fieldsString["v"] = "broken"
    client.send(point_requests(sent))
    out = read_points(client, len(sent))
    client.close_input()
    assert [p.time for p in out] == [p.time for p in sent]
    assert "anomaly_score" not in out[70].fieldsDouble
    assert "not a number" in out[70].fieldsString["error"]
    assert all("anomaly_score" in p.fieldsDouble for i, p in enumerate(out) if i != 70)
    assert out[100].fieldsBool["anomaly_start"]


def test_the_agent_widens_its_pipes_so_kapacitor_writes_on_during_a_long_call():
    from udfkit.agent import PIPE_BYTES

    client = spawn("mirror.py")
    assert client.init({}).success
    for pipe in (client.proc.stdin, client.proc.stdout):
        assert fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ) == PIPE_BYTES == 1 << 20
    client.close_input()


def test_socket_mode_serves_several_connections_at_once():
    path = os.path.join(tempfile.mkdtemp(), "mirror.sock")
    server = subprocess.Popen([sys.executable, str(ROOT / "udfs" / "mirror.py"), "--socket", path])
    try:
        wait_for(lambda: os.path.exists(path), 5, 0.05)
        conns = [socket.socket(socket.AF_UNIX) for _ in range(2)]
        clients = []
        for conn in conns:
            conn.connect(path)
            clients.append(UdfClient(conn.fileno(), conn.fileno()))
        for n, client in enumerate(clients):
            assert client.info().wants == udf_pb2.STREAM
            assert client.init({}, node=f"n{n}").success
        for n, client in enumerate(clients):
            client.send(point_requests([point(t, v=float(n)) for t in range(100)]))
        for n, client in enumerate(clients):
            assert {p.fieldsDouble["v"] for p in read_points(client, 100)} == {float(n)}
        for conn in conns:
            conn.close()
    finally:
        server.terminate()
        assert server.wait(timeout=5) in (0, -15)
    assert not os.path.exists(path)


def test_point_outside_a_batch_is_an_error_response_naming_it():
    client = spawn("rfc_classifier.py", "--mode", "batch")  # on_error "pass" by default
    assert client.init({}).success
    client.send(point_requests([point(1, v=1.0)]))
    response = client.recv(timeout=5)
    assert response.WhichOneof("message") == "error"
    assert "point outside a batch" in response.error.error
    assert "rfc_classifier_batch" in response.error.error
    assert client.wait(timeout=5) == 1


def _collections_for(points: int, *args: str) -> int:
    client = spawn("moving_average.py", *args)
    assert client.init({"field": "v", "size": 3}).success
    client.send(point_requests([point(i, v=float(i)) for i in range(points)]))
    read_points(client, points - 2)
    client.close_input()
    assert client.wait() == 0
    stop = next(line for line in client.stderr if "stopped:" in line)
    return int(re.search(r"gc \d+ ms in (\d+) collections", stop).group(1))


def test_collector_is_settled_after_init_and_reported_at_stop():
    tuned, default = _collections_for(20_000), _collections_for(20_000, "--default-gc")
    assert default > 10, "the workload should make the default collector run"
    assert tuned * 10 < default
