"""A UDF's state saved on the data volume at stop (stdin closed or SIGTERM) and at each
snapshot, and taken back at Init: verified, keyed by task and node, never fatal."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from entrypoint import tasks
from tests.agent_helpers import Request, point, point_requests, read_points, spawn
from tests.testbed import wait_for
from udfkit import statefile, udf_pb2

OPTIONS = {"field": "v", "size": 3}  # a point per value: the mean so far


def logged(client, *texts: str) -> bool:
    """A stderr line of the UDF holds every text: waited for, as a thread reads stderr."""
    return wait_for(lambda: any(all(t in line for t in texts) for line in client.stderr), 10)


def _mavg(state_dir: Path):
    return spawn("moving_average.py", env={**os.environ, "UDF_STATE_DIR": str(state_dir)})


def _learn(state_dir: Path, values: list[float], task: str = "t1", node: str = "n1"):
    client = _mavg(state_dir)
    assert client.init(OPTIONS, task=task, node=node).success
    client.send(point_requests([point(i, v=v) for i, v in enumerate(values)]))
    read_points(client, len(values))
    return client


def _stop(client) -> None:
    client.close_input()
    assert client.wait() == 0


def _next_avg(client, value: float) -> float:
    client.send(point_requests([point(100, v=value)]))
    return read_points(client, 1)[0].fieldsDouble["avg"]


def test_closed_stdin_saves_the_state_and_the_next_init_takes_it(tmp_path):
    first = _learn(tmp_path, [1.0, 2.0])
    first.close_input()
    assert first.wait() == 0
    saved = statefile.path_for(tmp_path, "t1", "n1")
    assert saved.is_file()
    second = _mavg(tmp_path)
    assert second.init(OPTIONS, task="t1", node="n1").success
    assert _next_avg(second, 6.0) == 3.0  # (1 + 2 + 6) / 3: the window came back
    second.close_input()
    assert logged(second, "state loaded from")


def test_sigterm_handles_what_was_read_then_saves(tmp_path):
    first = _learn(tmp_path, [1.0, 2.0, 3.0])
    first.proc.send_signal(signal.SIGTERM)
    assert first.wait() == 0
    assert logged(first, "state saved to")
    second = _mavg(tmp_path)
    assert second.init(OPTIONS, task="t1", node="n1").success
    assert _next_avg(second, 7.0) == 4.0  # (2 + 3 + 7) / 3
    second.close_input()


def test_the_file_wins_over_an_older_kapacitor_snapshot(tmp_path):
    first = _learn(tmp_path, [1.0, 2.0])
    old = first.request(Request(snapshot=udf_pb2.SnapshotRequest())).snapshot.snapshot
    first.send(point_requests([point(10, v=3.0)]))
    read_points(first, 1)
    first.close_input()
    assert first.wait() == 0
    second = _mavg(tmp_path)
    assert second.init(OPTIONS, task="t1", node="n1").success
    restored = second.request(Request(restore=udf_pb2.RestoreRequest(snapshot=old))).restore
    assert restored.success
    assert _next_avg(second, 9.0) == 14.0 / 3  # (2 + 3 + 9): the file, not [1, 2]
    second.close_input()
    assert logged(second, "an older state")


def test_without_a_file_kapacitor_snapshot_is_restored(tmp_path):
    first = _learn(tmp_path / "elsewhere", [1.0, 2.0])
    data = first.request(Request(snapshot=udf_pb2.SnapshotRequest())).snapshot.snapshot
    first.close_input()
    second = _mavg(tmp_path)
    assert second.init(OPTIONS, task="t1", node="n1").success
    assert second.request(Request(restore=udf_pb2.RestoreRequest(snapshot=data))).restore.success
    assert _next_avg(second, 6.0) == 3.0
    second.close_input()


def test_each_task_and_node_has_its_own_file(tmp_path):
    _stop(_learn(tmp_path, [1.0, 2.0], task="a/b", node=".."))
    other = _mavg(tmp_path)
    assert other.init(OPTIONS, task="a", node="n1").success
    assert _next_avg(other, 6.0) == 6.0  # nothing of task a/b
    _stop(other)
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.state"))
    assert files == [Path("a", "n1.state"), Path("a%2Fb", "%2E%2E.state")]


@pytest.mark.parametrize("damage, reason", [
    (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "checksum mismatch"),
    (lambda b: b"junk" + b, "not a udfkit state file"),
    (lambda b: b[:9] + b"\x09" + b[10:], "format version 9"),
])
def test_a_bad_file_is_logged_and_ignored(tmp_path, damage, reason):
    _stop(_learn(tmp_path, [1.0, 2.0]))
    saved = statefile.path_for(tmp_path, "t1", "n1")
    saved.write_bytes(damage(saved.read_bytes()))
    second = _mavg(tmp_path)
    assert second.init(OPTIONS, task="t1", node="n1").success
    assert _next_avg(second, 6.0) == 6.0  # fresh
    second.close_input()
    assert second.wait() == 0
    assert logged(second, "ignored", reason), second.stderr


def test_a_file_saved_under_other_options_is_ignored(tmp_path):
    _stop(_learn(tmp_path, [1.0, 2.0]))
    second = _mavg(tmp_path)
    assert second.init({**OPTIONS, "size": 4}, task="t1", node="n1").success
    assert _next_avg(second, 6.0) == 6.0
    second.close_input()
    assert logged(second, "saved under other options")


def test_an_unwritable_state_dir_never_fails_the_udf(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    client = _learn(blocker, [1.0, 2.0])
    data = client.request(Request(snapshot=udf_pb2.SnapshotRequest())).snapshot.snapshot
    assert data  # Kapacitor still gets its snapshot
    assert _next_avg(client, 3.0) == 2.0
    client.close_input()
    assert client.wait() == 0
    assert logged(client, "state not saved at snapshot")
    assert logged(client, "state not saved at stop")


def test_the_entrypoint_finds_a_task_state_where_the_agent_saves_it(tmp_path):
    for name in ("anom", "a/b.c", "..", "ünï code"):
        assert tasks.state_dir(tmp_path, name) == statefile.path_for(
            tmp_path / "udf-state", name, "n").parent  # UDF_STATE_DIR: data dir/udf-state
