"""The agent under faults: garbage frames, protocol misuse, huge frames, hung handlers, restore."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from faultkit import PROBE
from faultkit.protocol import (
    CASE_KINDS,
    EXIT_DEADLINE,
    MeasuredUdf,
    garbage_cases,
    run_garbage,
)
from tests.agent_helpers import Request, point, point_requests, read_points, spawn
from tests.conftest import ROOT
from tests.testbed import wait_for
from udfkit import framing, snapshot, udf_pb2
from udfkit.client import UdfClient

BROKEN_KEEPALIVE = framing.frame(bytes([3 << 3 | 2, 0xFF]))


def _error(client, timeout: float = EXIT_DEADLINE) -> str:
    """The ErrorResponse text, skipping other responses; fails if none comes in time."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.recv(timeout=max(0.01, deadline - time.monotonic()))
        if response.WhichOneof("message") == "error":
            return response.error.error


def test_broken_keepalive_ends_the_process_with_an_error_while_input_stays_open():
    client = spawn("mirror.py")
    assert client.init({}).success
    client.send_raw(BROKEN_KEEPALIVE)
    assert "malformed keepalive" in _error(client)
    assert client.wait(timeout=EXIT_DEADLINE) == 1


@pytest.mark.parametrize("kind", sorted(CASE_KINDS))
def test_garbage_never_hangs_and_a_failure_always_says_why(kind):
    cases = [case for case in garbage_cases(7 * 6) if case[0] == kind]
    for _, data in cases:
        result = run_garbage(kind, data)
        assert result.returncode is not None, f"{kind}: still running {EXIT_DEADLINE}s after EOF"
        assert result.returncode == 0 or result.error, f"{kind}: exit {result.returncode}, no error"
        assert result.peak_rss_mb < 200, f"{kind}: {result.peak_rss_mb:.0f} MB"


def test_a_udfs_peak_rss_is_its_own_however_large_the_process_that_started_it():
    # a started process inherits its parent's RSS in ru_maxrss; the bound above must not
    # depend on what the test run loaded before (a model in-process)
    ballast = b"\x01" * (300 << 20)
    kind, data = garbage_cases(1)[0]
    result = run_garbage(kind, data)
    assert len(ballast) and result.peak_rss_mb < 200, f"{result.peak_rss_mb:.0f} MB"


def test_begin_batch_to_a_stream_udf_is_an_error_naming_it():
    client = spawn("mirror.py")
    assert client.init({}).success
    client.send([Request(begin=udf_pb2.BeginBatch(name="m")),
                 *point_requests([point(i, v=1.0) for i in range(100)])])
    assert "BeginBatch sent to the stream UDF mirror" in _error(client)
    assert client.wait(timeout=EXIT_DEADLINE) == 1


def test_point_before_init_is_an_error_naming_it():
    client = spawn("mirror.py")
    client.send(point_requests([point(1, v=1.0)]))
    assert "1 point(s) before a successful Init" in _error(client)
    assert client.wait(timeout=EXIT_DEADLINE) == 1


def test_end_batch_without_begin_is_an_error():
    client = spawn("outliers.py", "--mode", "batch")
    assert client.init({"field": "v"}).success
    client.send([Request(end=udf_pb2.EndBatch(name="m"))])
    assert "EndBatch without a BeginBatch" in _error(client)


@pytest.mark.slow
def test_a_256_mb_frame_is_read_in_seconds_with_memory_about_its_size():
    size = 256 << 20
    udf = MeasuredUdf("mirror.py")
    client = udf.client
    assert client.init({}).success
    frame = framing.frame(Request(restore=udf_pb2.RestoreRequest(snapshot=bytes(size - 16)))
                          .SerializeToString())
    start = time.monotonic()
    client.send_raw(frame)
    response = client.recv(timeout=30)
    elapsed = time.monotonic() - start
    del frame
    assert response.WhichOneof("message") == "restore" and response.restore.success
    client.close_input()
    ended = udf.wait(10)
    # CPU time, not wall time, is asserted: the machine may be busy (bench/faults.py gives
    # the wall time); a quadratic reader needs minutes of CPU for this frame.
    assert ended.cpu_s <= 5.0, f"{ended.cpu_s:.1f} s CPU ({elapsed:.1f} s wall) for 256 MB"
    assert ended.peak_rss_mb <= 3 * 256, f"peak RSS {ended.peak_rss_mb:.0f} MB for 256 MB"


def _keepalive(stamp: int) -> Request:
    return Request(keepalive=udf_pb2.KeepaliveRequest(time=stamp))


def test_a_hung_handler_ends_the_task_with_an_error_naming_the_handler():
    client = spawn(PROBE)
    assert client.init({"sleep": 3600.0}).success
    interval = 0.2  # Kapacitor's keepalive interval with a 0.4 s timeout
    client.send([_keepalive(1)])
    time.sleep(interval)
    client.send([_keepalive(2), *point_requests([point(1, v=1.0)])])
    hung_at = time.monotonic()
    for stamp in range(3, 40):
        time.sleep(interval)
        try:
            client.send([_keepalive(stamp)])
        except OSError:  # the UDF has gone
            break
        if client.proc.poll() is not None:
            break
    error = _error(client, timeout=1)
    found_after = time.monotonic() - hung_at
    assert "handler probe.point() has been running" in error
    assert "longer than the UDF timeout" in error
    assert client.wait(timeout=EXIT_DEADLINE) == 2
    assert found_after < 0.4 + 2 * interval + 2.0, f"hang noticed after {found_after:.1f} s"


