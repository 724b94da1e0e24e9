"""The kapacitord process: its rendered kapacitor.conf, start, output, and a clean stop.

Its output is copied line by line to ours, and read on the way: Kapacitor 1.8
keeps a task `executing` with no `error` after a UDF dies or times out, and
only logs `msg="encountered error" task=... err=...`, so that line is how the
supervisor learns of a failed task.
"""

from __future__ import annotations

import datetime
import json
import queue
import re
import signal
import subprocess
import sys
import threading

from entrypoint import ingest
from entrypoint.config import Config
from entrypoint.log import log
from entrypoint.settings import Settings
from entrypoint.socket_udfs import socket_path
from kapacitorkit.conf import UdfFunction, render


def udf_functions(config: Config, settings: Settings) -> list[UdfFunction]:
    """One [udf.functions.NAME] per declared UDF, run by UDF_PYTHON from <home>/udfs/ with
    settings.udf_env() (a socket UDF: the socket its server listens on)."""
    functions = []
    for udf in config.udfs.values():
        if udf.socket:  # the entrypoint runs its server (entrypoint/socket_udfs.py)
            if settings.socket_dir is None:
                raise ValueError(f"UDF {udf.name} runs over a socket, but no socket directory")
            path = socket_path(settings.socket_dir, udf.name)
            functions.append(UdfFunction(udf.name, socket=str(path), timeout=udf.timeout))
            continue
        script = settings.home / "udfs" / udf.script
        env = {**settings.udf_env(), **udf.env}
        functions.append(UdfFunction(udf.name, prog=settings.udf_python,
                                     args=("-u", str(script), "--mode", udf.mode, *udf.args),
                                     timeout=udf.timeout, env=env))
    return functions


def write_conf(config: Config, settings: Settings, auth: str = "off",
               name: str = "kapacitor.conf") -> str:
    """Render kapacitor.conf into the writable conf dir; return its path."""
    conf_dir, data_dir = settings.dirs()
    conf_dir.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / name
    path.write_text(render(udf_functions(config, settings), data_dir=str(data_dir),
                           http_bind=settings.http_bind, influxdb_url=settings.influxdb_url,
                           log_level=settings.log_level, hostname=settings.hostname,
                           snapshot_interval=config.snapshot_interval, auth=auth,
                           subscriptions=ingest.subscriptions(config),
                           results_url=settings.results_url))
    return str(path)


LOSS_MARKS = re.compile(r"lvl=error|no space left on device|state not saved at", re.IGNORECASE)
"""Cheap pre-filter of kapacitord's output for entrypoint.monitor.log_problem."""


def exit_status(returncode: int) -> int:
    """A shell-style status: death by signal N becomes 128+N."""
    return 128 - returncode if returncode < 0 else returncode


_TASK_ERROR = re.compile(r'(?:\bts=(?P<ts>\S+) .*?)?'
                         r'msg="(?:encountered error|received error message)"'
                         r'.*?\btask=(?P<task>[^\s"]+)'
                         r'.*?\berr=(?P<err>"(?:\\.|[^"\\])*"|\S+)')


def task_error(line: str) -> tuple[str, str, float | None] | None:
    """(task, error, when: epoch seconds) from a kapacitord log line reporting that a
    task's node failed ("encountered error") or that its UDF sent an ErrorResponse
    ("received error message": the UDF's own words, e.g. which handler hung)."""
    match = _TASK_ERROR.search(line)
    if match is None:
        return None
    err = match["err"]
    if err.startswith('"'):
        try:
            err = json.loads(err)
        except ValueError:
            err = err.strip('"')
    return match["task"], err, _epoch(match["ts"])


def _epoch(stamp: str | None) -> float | None:
    try:
        return datetime.datetime.fromisoformat(stamp).timestamp() if stamp else None
    except ValueError:
        return None


class Kapacitord:
    """kapacitord as a child whose output we pass through and watch for task failures."""

    def __init__(self, settings: Settings, conf_path: str, echo: bool = True) -> None:
        self.cmd = [settings.kapacitord, "-config", conf_path]
        self.echo = echo  # False: read the output (for task errors) without passing it on
        self.proc: subprocess.Popen | None = None
        self.task_errors: queue.SimpleQueue[tuple[str, str, float | None]] = queue.SimpleQueue()
        self.loss_lines: queue.SimpleQueue[str] = queue.SimpleQueue()  # for entrypoint.monitor

    def start(self) -> None:
        log(f"starting {' '.join(self.cmd)}")
        # Own session: a Ctrl-C in a terminal reaches us only, and we stop it in order.
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=self._pass_output, args=(self.proc.stdout,), daemon=True,
                         name="kapacitord-output").start()

    def _pass_output(self, stream) -> None:
        out = sys.stdout.buffer
        for raw in stream:
            if self.echo:
                out.write(raw)
                out.flush()
            text = raw.decode(errors="replace")
            found = task_error(text)
            if found is not None:
                self.task_errors.put(found)
            if LOSS_MARKS.search(text):
                self.loss_lines.put(text)

    def lines_of_loss(self) -> list[str]:
        """Log lines since the last call that may report lost output (LOSS_MARKS)."""
        found = []
        while not self.loss_lines.empty():
            found.append(self.loss_lines.get())
        return found

    def failed_tasks(self) -> list[tuple[str, str, float | None]]:
        """(task, error, when) logged since the last call."""
        found = []
        while not self.task_errors.empty():
            found.append(self.task_errors.get())
        return found

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 15.0) -> int:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL; return the exit status."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log(f"kapacitord did not stop within {grace:g}s: killing it")
                self.proc.kill()
        return exit_status(self.proc.wait())
