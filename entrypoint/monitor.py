"""What the tasks lose, seen from outside: failed result writes, failed alert handlers,
failed snapshots, a full data volume, an unreachable InfluxDB.

Kapacitor keeps a task `executing` through all of these and only logs them, so the
entrypoint watches kapacitord's log lines and the task statistics (influxDBOut's
`write_errors` and `points_written`), checks the disk and InfluxDB, and keeps one
line per problem with the time it began. The lines go to a status file that
`python -m entrypoint.health` reads (on a tmpfs by default: a full data volume
must not silence its own report), and into the entrypoint's log as a summary at
most once a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from entrypoint.log import log
from kapacitorkit.api import ApiError, KapacitorApi

HOLD = 60.0
"""Seconds a problem with no sign of recovery stays reported after its last occurrence."""
SUMMARY_EVERY = 60.0
DISK_FRACTION = 0.05
DISK_CAP = 512 << 20
"""Nearly full: less free than 5 % of the volume, or than 512 MiB on a large one."""
STALE_AFTER = 60.0
"""The health check distrusts a status file not rewritten for this long."""
HEALTH_FILE_ENV = "ENTRYPOINT_HEALTH_FILE"
RESULTS_URL_ENV = "INFLUXDB_RESULTS_URL"
BUFFER_LIMIT_ENV = "RESULTS_BUFFER_LIMIT"
"""The results buffer's size (Telegraf's metric_buffer_limit), when there is one."""


def status_path(http_bind: str, env: Mapping[str, str] = os.environ) -> Path:
    """Where the entrypoint writes its status and the health check reads it."""
    if env.get(HEALTH_FILE_ENV):
        return Path(env[HEALTH_FILE_ENV])
    port = http_bind.rpartition(":")[2] or "9092"
    return Path(tempfile.gettempdir()) / f"kapacitor-ml-udfs-{port}.health.json"


@dataclass
class Problem:
    what: str
    since: float  # epoch seconds
    last: float
    count: int = 1

    def line(self) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since))
        times = f", {self.count} times" if self.count > 1 else ""
        return f"{self.what} (since {stamp}{times})"


_FIELD = re.compile(r'([A-Za-z_][\w.-]*)=("(?:\\.|[^"\\])*"|\S*)')


def logfmt(line: str) -> dict[str, str]:
    """kapacitord's key=value log line as a dict (quoted values unquoted)."""
    fields = {}
    for key, raw in _FIELD.findall(line):
        if raw.startswith('"'):
            try:
                raw = json.loads(raw)
            except ValueError:
                raw = raw.strip('"')
        fields[key] = raw
    return fields


def log_problem(line: str) -> tuple[str, str] | None:
    """(key, what) for a kapacitord log line that reports lost output, else None."""
    if "lvl=error" not in line and "state not saved at" not in line:
        return ("enospc", f"data volume full: {_short(line)}") \
            if "no space left on device" in line.lower() else None
    fields = logfmt(line)
    msg, task, err = fields.get("msg", ""), fields.get("task", "?"), fields.get("err", "")
    if msg == "failed to write points to InfluxDB":
        return f"write:{task}", err  # the reason; the statistics count the loss
    if msg in ("failed to snapshot task", "failed to save task snapshot"):
        return f"snapshot:{task}", f"task {task}: snapshot failed: {err}"
    if fields.get("service") == "alert" and "handler" in fields:
        handler = fields["handler"]
        return (f"alert:{handler}", f"alert handler {handler} (topic {fields.get('topic', '?')})"
                                    f" failed: {msg}{': ' + err if err else ''}")
    if "state not saved at" in line:
        return f"state:{task}", f"task {task}: UDF state not saved: {_short(line)}"
    if "no space left on device" in line.lower():
        return "enospc", f"data volume full: {_short(line)}"
    return None


def _short(line: str) -> str:
    fields = logfmt(line)
    text = fields.get("err") or fields.get("text") or fields.get("msg") or line
    return " ".join(text.split())[:300]


def disk_problem(path: Path) -> str:
    """'' or why the volume holding `path` is (nearly) full."""
    try:
        st = os.statvfs(path)
    except OSError:
        return ""
    total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    if total == 0 or free >= min(DISK_FRACTION * total, DISK_CAP):
        return ""
    return (f"data volume {path} nearly full: {free / 2**20:.1f} MiB free of "
            f"{total / 2**20:.0f} MiB")


