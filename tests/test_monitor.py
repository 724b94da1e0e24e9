"""entrypoint.monitor without servers: kapacitord's log lines, influxDBOut's counters, the
disk rule, the status file the health check reads, and a summary at most once a minute."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from entrypoint import monitor
from entrypoint.monitor import Monitor, log_problem, read_status

# Lines as kapacitord 1.8.6 writes them (see tests/test_reliability.py for the real ones).
WRITE = ('ts=2026-12-07T18:40:00.000Z lvl=error msg="failed to write points to InfluxDB" '
         'service=kapacitor task_master=main task=anom node=influxdb_out3 '
         'err="Post \\"http://127.0.0.1:1/write\\": dial tcp 127.0.0.1:1: connect: '
         'connection refused"')
SNAPSHOT = ('ts=2026-12-07T18:40:00.000Z lvl=error msg="failed to save task snapshot" '
            'service=kapacitor task_master=main task=anom err="write kapacitor.db: no space '
            'left on device"')
ALERT = ('ts=2026-12-07T18:40:00.000Z lvl=error msg="failed to marshal alert data json" '
         'service=alert handler=log-anomalies topic=anomalies err="write /d/a.log: bad"')


def test_log_lines_name_the_task_or_handler():
    assert log_problem(WRITE) == ("write:anom", 'Post "http://127.0.0.1:1/write": dial tcp '
                                                "127.0.0.1:1: connect: connection refused")
    assert log_problem(SNAPSHOT) == ("snapshot:anom", "task anom: snapshot failed: write "
                                                       "kapacitor.db: no space left on device")
    assert log_problem('ts=x lvl=error msg="open failed" err="no space left on device"') == (
        "enospc", "data volume full: no space left on device")
    key, what = log_problem(ALERT)
    assert key == "alert:log-anomalies"
    assert what == ("alert handler log-anomalies (topic anomalies) failed: failed to marshal "
                    "alert data json: write /d/a.log: bad")
    assert log_problem('ts=x lvl=info msg="started task" task=anom') is None


class FakeApi:
    """Kapacitor's task list with influxDBOut statistics (unit tests only)."""

    def __init__(self) -> None:
        self.errors = self.written = 0

    def tasks(self, *_fields: str) -> list[dict]:
        stats = {"influxdb_out3": {"write_errors": self.errors,
                                   "points_written": self.written}}
        return [{"id": "anom", "stats": {"node-stats": stats}}]


@pytest.fixture
def clock():
    return SimpleNamespace(now=1_000_000.0)


def make(tmp_path: Path, clock, api=None) -> Monitor:
    return Monitor(api or FakeApi(), tmp_path, "", tmp_path / "health.json",
                   clock=lambda: clock.now)


def test_write_errors_open_a_problem_until_points_are_written_again(tmp_path, clock):
    api = FakeApi()
    mon = make(tmp_path, clock, api)
    mon.check(["anom"])
    assert read_status(mon.path, clock.now) == []
    mon.lines([WRITE])
    api.errors = 3
    clock.now += 5
    mon.check(["anom"])
    (line,) = read_status(mon.path, clock.now)
    assert line.startswith("task anom: results not written to InfluxDB (influxDBOut "
                           "write_errors): Post")
    assert "connection refused (since 1970-01-12T13:46:45Z, 3 times)" in line
    clock.now += 5
    mon.check(["anom"])  # no new errors, nothing written: still being lost as far as we know
    assert len(read_status(mon.path, clock.now)) == 1
    api.written = 100
    clock.now += 5
    mon.check(["anom"])
    assert read_status(mon.path, clock.now) == []


def test_a_problem_without_recovery_signs_expires_after_the_hold(tmp_path, clock):
    mon = make(tmp_path, clock)
    mon.lines([ALERT])
    mon.check([])
    assert len(read_status(mon.path, clock.now)) == 1
    clock.now += monitor.HOLD + 1
    mon.check([])
    assert read_status(mon.path, clock.now) == []


