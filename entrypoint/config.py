"""config.json: load it, check it, and resolve its paths.

The image has no jsonschema at run time, so the checks are plain Python. They
mirror config/config.schema.json (kept for editors; a test keeps the two in
agreement) and add what a schema cannot see: that files exist, that names are
unique, and that each TICKscript calls only the UDFs its task lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TASK_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
VAR_TYPES = ("bool", "int", "float", "string", "regex", "duration", "lambda", "list", "star")


class ConfigError(ValueError):
    """config.json is unusable; the message names the file, the key path and the problem."""


@dataclass(frozen=True)
class Udf:
    """One declared process UDF: a script under udfs/ run in a mode."""

    name: str
    script: str
    mode: str
    timeout: str
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Task:
    """One Kapacitor task; tick_path is the resolved TICKscript file."""

    name: str
    tick_script: str
    tick_path: Path
    type: str
    dbrps: tuple[tuple[str, str], ...]
    udfs: tuple[str, ...]
    vars: dict[str, Any]
    enabled: bool


@dataclass(frozen=True)
class AlertHandler:
    """A Kapacitor topic handler: where the alerts a topic receives are sent."""

    id: str
    topic: str
    kind: str
    options: dict[str, Any]

    @property
    def key(self) -> str:
        """topic/id: a handler id is unique only within its topic."""
        return f"{self.topic}/{self.id}"


@dataclass(frozen=True)
class Config:
    path: Path
    udfs: dict[str, Udf]
    tasks: dict[str, Task]
    alert_handlers: tuple[AlertHandler, ...] = ()


# -- structure (what the schema says) -------------------------------------------------------

Check = Callable[[Any, str, list[str]], None]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if _is_int(value) or isinstance(value, float):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object"}.get(type(value), "null")


def _string(pattern: re.Pattern | None = None, what: str = "", empty: bool = False) -> Check:
    def check(value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {_kind(value)}")
        elif not value and not empty:
            errors.append(f"{path}: must not be empty")
        elif pattern is not None and not pattern.match(value):
            errors.append(f"{path}: {value!r} is not {what}")
    return check


def _enum(*choices: str) -> Check:
    def check(value: Any, path: str, errors: list[str]) -> None:
        if value not in choices:
            errors.append(f"{path}: {json.dumps(value)} is not one of {', '.join(choices)}")
    return check


def _boolean(value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, bool):
        errors.append(f"{path}: expected true or false, got {_kind(value)}")


def _array(item: Check, min_items: int = 0) -> Check:
    def check(value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, list):
            errors.append(f"{path}: expected an array, got {_kind(value)}")
        elif len(value) < min_items:
            errors.append(f"{path}: needs at least {min_items} item(s)")
        else:
            for i, element in enumerate(value):
                item(element, f"{path}[{i}]", errors)
    return check


def _map(item: Check) -> Check:
    def check(value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {_kind(value)}")
            return
        for key, element in value.items():
            item(element, f"{path}.{key}", errors)
    return check


def _object(required: dict[str, Check], optional: dict[str, Check] | None = None) -> Check:
    optional = optional or {}

    def check(value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {_kind(value)}")
            return
        for key in required:
            if key not in value:
                errors.append(f"{path}.{key}: required key missing".lstrip("."))
        for key, element in value.items():
            sub = f"{path}.{key}".lstrip(".")
            checker = required.get(key) or optional.get(key)
            if checker is None:
                errors.append(f"{sub}: unknown key (allowed: {', '.join([*required, *optional])})")
            else:
                checker(element, sub, errors)
    return check


def _var(value: Any, path: str, errors: list[str]) -> None:
    if isinstance(value, bool | int | float | str):
        return
    if isinstance(value, dict):
        _object({"type": _enum(*VAR_TYPES), "value": lambda *_: None})(value, path, errors)
        return
    errors.append(f"{path}: expected a boolean, number, string or {{\"type\", \"value\"}} object")


_UDF = _object(
    {"name": _string(NAME_RE, "a TICKscript identifier"), "script": _string(),
     "mode": _enum("stream", "batch"),
     "timeout": _string(DURATION_RE, "a duration such as \"10s\"")},
    {"env": _map(_string(empty=True)), "args": _array(_string(empty=True))},
)
_DBRP = _object({"db": _string(), "rp": _string()})
_TASK = _object(
    {"name": _string(TASK_ID_RE, "a task id (letters, digits, _ . -)"),
     "tick_script": _string(), "type": _enum("stream", "batch"),
     "dbrps": _array(_DBRP, min_items=1), "udfs": _array(_string()), "enabled": _boolean},
    {"vars": _map(_var)},
)
_HANDLER = _object(
    {"id": _string(TASK_ID_RE, "a handler id (letters, digits, _ . -)"),
     "topic": _string(TASK_ID_RE, "a topic name (letters, digits, _ . -)"),
     "kind": _string(NAME_RE, "a handler kind such as \"log\" or \"slack\""),
     "options": _map(lambda *_: None)},
)
_ROOT = _object({"udfs": _array(_UDF), "tasks": _array(_TASK)},
                {"$schema": _string(), "alert_handlers": _array(_HANDLER)})


def structure_errors(document: Any) -> list[str]:
    """Every schema-level problem of a parsed config.json, as `key.path: problem` strings."""
    errors: list[str] = []
    _ROOT(document, "", errors)
    return [e if not e.startswith(":") else f"(top level){e}" for e in errors]


# -- meaning (what the schema cannot say) ----------------------------------------------------

_COMMENT_OR_STRING = re.compile(r"//[^\n]*|'(?:\\.|[^'\\])*'")
_UDF_CALL = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")


def udf_calls(tick: str) -> set[str]:
    """The @names a TICKscript calls, ignoring comments and string literals."""
    return set(_UDF_CALL.findall(_COMMENT_OR_STRING.sub("", tick)))


def resolve_tick(tick_script: str, config_dir: Path, home: Path) -> Path | None:
    """A task's TICKscript: next to config.json first (samples), then <home>/tick_scripts/."""
    for candidate in (config_dir / tick_script, home / "tick_scripts" / tick_script):
        if candidate.is_file():
            return candidate
    return None