def influxdb_problem(url: str, timeout: float = 2.0) -> str:
    """'' or why InfluxDB does not answer its ping."""
    try:
        urllib.request.urlopen(f"{url.rstrip('/')}/ping", timeout=timeout).close()
    except OSError as exc:
        return f"InfluxDB at {url} unreachable: {getattr(exc, 'reason', exc)}"
    return ""


_INFLUXDB_OUT = re.compile(r"\|influxDBOut\(\)((?:\s*(?://[^\n]*\n\s*)*\.\w+\([^)]*\))*)")
_PROPERTY = r"\.{}\(\s*'([^']*)'\s*\)"


def result_targets(script: str) -> set[tuple[str, str]]:
    """(database, retention policy or '') of each influxDBOut node a TICKscript names with
    literal strings (one given by a var is not known here)."""
    targets = set()
    for match in _INFLUXDB_OUT.finditer(script):
        chain = match.group(1)
        db = re.search(_PROPERTY.format("database"), chain)
        rp = re.search(_PROPERTY.format("retentionPolicy"), chain)
        if db:
            targets.add((db.group(1), rp.group(1) if rp else ""))
    return targets


def _influxql(url: str, query: str, timeout: float = 5.0) -> set[str]:
    """The first column of a SHOW query's rows."""
    address = f"{url.rstrip('/')}/query?{urllib.parse.urlencode({'q': query})}"
    with urllib.request.urlopen(address, timeout=timeout) as answer:
        result = json.load(answer)["results"][0]
    if "error" in result:
        raise ValueError(result["error"])
    return {str(row[0]) for series in result.get("series", [])
            for row in series.get("values") or []}


def missing_targets(url: str, targets: Mapping[str, set[tuple[str, str]]],
                    buffered: bool = False) -> dict[str, str]:
    """{task: why} for tasks writing to a database or retention policy InfluxDB lacks: it
    refuses every such write. `buffered`: a results buffer creates a database before its
    first write to it, so only a missing retention policy loses results."""
    databases = _influxql(url, "SHOW DATABASES")
    policies: dict[str, set[str]] = {}
    found = {}
    for task, wanted in sorted(targets.items()):
        for db, rp in sorted(wanted):
            if db not in databases and not buffered:
                found[task] = f"task {task}: writes its results to database {db!r}, which " \
                              f"InfluxDB at {url} does not have: they are refused until it exists"
            elif rp and db in databases:
                if db not in policies:
                    policies[db] = _influxql(url, f'SHOW RETENTION POLICIES ON "{db}"')
                if rp not in policies[db]:
                    found[task] = f"task {task}: writes its results to {db}.{rp}, a retention " \
                                  f"policy InfluxDB at {url} does not have: they are refused"
    return found