def test_a_slow_handler_within_the_timeout_keeps_its_task():
    client = spawn(PROBE)
    assert client.init({"sleep": 0.3}).success
    client.send([_keepalive(1)])
    time.sleep(0.5)  # keepalive interval 0.5 s: timeout 1 s
    client.send([_keepalive(2), *point_requests([point(i, v=1.0) for i in range(3)])])
    for stamp in range(3, 6):
        time.sleep(0.3)
        client.send([_keepalive(stamp)])
    assert [p.time for p in read_points(client, 3)] == [0, 1, 2]
    client.close_input()
    assert client.wait(timeout=EXIT_DEADLINE) == 0


def test_restore_that_raises_starts_fresh_even_when_a_second_init_would_fail():
    client = spawn(PROBE)
    assert client.init({"init_once": True}).success
    bad_state = snapshot.encode("probe", 1, {"no count": 1})
    restored = client.request(Request(restore=udf_pb2.RestoreRequest(snapshot=bad_state)))
    assert restored.WhichOneof("message") == "restore" and restored.restore.success
    client.send(point_requests([point(1, v=1.0)]))
    assert len(read_points(client, 1)) == 1
    client.close_input()
    assert client.wait(timeout=EXIT_DEADLINE) == 0
    assert any("snapshot ignored, starting fresh" in line for line in client.stderr)
    assert any("fresh handler failed Init" in line for line in client.stderr)


def test_restore_that_raises_gives_a_fresh_handler_not_a_half_restored_one():
    client = spawn(PROBE)
    assert client.init({}).success
    bad_state = snapshot.encode("probe", 1, {"no count": 1})
    assert client.request(Request(restore=udf_pb2.RestoreRequest(snapshot=bad_state))) \
        .restore.success
    client.send(point_requests([point(1, v=1.0)]))
    assert read_points(client, 1)[0].fieldsInt["count"] == 1  # not 0: count was reset by Init
    client.close_input()


def _socket_server(path: str, **popen) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, str(ROOT / "udfs" / "mirror.py"), "--socket",
                               path], **popen)
    wait_for(lambda: os.path.exists(path), 10, 0.05)
    return server


def test_socket_file_is_0660_whatever_the_umask(tmp_path):
    path = str(tmp_path / "mirror.sock")
    server = _socket_server(path, preexec_fn=lambda: os.umask(0))
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    finally:
        server.terminate()
        server.wait(timeout=5)


def test_socket_connection_is_closed_only_after_its_reader_stopped(tmp_path):
    """A closed descriptor's number is reused by the next connection, so a reader left
    blocked on it would go on to read another connection's requests. After the agent of
    a connection ends (the peer still connected), no reader thread may be left."""
    path = str(tmp_path / "mirror.sock")
    server = _socket_server(path)
    threads = Path(f"/proc/{server.pid}/task")
    kept = []
    try:
        idle = len(list(threads.iterdir()))
        for _ in range(20):  # whether a reader is inside its read at the close is a race
            conn = socket.socket(socket.AF_UNIX)
            conn.connect(path)
            kept.append(conn)
            client = UdfClient(conn.fileno(), conn.fileno())
            client.send(point_requests([point(1, v=1.0)]))  # before Init: the agent ends
            assert "before a successful Init" in _error(client)
        assert wait_for(lambda: len(list(threads.iterdir())) == idle, 5), \
            f"{len(list(threads.iterdir())) - idle} thread(s) left behind by ended connections"
        conn = socket.socket(socket.AF_UNIX)
        conn.connect(path)
        kept.append(conn)
        client = UdfClient(conn.fileno(), conn.fileno())
        assert client.info().wants == udf_pb2.STREAM
        assert client.init({}).success
    finally:
        for conn in kept:
            conn.close()
        server.terminate()
        server.wait(timeout=5)


class Flood:
    """Points written to a UDF as fast as its stdin takes them, up to `total` bytes, from a
    thread (as Kapacitor writes): `written` is how far it got."""

    def __init__(self, client: UdfClient, total: int = 64 << 20) -> None:
        self.chunk = b"".join(framing.frame(r.SerializeToString())
                              for r in point_requests(point(t, v=1.0) for t in range(10_000)))
        self.client, self.total, self.written = client, total, 0
        threading.Thread(target=self._write, daemon=True).start()

    def _write(self) -> None:
        try:
            while self.written < self.total:
                self.client.send_raw(self.chunk)
                self.written += len(self.chunk)
        except OSError:  # the UDF has gone
            pass

    def stalled(self, still: float = 1.0) -> bool:
        """The writer made no progress for `still` s: it waits for the UDF."""
        before = self.written
        time.sleep(still)
        return self.written == before < self.total


def test_input_faster_than_the_handler_waits_in_the_pipe_not_in_the_udf():
    """The reader stays at most QUEUED_READS reads ahead of a slow handler: then the pipe
    fills and the writer waits, so a backlog does not grow the UDF's memory."""
    from udfkit.agent import _READ_SIZE, PIPE_BYTES, QUEUED_READS

    client = spawn(PROBE)
    assert client.init({"sleep": 0.001}).success
    flood = Flood(client)
    wait_for(flood.stalled, 30, 0.0)
    ahead = QUEUED_READS * _READ_SIZE + PIPE_BYTES + 2 * len(flood.chunk)
    assert flood.written <= ahead, f"{flood.written >> 20} MiB taken from the writer"
    client.proc.kill()


def test_a_hung_handler_is_found_while_input_waits_for_it():
    """With the reader's queue full it reads no keepalive, and still ends a hung handler."""
    client = spawn(PROBE)
    assert client.init({"sleep": 3600.0}).success
    client.send([_keepalive(1)])
    time.sleep(0.2)  # Kapacitor's keepalive interval: the timeout is 0.4 s
    client.send([_keepalive(2)])
    Flood(client)
    error = _error(client, timeout=10)
    assert "handler probe.point() has been running" in error
    assert client.wait(timeout=EXIT_DEADLINE) == 2
