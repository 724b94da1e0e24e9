"""config.json: load it, check it, and resolve its paths.

Its structure is checked by jsonschema against config/config.schema.json, the one
description of the format; here is only what a schema cannot say: that files exist, that
names are unique, and that each TICKscript calls only the UDFs its task lists.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from entrypoint import eii
from entrypoint import ingest as ingest_path


class ConfigError(ValueError):
    """config.json is unusable; the message names the file, the key path and the problem."""


@dataclass(frozen=True)
class Udf:
    """One declared UDF: a script under udfs/ run in a mode, by Kapacitor (a process UDF) or
    by the entrypoint as a Unix-socket server Kapacitor connects to (`socket`)."""

    name: str
    script: str
    mode: str
    timeout: str
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    socket: bool = False


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
    snapshot_interval: str = "30s"  # Kapacitor's [task] snapshot-interval (see config.schema.json)
    notes: tuple[str, ...] = ()  # warnings to show once, e.g. that the file is in EII's format
    ingest: str = ingest_path.WRITES  # how points reach the stream tasks (entrypoint/ingest.py)


# -- structure: config/config.schema.json, checked with jsonschema -----------------------------

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "config" / "config.schema.json"
_TYPE_NAMES = {"string": "a string", "number": "a number", "integer": "an integer",
               "boolean": "true or false", "array": "an array", "object": "an object",
               "null": "null"}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    names: dict[type, str] = {str: "a string", list: "an array", dict: "an object"}
    return names.get(type(value), "null")


def key_path(parts: Iterable[str | int]) -> str:
    """jsonschema's path as the README writes keys: tasks[2].dbrps[0].rp."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".")


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def _messages(error: jsonschema.ValidationError) -> list[str]:
    """One error in words a config.json author reads, prefixed with the key it is about."""
    where = key_path(error.absolute_path)
    value: Any = error.instance
    expected: Any = error.validator_value
    kind = str(error.validator)
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if kind in ("oneOf", "anyOf"):
        # A var that is an object went wrong inside the object branch: say what, not "none".
        inner = [e for e in error.context or () if e.validator != "type"
                 and not (e.validator == "required" and not isinstance(value, dict))]
        if inner and isinstance(value, dict):
            return [m for e in inner for m in _messages(e)]
        what = schema.get("description", "")
        return [f"{where or '(top level)'}: {_kind(value)} is not allowed here"
                + (f" ({what})" if what else "")]
    if kind == "required":
        missing = [k for k in expected if k not in value]
        return [f"{key_path([*error.absolute_path, k])}: required key missing" for k in missing]
    if kind == "additionalProperties":
        allowed = ", ".join(schema.get("properties", {}))
        extra = [k for k in value if k not in schema.get("properties", {})]
        return [f"{key_path([*error.absolute_path, k])}: unknown key (allowed: {allowed})"
                for k in extra]
    text = {
        "type": lambda: "expected " + " or ".join(
            _TYPE_NAMES[t] for t in ([expected] if isinstance(expected, str) else expected))
            + f", got {_kind(value)}",
        "enum": lambda: f"{json.dumps(value)} is not one of {', '.join(map(str, expected))}",
        "pattern": lambda: f"{json.dumps(value)} does not match {expected}",
        "minItems": lambda: f"needs at least {expected} item(s)",
        "minLength": lambda: "must not be empty",
    }.get(kind, lambda: error.message)()
    return [f"{where or '(top level)'}: {text}"]


def schema_errors(document: Any) -> list[str]:
    """Every problem config.schema.json finds in a parsed config.json, keys named."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(map(str, e.path)))
    return [message for error in errors for message in _messages(error)]


# -- meaning (what the schema cannot say) ----------------------------------------------------

_COMMENT_OR_STRING = re.compile(r"//[^\n]*|'(?:\\.|[^'\\])*'")
_UDF_CALL = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")


def udf_calls(tick: str) -> set[str]:
    """The @names a TICKscript calls, ignoring comments and string literals."""
    return set(_UDF_CALL.findall(_COMMENT_OR_STRING.sub("", tick)))


_DBRP_STATEMENT = re.compile(r'^\s*dbrp\s+"', re.MULTILINE)


def declares_dbrp(tick: str) -> bool:
    """Whether a TICKscript names its database itself (`dbrp "db"."rp"`, EII's scripts do)."""
    return bool(_DBRP_STATEMENT.search(_COMMENT_OR_STRING.sub("", tick)))


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
                  dict(item.get("env", {})), tuple(item.get("args", ())),
                  item.get("socket", False))
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
    tick = tick_path.read_text()
    for name in sorted(udf_calls(tick) - set(item["udfs"])):
        known = "" if name in udfs else ", and config.json declares no such UDF"
        errors.append(f'{where}: {tick_path.name} calls @{name}, which the task does not '
                      f'list in "udfs"{known}')
    dbrps = tuple((d["db"], d["rp"]) for d in item.get("dbrps", ()))
    if bool(dbrps) == declares_dbrp(tick):  # Kapacitor refuses both and neither
        errors.append(f'{where}: name the database once, in "dbrps" or in a dbrp statement of '
                      f"{tick_path.name} ({'both' if dbrps else 'neither'} found)")
    return Task(item["name"], item["tick_script"], tick_path, item["type"], dbrps,
                tuple(item["udfs"]), dict(item.get("vars", {})), item["enabled"])


def parse(text: str, path: Path, home: Path) -> Config:
    """Check a config.json text completely; raise ConfigError listing every problem."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                          f"{exc.msg}") from None
    notes: tuple[str, ...] = ()
    if eii.is_eii(document):
        document, notes = from_eii(document, path, home)
    errors = schema_errors(document)
    if not errors:
        udfs = _build_udfs(document["udfs"], home, errors)
        tasks: dict[str, Task] = {}
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
    config = Config(path, udfs, tasks, handlers,
                    document.get("snapshot_interval", Config.snapshot_interval), notes=notes,
                    ingest=document.get("ingest", ingest_path.WRITES))
    loops = ingest_path.feedback(config)
    if loops:
        raise ConfigError("\n".join(f"{path}: {e}" for e in loops))
    return config


def from_eii(document: dict, path: Path, home: Path) -> tuple[dict, tuple[str, ...]]:
    """An EII config.json as ours (entrypoint/eii.py), and the warning to show once."""
    try:
        ours, notes = eii.to_ours(document, lambda name: resolve_tick(name, path.parent, home),
                                  lambda script: (home / "udfs" / script).is_file())
    except eii.EiiError as exc:
        raise ConfigError("\n".join(f"{path}: {line}" for line in str(exc).splitlines())) from None
    return ours, tuple(notes)


def load(path: Path, home: Path) -> Config:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse(text, path, home)