class Monitor:
    """Problems by key; check() refreshes them and publishes the status file and summary."""

    def __init__(self, api: KapacitorApi, data_dir: Path, influxdb_url: str, path: Path,
                 clock: Callable[[], float] = time.time, buffer_limit: int | None = None) -> None:
        self.api, self.data_dir, self.influxdb_url = api, data_dir, influxdb_url
        self.path, self.clock = path, clock
        self.buffer_limit = (int(os.environ.get(BUFFER_LIMIT_ENV) or 0) if buffer_limit is None
                             else buffer_limit)
        self._written = 0  # points influxDBOut has written, all tasks
        self._written_at_outage: int | None = None
        self.problems: dict[str, Problem] = {}
        self._writes: dict[str, tuple[int, int]] = {}  # task: (write_errors, points_written)
        self._write_reason: dict[str, str] = {}  # task: kapacitord's last write error
        self._targets: dict[str, set[tuple[str, str]]] = {}  # task: influxDBOut's (db, rp)
        self._summary_at = float("-inf")
        self._summarised: list[str] = []
        self._file_error = ""

    def note(self, key: str, what: str, count: int = 1) -> None:
        now = self.clock()
        problem = self.problems.get(key)
        if problem is None:
            self.problems[key] = Problem(what, now, now, count)
        else:
            problem.what, problem.last, problem.count = what, now, problem.count + count

    def clear(self, key: str) -> None:
        self.problems.pop(key, None)

    def lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            found = log_problem(line)
            if found is None:
                continue
            key, what = found
            if key.startswith("write:"):
                self._write_reason[key[6:]] = what
            else:
                self.note(key, what)

    def check(self, tasks: Iterable[str]) -> None:
        self._task_writes(set(tasks))
        self._condition("disk", disk_problem(self.data_dir))
        if self.influxdb_url:
            self._condition("influxdb", influxdb_problem(self.influxdb_url))
            self._buffer_overflow()
            self._missing_targets()
        now = self.clock()
        for key in [k for k, p in self.problems.items() if now - p.last > HOLD]:
            del self.problems[key]
        self._publish(now)

    def _condition(self, key: str, what: str) -> None:
        if what:
            self.note(key, what, count=0)
        else:
            self.clear(key)

    def _missing_targets(self) -> None:
        if "influxdb" in self.problems:
            return
        try:
            missing = missing_targets(self.influxdb_url, self._targets,
                                      buffered=bool(os.environ.get(RESULTS_URL_ENV)))
        except (OSError, ValueError, KeyError):
            return
        for key in [k for k in self.problems if k.startswith("target:")]:
            if key[7:] not in missing:
                self.clear(key)
        for task, why in missing.items():
            self.note(f"target:{task}", why, count=0)

    def _buffer_overflow(self) -> None:
        """While InfluxDB is away every result waits in the buffer: more of them than it
        holds means the oldest are being dropped."""
        if "influxdb" not in self.problems:
            self._written_at_outage = None
            return
        if self._written_at_outage is None:
            self._written_at_outage = self._written
        waiting = self._written - self._written_at_outage
        if self.buffer_limit and waiting > self.buffer_limit:
            self.note("buffer", f"results buffer overflowing: {waiting} results written since "
                      f"InfluxDB became unreachable, it holds {self.buffer_limit} "
                      f"({BUFFER_LIMIT_ENV}): about {waiting - self.buffer_limit} of the "
                      "oldest dropped", count=0)

    def _task_writes(self, tasks: set[str]) -> None:
        """influxDBOut's counters: new write errors open a problem, points written again
        without new errors close it."""
        try:
            listed = self.api.tasks("stats", "script")
        except (ApiError, OSError, ValueError):
            return
        total = 0
        self._targets = {}
        for task in listed:
            name = task.get("id", "")
            if name not in tasks:
                continue
            self._targets[name] = result_targets(str(task.get("script", "")))
            errors = written = 0
            for node, stats in (task.get("stats") or {}).get("node-stats", {}).items():
                if node.startswith("influxdb_out"):
                    errors += int(stats.get("write_errors", 0))
                    written += int(stats.get("points_written", 0))
            total += written
            before = self._writes.get(name, (errors, written))
            self._writes[name] = (errors, written)
            new_errors = errors - before[0]
            if new_errors > 0:
                reason = self._write_reason.get(name, "see kapacitord's log")
                self.note(f"writes:{name}", f"task {name}: results not written to InfluxDB "
                          f"(influxDBOut write_errors): {reason}", new_errors)
            elif written > before[1]:
                self.clear(f"writes:{name}")
        self._written = total

    def _publish(self, now: float) -> None:
        lines = [p.line() for p in sorted(self.problems.values(), key=lambda p: p.since)]
        status = {"updated": now, "problems": [asdict(p) | {"line": p.line()}
                                               for p in self.problems.values()]}
        self._write_status(status)
        if lines == self._summarised or now - self._summary_at < SUMMARY_EVERY:
            return
        if lines:
            log(f"health: {len(lines)} problem(s): " + "; ".join(lines))
        elif self._summarised:
            log("health: all clear")
        self._summarised, self._summary_at = lines, now

    def _write_status(self, status: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(status))
            os.replace(tmp, self.path)
            self._file_error = ""
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            if not self._file_error:
                log(f"health: cannot write {self.path}: {exc.strerror or exc}")
            self._file_error = str(exc)


def read_status(path: Path, now: float | None = None) -> list[str]:
    """The problems the entrypoint last reported, one line each; a status file that is
    stale is a problem of its own. A missing file reports nothing (not started yet)."""
    try:
        status = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        return [f"entrypoint status {path} unreadable: {exc}"]
    age = (time.time() if now is None else now) - float(status.get("updated", 0))
    found = [str(p.get("line", p.get("what"))) for p in status.get("problems", [])]
    if age > STALE_AFTER:
        found.append(f"the entrypoint has not updated {path} for {age:.0f} s")
    return found
