"""EII's Kapacitor config.json, read as it is or migrated to this project's format.

EII lists its tasks as `task: [{"task_name", "tick_script", "udfs": [{"type", "name"}]}]`,
top-level or under `config`, beside keys of its own platform. Each UDF there is a Unix-socket
server EII starts from udfs/NAME (Go or Python; here always our Python udfs/NAME.py), each
TICKscript names its database with `dbrp` statements, and Kapacitor tells stream from batch
by the script. So an EII file maps onto ours without guessing: socket UDFs, tasks without
dbrps, the task type read from the script, and each UDF's mode from the tasks that call it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

OUR_KEYS = "udfs, tasks, alert_handlers"
WRAPPER_KEYS = ("config", "interfaces")  # EII's app config: {"config": {...}, "interfaces": {}}
SETTINGS_KEYS = ("task", "influxdb", "cert_type")  # what EII's Kapacitor reads from "config"
NOT_USED = ("influxdb", "cert_type", "interfaces")
TASK_KEYS = ("task_name", "tick_script", "udfs")
UDF_KEYS = ("type", "name")
UDF_TYPES = ("python", "go")
SOCKET_TIMEOUT = "20s"  # EII's [udf.functions.*] timeout
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TASK_TYPE = re.compile(r"(?:^|=)\s*(stream|batch)\s*(?:\||$)", re.MULTILINE)
_COMMENT = re.compile(r"//[^\n]*")


class EiiError(ValueError):
    """The file looks like EII's but cannot be read; each line names the key at fault."""


def is_eii(document: Any) -> bool:
    """EII's layout: a `task` list at the top or under `config`, and none of our `tasks`."""
    if not isinstance(document, dict) or "tasks" in document:
        return False
    inner = document.get("config")
    return "task" in document or (isinstance(inner, dict) and "task" in inner)


def _settings(document: dict, errors: list[str]) -> tuple[dict, str]:
    """EII's settings object and the key path prefix its keys are reported under."""
    if "config" in document:
        unknown = [k for k in document if k not in WRAPPER_KEYS]
        errors.extend(f"{k}: unknown key (EII's file has {', '.join(WRAPPER_KEYS)}; "
                      f"ours {OUR_KEYS})" for k in unknown)
        return document["config"], "config."
    return document, ""


def task_type(tick: str) -> str | None:
    """stream or batch, as Kapacitor reads it from the script (its first chain's source)."""
    found = _TASK_TYPE.search(_COMMENT.sub("", tick))
    return found.group(1) if found else None


def _tick_name(name: str) -> str:
    return name if name.endswith(".tick") else f"{name}.tick"  # older EII files omit it


def to_ours(document: dict, locate: Callable[[str], Path | None],
            script_exists: Callable[[str], bool]) -> tuple[dict, list[str]]:
    """Our config.json for an EII one, and the notes to warn with; EiiError if unusable.

    `locate` finds a TICKscript by name (as for our tasks), `script_exists` a udfs/ script.
    """
    errors: list[str] = []
    settings, prefix = _settings(document, errors)
    if not isinstance(settings, dict):
        raise EiiError(f"{prefix.rstrip('.')}: expected an object")
    errors.extend(f"{prefix}{k}: unknown key (EII's Kapacitor reads {', '.join(SETTINGS_KEYS)};"
                  f" ours {OUR_KEYS})" for k in settings if k not in SETTINGS_KEYS)
    tasks: list[dict] = []
    modes: dict[str, str] = {}
    kinds: set[str] = set()
    items = settings.get("task")
    if not isinstance(items, list):
        errors.append(f"{prefix}task: expected an array of tasks")
        items = []
    for i, item in enumerate(items):
        task = _task(item, f"{prefix}task[{i}]", locate, script_exists, errors, modes, kinds)
        if task is not None:
            tasks.append(task)
    if errors:
        raise EiiError("\n".join(errors))
    udfs = [{"name": n, "script": f"{n}.py", "mode": m, "timeout": SOCKET_TIMEOUT, "socket": True}
            for n, m in modes.items()]
    return {"udfs": udfs, "tasks": tasks}, _notes(document, settings, kinds)


def _an_object_of(item: Any, where: str, what: str, keys: Sequence[str],
                  errors: list[str]) -> bool:
    """Whether `item` is an object; each key EII's `what` does not have is an error."""
    if not isinstance(item, dict):
        errors.append(f"{where}: expected an object with {', '.join(keys)}")
        return False
    errors.extend(f"{where}.{k}: unknown key (EII's {what} has {', '.join(keys)})"
                  for k in item if k not in keys)
    return True


def _task(item: Any, where: str, locate: Callable[[str], Path | None],
          script_exists: Callable[[str], bool], errors: list[str], modes: dict[str, str],
          kinds: set[str]) -> dict | None:
    if not _an_object_of(item, where, "task", TASK_KEYS, errors):
        return None
    errors.extend(f"{where}.{k}: required key missing" for k in TASK_KEYS[:2] if k not in item)
    if not all(isinstance(item.get(k), str) for k in TASK_KEYS[:2]):
        return None
    tick_name = _tick_name(item["tick_script"])
    path = locate(tick_name)
    if path is None:
        errors.append(f'{where}.tick_script: {tick_name} not found (next to config.json or in '
                      "tick_scripts/)")
        return None
    kind = task_type(path.read_text())
    if kind is None:
        errors.append(f"{where}.tick_script: {tick_name} starts no stream or batch")
        return None
    names = []
    for j, udf in enumerate(item.get("udfs") or []):
        name = _udf(udf, f"{where}.udfs[{j}]", script_exists, errors, kinds)
        if name is None:
            continue
        if modes.setdefault(name, kind) != kind:
            errors.append(f'{where}.udfs[{j}]: UDF "{name}" is called by stream and batch '
                          "tasks; declare it twice in our format (two names, two modes)")
        names.append(name)
    return {"name": item["task_name"], "tick_script": tick_name, "type": kind, "udfs": names,
            "enabled": True}


def _udf(udf: Any, where: str, script_exists: Callable[[str], bool], errors: list[str],
         kinds: set[str]) -> str | None:
    if not _an_object_of(udf, where, "UDF", UDF_KEYS, errors):
        return None
    name, kind = udf.get("name"), udf.get("type")
    if not isinstance(name, str) or not _NAME.match(name):
        errors.append(f"{where}.name: expected a UDF name (letters, digits, _)")
        return None
    if kind not in UDF_TYPES:
        errors.append(f"{where}.type: {json.dumps(kind)} is not one of {', '.join(UDF_TYPES)}")
        return None
    if not script_exists(f"{name}.py"):
        errors.append(f'{where}: UDF "{name}": script udfs/{name}.py not found')
        return None
    kinds.add(kind)
    return name


def _notes(document: dict, settings: dict, kinds: set[str]) -> list[str]:
    unused = [k for k in NOT_USED if k in settings or k in document]
    note = ("in EII's format (task[].task_name, tick_script, udfs[].type, name), read as ours"
            f" ({OUR_KEYS}: tasks[] with name, tick_script, type, udfs, enabled;"
            " udfs[] with name, script, mode, timeout, socket: true). `python -m entrypoint "
            "migrate FILE` prints it in our format.")
    if "go" in kinds:
        note += " UDFs of type go run as our Python udfs/NAME.py."
    if unused:
        note += f" Not used here: {', '.join(unused)}."
    return [note]