def _duplicates(names: list[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


def _build_udfs(raw: list[dict], home: Path, errors: list[str]) -> dict[str, Udf]:
    udfs: dict[str, Udf] = {}
    for i, item in enumerate(raw):
        udf = Udf(item["name"], item["script"], item["mode"], item["timeout"],
                  dict(item.get("env", {})), tuple(item.get("args", ())))
        if not (home / "udfs" / udf.script).is_file():
            errors.append(f'udfs[{i}] "{udf.name}": script udfs/{udf.script} not found')
        udfs.setdefault(udf.name, udf)
    errors.extend(f'udfs: duplicate name "{n}"' for n in _duplicates([u["name"] for u in raw]))
    return udfs


def _build_task(i: int, item: dict, udfs: dict[str, Udf], config_dir: Path, home: Path,
                errors: list[str]) -> Task | None:
    where = f'tasks[{i}] "{item["name"]}"'
    declared = ", ".join(udfs) or "none"
    errors.extend(f'{where}: unknown UDF "{u}" (declared: {declared})'
                  for u in item["udfs"] if u not in udfs)
    tick_path = resolve_tick(item["tick_script"], config_dir, home)
    if tick_path is None:
        errors.append(f"{where}: TICKscript tick_scripts/{item['tick_script']} not found "
                      f"(nor {config_dir / item['tick_script']})")
        return None
    for name in sorted(udf_calls(tick_path.read_text()) - set(item["udfs"])):
        known = "" if name in udfs else ", and config.json declares no such UDF"
        errors.append(f'{where}: {tick_path.name} calls @{name}, which the task does not '
                      f'list in "udfs"{known}')
    return Task(item["name"], item["tick_script"], tick_path, item["type"],
                tuple((d["db"], d["rp"]) for d in item["dbrps"]), tuple(item["udfs"]),
                dict(item.get("vars", {})), item["enabled"])


def parse(text: str, path: Path, home: Path) -> Config:
    """Check a config.json text completely; raise ConfigError listing every problem."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                          f"{exc.msg}") from None
    errors = structure_errors(document)
    if not errors:
        udfs = _build_udfs(document["udfs"], home, errors)
        tasks = {}
        for i, item in enumerate(document["tasks"]):
            task = _build_task(i, item, udfs, path.parent, home, errors)
            if task is not None:
                tasks.setdefault(task.name, task)
        names = [t["name"] for t in document["tasks"]]
        errors.extend(f'tasks: duplicate name "{n}"' for n in _duplicates(names))
        handlers = tuple(AlertHandler(h["id"], h["topic"], h["kind"], dict(h["options"]))
                         for h in document.get("alert_handlers", []))
        keys = [h.key for h in handlers]
        errors.extend(f'alert_handlers: duplicate id "{k}"' for k in _duplicates(keys))
    if errors:
        raise ConfigError("\n".join(f"{path}: {e}" for e in errors))
    return Config(path, udfs, tasks, handlers)


def load(path: Path, home: Path) -> Config:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse(text, path, home)
