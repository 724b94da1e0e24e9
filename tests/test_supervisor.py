"""entrypoint.supervisor: a failed task is restarted at once, then with back-off while it
keeps failing; kapacitord's log lines count as failures, a late echo of one does not."""

from __future__ import annotations

from entrypoint.kapacitord import task_error
from entrypoint.supervisor import Supervisor, backoff


class FakeApi:
    def __init__(self) -> None:
        self.info = {"status": "enabled", "executing": True, "error": ""}
        self.calls: list[tuple[str, bool]] = []

    def task(self, _name):
        return self.info

    def set_status(self, name, enabled):
        self.calls.append((name, enabled))


def test_backoff_is_none_for_a_first_failure_then_doubles_to_a_cap():
    assert [backoff(n) for n in range(1, 10)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]


def test_supervisor_restarts_at_once_then_backs_off_a_task_that_keeps_failing():
    now = [0.0]
    api = FakeApi()
    supervisor = Supervisor(api, clock=lambda: now[0])
    supervisor.watch(["t"])
    api.info = {"status": "enabled", "executing": False, "error": "udf exited"}
    supervisor.check()
    assert supervisor.next_due() == 0.0
    supervisor.check()
    assert api.calls == [("t", False), ("t", True)]
    supervisor.check()  # failed again at once: the next wait is 1 s
    assert supervisor.next_due() == 1.0
    now[0] = 1.0
    supervisor.check()
    assert api.calls == [("t", False), ("t", True)] * 2
    supervisor.check()  # and again: 2 s
    assert supervisor.next_due() == 3.0
    api.info = {"status": "enabled", "executing": True, "error": ""}
    for t in (4.0, 200.0, 400.0):
        now[0] = t
        supervisor.check()
    assert supervisor.health["t"].failures == 0


def test_supervisor_acts_on_failures_kapacitord_logs():
    now = [0.0]
    api = FakeApi()  # the API still says "executing": Kapacitor 1.8 only logs the failure
    supervisor = Supervisor(api, clock=lambda: now[0])
    supervisor.watch(["t"])
    line = ('ts=x lvl=error msg="encountered error" service=kapacitor task_master=main '
            'task=t node=udf2 err="keepalive timedout, last \\"x\\""')
    supervisor.failed(*task_error(line))
    assert supervisor.health["t"].error == 'keepalive timedout, last "x"'
    supervisor.check()
    assert api.calls == [("t", False), ("t", True)]


def test_a_udf_error_response_is_a_failure_and_a_late_echo_of_it_is_ignored():
    wall = [1000.0]
    api = FakeApi()
    supervisor = Supervisor(api, clock=lambda: 0.0, wall=lambda: wall[0])
    supervisor.watch(["t"])
    line = ('ts=1970-01-01T00:16:39.500Z lvl=error msg="received error message" '
            'service=kapacitor task_master=main task=t node=udf2 '
            'err="handler probe.point() has been running for 3.0 s"')
    name, error, when = task_error(line)
    assert (name, error, when) == ("t", "handler probe.point() has been running for 3.0 s", 999.5)
    supervisor.failed(name, error, when)
    supervisor.check()
    assert api.calls == [("t", False), ("t", True)]
    late = ('ts=1970-01-01T00:16:39.900Z lvl=error msg="encountered error" service=kapacitor '
            'task_master=main task=t node=udf2 err="keepalive timedout"')
    supervisor.failed(*task_error(late))  # logged before our restart: the old run's
    assert supervisor.health["t"].restart_at is None and supervisor.health["t"].failures == 1
