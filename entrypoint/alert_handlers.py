"""config.json's alert_handlers: route the tasks' alert topics without the kapacitor CLI.

Each handler is created or replaced at start (and when config.json changes in
DEV_MODE). Handlers defined by other means (the CLI, the API) are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from string import Template
from typing import Any

from entrypoint.config import AlertHandler
from entrypoint.kapacitor_api import ApiError, KapacitorApi


def options(handler: AlertHandler, data_dir: Path) -> dict[str, Any]:
    """The handler's options with $data_dir filled in; a log handler's folder is created,
    since Kapacitor opens the file but does not make its directory."""
    resolved = {key: Template(value).safe_substitute(data_dir=str(data_dir))
                if isinstance(value, str) else value
                for key, value in handler.options.items()}
    if handler.kind == "log" and isinstance(resolved.get("path"), str):
        Path(resolved["path"]).parent.mkdir(parents=True, exist_ok=True)
    return resolved


def define_all(api: KapacitorApi, handlers: Iterable[AlertHandler],
               data_dir: Path) -> dict[str, str]:
    """Define each handler; 'topic/id (kind)' -> 'defined' or 'refused: <Kapacitor's reason>'."""
    statuses = {}
    for handler in handlers:
        name = f"{handler.topic}/{handler.id} ({handler.kind})"
        try:
            api.define_topic_handler(handler.topic, handler.id, handler.kind,
                                     options(handler, data_dir))
            statuses[name] = "defined"
        except (ApiError, OSError) as exc:
            statuses[name] = f"refused: {exc}"
    return statuses
