"""Keep enabled tasks running: Kapacitor never restarts a task whose UDF failed, we do.

A task fails in two ways: it could not start (enabled, executing=false, error
set), or a node failed later (Kapacitor 1.8 keeps it "executing" and only logs
the error; kapacitord.py reports those). The only cure is disable+enable.
The first restart is immediate (a UDF killed or hung once should cost seconds of
data, not a back-off); further restarts back off exponentially (1s, 2s, 4s ... 60s)
so a UDF that dies at once does not spin; the count is forgotten once the task has
run healthy a while.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from entrypoint import tasks as kapacitor_tasks
from entrypoint.log import log
from kapacitorkit.api import ApiError, KapacitorApi

FIRST_DELAY = 1.0
MAX_DELAY = 60.0
HEALTHY_RESET = 10.0
"""Seconds a task must execute after a restart before a new failure counts as a new incident."""


def backoff(failures: int) -> float:
    """Delay before the n-th consecutive restart (n >= 1): none for the first."""
    return 0.0 if failures <= 1 else min(MAX_DELAY, FIRST_DELAY * 2 ** (failures - 2))


@dataclass
class Health:
    failures: int = 0
    restart_at: float | None = None
    healthy_since: float | None = None
    error: str = ""
    restarted_wall: float = 0.0  # epoch seconds of the last restart


class Supervisor:
    def __init__(self, api: KapacitorApi, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.api = api
        self.clock = clock
        self.wall = wall
        self.health: dict[str, Health] = {}

    def watch(self, names: Iterable[str]) -> None:
        """The enabled tasks to look after (replaces the previous set; logged when it changes)."""
        names = sorted(names)
        if names != sorted(self.health):
            log(f"supervising {len(names)} task(s): {', '.join(names) or 'none'}")
        self.health = {n: self.health.get(n, Health()) for n in names}

    def forget(self, name: str) -> None:
        """The task was just (re)started on purpose: start its record afresh."""
        if name in self.health:
            self.health[name] = Health()

    def next_due(self) -> float | None:
        due = [h.restart_at for h in self.health.values() if h.restart_at is not None]
        return min(due) if due else None

    def check(self) -> None:
        for name, health in self.health.items():
            try:
                info = self.api.task(name)
            except (ApiError, OSError) as exc:
                log(f"task {name}: cannot read its state: {exc}")
                continue
            self._judge(name, health, info)

    def failed(self, name: str, error: str, when: float | None = None) -> None:
        """kapacitord logged a failure of this task (at epoch `when`): schedule its restart,
        unless the failure is of the run before our last restart (a late keepalive timeout
        after the UDF's own ErrorResponse, say)."""
        health = self.health.get(name)
        if health is None or (when is not None and when < health.restarted_wall):
            return
        self._fail(name, health, error)

    def _fail(self, name: str, health: Health, error: str) -> None:
        if health.restart_at is not None:
            return
        health.failures += 1
        health.healthy_since = None
        health.restart_at = self.clock() + backoff(health.failures)
        health.error = error.strip()
        log(f"task {name}: failed: {health.error}; restarting in "
            f"{backoff(health.failures):g}s (restart #{health.failures})")

    def _judge(self, name: str, health: Health, info: dict) -> None:
        now = self.clock()
        if health.restart_at is not None:
            if now >= health.restart_at:
                health.restart_at = None
                health.restarted_wall = self.wall()
                error = kapacitor_tasks.restart(self.api, name)
                outcome = f"restart failed: {error}" if error else "restarted"
                log(f"task {name}: {outcome} (restart #{health.failures}, after: {health.error})")
            return
        if info.get("executing"):
            if health.healthy_since is None:
                health.healthy_since = now
            elif health.failures and now - health.healthy_since >= HEALTHY_RESET:
                health.failures = 0
            return
        health.healthy_since = None
        if info.get("error") and info.get("status") == "enabled":
            self._fail(name, health, info["error"])
