"""Turning config.json tasks into Kapacitor tasks: define, enable, and read back their state."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from entrypoint import shard
from entrypoint.config import Task
from kapacitorkit.api import ApiError, KapacitorApi


def kapacitor_var(value: Any) -> dict[str, Any]:
    """A config.json var as Kapacitor wants it; typed {"type", "value"} objects pass through."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, int):
        return {"type": "int", "value": value}
    if isinstance(value, float):
        return {"type": "float", "value": value}
    return {"type": "string", "value": value}


class ScriptUnreadable(Exception):
    """The task's TICKscript cannot be read (deleted or being replaced in DEV_MODE)."""


def read_script(task: Task) -> str:
    try:
        return task.tick_path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScriptUnreadable(f"cannot read {task.tick_path}: {reason}") from exc


def definition(task: Task) -> dict[str, Any]:
    """What Kapacitor is asked to hold for the task: script, dbrps, type and typed vars."""
    script = read_script(task)
    task_vars = {k: kapacitor_var(v) for k, v in task.vars.items()}
    task_vars.update(shard.task_vars(script))  # KAPACITOR_SHARD: entrypoint/shard.py
    return {"script": script, "dbrps": [{"db": db, "rp": rp} for db, rp in task.dbrps],
            "type": task.type, "vars": task_vars}


def define(api: KapacitorApi, task: Task) -> None:
    """Create or replace the task, disabled: enabling is a separate step we can report on.

    An unreadable TICKscript raises ScriptUnreadable before Kapacitor is asked, so the
    definition Kapacitor has stays as it was.
    """
    want = definition(task)
    api.define_task(task.name, want["script"], want["dbrps"], task_type=want["type"],
                    vars=want["vars"], enabled=False)


def running_unchanged(api: KapacitorApi, task: Task) -> bool:
    """Whether Kapacitor already runs exactly this definition (enabled and executing).

    After a restart on the same volume, kapacitord starts its stored enabled tasks before its
    HTTP API listens. Redefining them (disable, then enable) would drop every point written
    in between: a shard router's buffered points arrive at that very moment (docs/scaling.md).
    """
    try:
        have = api.task(task.name)
    except ApiError:
        return False
    want = definition(task)

    def typed(vars_: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
        return {k: (v.get("type"), v.get("value")) for k, v in vars_.items()}

    def dbrps(items: Iterable[Mapping[str, str]]) -> list[tuple[str, str]]:
        return sorted((d.get("db", ""), d.get("rp", "")) for d in items)

    return (have.get("status") == "enabled" and bool(have.get("executing"))
            and have.get("script") == want["script"]
            and have.get("type") == want["type"]
            and typed(have.get("vars") or {}) == typed(want["vars"])
            and dbrps(have.get("dbrps") or []) == dbrps(want["dbrps"]))


def restart(api: KapacitorApi, name: str) -> str:
    """Disable then enable (the only way Kapacitor restarts a task); '' or the error text."""
    try:
        api.set_status(name, False)
        api.set_status(name, True)
    except ApiError as exc:
        return str(exc)
    return ""


def status_text(info: Mapping[str, Any]) -> str:
    """One word, or the error: what the status line and the supervisor go by."""
    if info.get("error"):
        return f"error: {str(info['error']).strip()}"
    if info.get("status") != "enabled":
        return "disabled"
    return "executing" if info.get("executing") else "starting"


def wait_settled(api: KapacitorApi, names: Iterable[str], timeout: float) -> dict[str, str]:
    """Poll all tasks together until each executes, fails or is disabled (or time runs out)."""
    pending = list(names)
    result: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while pending:
        for name in list(pending):
            try:
                text = status_text(api.task(name))
            except ApiError as exc:
                text = f"error: {exc}"
            if text != "starting" or time.monotonic() > deadline:
                result[name] = text
                pending.remove(name)
        if pending:
            time.sleep(0.1)
    return result


REFUSED = "refused: "
"""Status prefix of a task Kapacitor would not define (e.g. a broken TICKscript)."""


def start(api: KapacitorApi, tasks: Iterable[Task], timeout: float = 30.0) -> dict[str, str]:
    """Define every task, enable the enabled ones, and return each one's settled status."""
    tasks = list(tasks)
    failed: dict[str, str] = {}
    for task in tasks:
        try:
            if task.enabled and running_unchanged(api, task):
                continue
            define(api, task)
        except (ApiError, ScriptUnreadable) as exc:
            failed[task.name] = f"{REFUSED}{exc}"
            continue
        try:
            if task.enabled:
                api.set_status(task.name, True)
        except ApiError as exc:
            failed[task.name] = f"error: {exc}"
    settled = wait_settled(api, [t.name for t in tasks if t.name not in failed], timeout)
    return {t.name: failed.get(t.name) or settled[t.name] for t in tasks}


def still_enabled(api: KapacitorApi, name: str) -> bool:
    """Whether Kapacitor holds an enabled definition of the task: after a refused change the
    previous definition keeps running and must stay supervised."""
    try:
        return api.task(name).get("status") == "enabled"
    except (ApiError, OSError):
        return False


def state_dir(data_dir: Path, name: str) -> Path:
    """Where the task's UDFs keep their state (udfkit.statefile.path_for's folder)."""
    return data_dir / "udf-state" / (quote(name, safe="-_") or "_").replace(".", "%2E")


def forget_state(data_dir: Path, name: str) -> None:
    """A deleted task's saved UDF state goes with it, as Kapacitor deletes its snapshot:
    a new task of the same name must not start from it."""
    shutil.rmtree(state_dir(data_dir, name), ignore_errors=True)
