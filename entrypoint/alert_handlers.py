"""config.json's alert_handlers: route the tasks' alert topics without the kapacitor CLI.

Each handler is created or replaced at start (and when config.json changes in
DEV_MODE). The ids defined this way are recorded in the data directory, so a
handler later removed from config.json is deleted; handlers defined by other
means (the CLI, the API) are never touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from string import Template
from typing import Any

from entrypoint.config import AlertHandler
from kapacitorkit.api import ApiError, KapacitorApi

RECORD = "entrypoint-alert-handlers.json"
"""In the data directory: the topic/id of every handler this entrypoint defined."""


class HandlerError(ValueError):
    """A handler's options are not acceptable (e.g. a log file outside the data directory)."""


def options(handler: AlertHandler, data_dir: Path) -> dict[str, Any]:
    """The handler's options with $data_dir filled in.

    A log handler's file must be inside the data directory (a relative path is taken
    from there): the entrypoint creates its folder, since Kapacitor opens the file but
    does not make its directory, and must not create folders anywhere else.
    """
    resolved = {key: Template(value).safe_substitute(data_dir=str(data_dir))
                if isinstance(value, str) else value
                for key, value in handler.options.items()}
    if handler.kind == "log" and isinstance(resolved.get("path"), str):
        path = log_path(resolved["path"], data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        resolved["path"] = str(path)
    return resolved


def log_path(path: str, data_dir: Path) -> Path:
    """The log file, resolved (links and '..' included); HandlerError if outside data_dir."""
    root = data_dir.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or target == root:
        raise HandlerError(f"log path {path!r} is outside the data directory {root} "
                           "(use $data_dir/...)")
    return target


def define_all(api: KapacitorApi, handlers: Iterable[AlertHandler],
               data_dir: Path) -> dict[str, str]:
    """Define each handler and delete the ones config.json no longer lists; a status
    line per handler for the log ('defined', 'refused: <Kapacitor's reason>', ...)."""
    statuses: dict[str, str] = {}
    handlers = list(handlers)
    wanted = {h.key for h in handlers}
    recorded = _recorded(data_dir)
    tracked = recorded & wanted  # still ours even if Kapacitor refuses the new version
    for key in sorted(recorded - wanted):
        topic, handler_id = key.split("/", 1)
        try:
            api.delete_topic_handler(topic, handler_id)
            statuses[key] = "deleted (no longer in config.json)"
        except ApiError as exc:
            if exc.status == 404:
                statuses[key] = "gone already"
            else:
                statuses[key] = f"not deleted: {exc}"
                tracked.add(key)  # try again next time
    for handler in handlers:
        name = f"{handler.key} ({handler.kind})"
        try:
            api.define_topic_handler(handler.topic, handler.id, handler.kind,
                                     options(handler, data_dir))
            statuses[name] = "defined"
            tracked.add(handler.key)
        except (ApiError, OSError, HandlerError) as exc:
            statuses[name] = f"refused: {exc}"
    _record(data_dir, tracked)
    return statuses


def _recorded(data_dir: Path) -> set[str]:
    try:
        return set(json.loads((data_dir / RECORD).read_text()))
    except (OSError, ValueError):
        return set()


def _record(data_dir: Path, keys: set[str]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / RECORD).write_text(json.dumps(sorted(keys)))