def test_summary_at_most_once_a_minute(tmp_path, clock, capsys):
    mon = make(tmp_path, clock)
    for i in range(30):
        mon.lines([ALERT.replace("log-anomalies", f"h{i % 3}")])
        mon.check([])
        clock.now += 5
    summaries = [line for line in capsys.readouterr().out.splitlines() if "health:" in line]
    assert 2 <= len(summaries) <= 3, summaries  # 150 s of problems
    assert "3 problem(s)" in summaries[-1]
    clock.now += monitor.HOLD + monitor.SUMMARY_EVERY
    mon.check([])
    assert capsys.readouterr().out.strip().endswith("health: all clear")


def test_disk_rule(monkeypatch, tmp_path):
    def statvfs(free_mib: float, total_mib: float):
        return lambda _p: SimpleNamespace(f_blocks=int(total_mib * 256), f_frsize=4096,
                                          f_bavail=int(free_mib * 256))
    monkeypatch.setattr(monitor.os, "statvfs", statvfs(0.5, 16))
    assert "nearly full: 0.5 MiB free of 16 MiB" in monitor.disk_problem(tmp_path)
    monkeypatch.setattr(monitor.os, "statvfs", statvfs(4, 16))
    assert monitor.disk_problem(tmp_path) == ""
    monkeypatch.setattr(monitor.os, "statvfs", statvfs(600, 100_000))  # 0.6 %, above 512 MiB
    assert monitor.disk_problem(tmp_path) == ""
    monkeypatch.setattr(monitor.os, "statvfs", statvfs(500, 100_000))
    assert monitor.disk_problem(tmp_path)


def test_a_stale_or_broken_status_file_is_a_problem(tmp_path):
    path = tmp_path / "health.json"
    assert read_status(path) == []  # not written yet
    path.write_text(json.dumps({"updated": 100.0, "problems": []}))
    assert read_status(path, now=130.0) == []
    assert "has not updated" in read_status(path, now=100.0 + monitor.STALE_AFTER + 1)[0]
    path.write_text("{")
    assert "unreadable" in read_status(path)[0]


def test_influxdb_unreachable_is_named(tmp_path, clock):
    mon = Monitor(FakeApi(), tmp_path, "http://127.0.0.1:9", tmp_path / "h.json",
                  clock=lambda: clock.now)
    mon.check([])
    (line,) = read_status(mon.path, clock.now)
    assert line.startswith("InfluxDB at http://127.0.0.1:9 unreachable")


def test_more_results_than_the_buffer_holds_during_an_outage_is_named(tmp_path, clock):
    api = FakeApi()
    mon = Monitor(api, tmp_path, "http://127.0.0.1:9", tmp_path / "h.json",
                  clock=lambda: clock.now, buffer_limit=1000)
    api.written = 5000
    mon.check(["anom"])  # InfluxDB gone from here on
    api.written = 5900
    mon.check(["anom"])
    assert not any("overflowing" in line for line in read_status(mon.path, clock.now))
    api.written = 6200
    mon.check(["anom"])
    assert any("results buffer overflowing: 1200 results written since InfluxDB became "
               "unreachable, it holds 1000 (RESULTS_BUFFER_LIMIT): about 200 of the oldest "
               "dropped" in line for line in read_status(mon.path, clock.now))


def test_result_targets_are_read_from_the_tickscript():
    script = """
stream
    |from().measurement('m')
    |influxDBOut()
        // where the results go
        .database('telemetry')
        .retentionPolicy('autogen')
        .measurement('x')
    |influxDBOut()
        .database(db)
"""
    assert monitor.result_targets(script) == {("telemetry", "autogen")}


def test_behind_a_buffer_only_a_missing_retention_policy_is_a_loss(tmp_path):
    """The buffer creates a database at its first write (tests/test_results_buffer.py)."""
    from localstack.influxd import LocalInfluxd

    server = LocalInfluxd(tmp_path)
    try:
        server.query("CREATE DATABASE have")
        targets = {"new": {("fresh", "autogen")}, "rp": {("have", "forever")},
                   "fine": {("have", "autogen")}}
        direct = monitor.missing_targets(server.url, targets)
        assert set(direct) == {"new", "rp"}
        assert set(monitor.missing_targets(server.url, targets, buffered=True)) == {"rp"}
    finally:
        server.stop()
