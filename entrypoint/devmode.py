"""DEV_MODE: notice edits to config.json, TICKscripts and UDF code, and say what must restart.

Polling mtimes (stdlib only, works on bind mounts where inotify does not).
The plan touches only the affected tasks; kapacitord itself restarts only when
config.json declares a new or changed UDF, because [udf.functions] are read at
start.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from entrypoint.config import Config, ConfigError
from entrypoint.log import log

Snapshot = dict[Path, tuple[int, int]]


def _files(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for folder, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".")]
        for name in names:
            if not name.endswith((".pyc", "~")) and not name.startswith("."):
                yield Path(folder) / name


def scan(roots: Iterable[Path]) -> Snapshot:
    snapshot: Snapshot = {}
    for root in roots:
        for path in _files(root):
            try:
                stat = path.stat()
            except OSError:
                continue
            snapshot[path] = (stat.st_mtime_ns, stat.st_size)
    return snapshot


class Watcher:
    """Files under some roots whose mtime or size changed (or that came or went) since last poll."""

    def __init__(self, roots: Iterable[Path]) -> None:
        self.roots = list(roots)
        self.snapshot = scan(self.roots)

    def changes(self) -> set[Path]:
        current = scan(self.roots)
        changed = {p for p in current.keys() | self.snapshot.keys()
                   if current.get(p) != self.snapshot.get(p)}
        self.snapshot = current
        return changed


def watch_roots(config: Config, home: Path) -> list[Path]:
    ticks = {t.tick_path.parent for t in config.tasks.values()}
    return sorted({config.path, home / "tick_scripts", home / "udfs", *ticks})


@dataclass
class Plan:
    """What to do about a set of changes; `config` is the config to run from now on."""

    config: Config
    restart_kapacitord: str = ""
    define: set[str] = field(default_factory=set)
    restart: set[str] = field(default_factory=set)
    delete: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.restart_kapacitord or self.define or self.restart or self.delete)


def _imports(path: Path, modules: set[str]) -> bool:
    if not modules:
        return False
    names = "|".join(re.escape(m) for m in modules)
    pattern = re.compile(rf"^\s*(?:from|import)\s+(?:{names})\b", re.MULTILINE)
    try:
        return bool(pattern.search(path.read_text(errors="replace")))
    except OSError:
        return False


def touched_scripts(changed: set[Path], udfs_dir: Path, config: Config) -> set[str] | None:
    """Declared UDF scripts a code change affects; None means all (shared package changed).

    A top-level module such as threshold.py counts for every script that imports
    it, directly or through another top-level module.
    """
    declared = {u.script for u in config.udfs.values()}
    touched: set[str] = set()
    for path in changed:
        try:
            rel = path.relative_to(udfs_dir)
        except ValueError:
            continue
        if str(rel) in declared or len(rel.parts) == 1:
            touched.add(str(rel))
        elif path.suffix == ".py":
            return None
    top_level = list(udfs_dir.glob("*.py"))
    grew = True
    while grew:
        modules = {Path(t).stem for t in touched if t.endswith(".py")}
        more = {p.name for p in top_level if p.name not in touched and _imports(p, modules)}
        touched |= more
        grew = bool(more)
    return touched & declared


def missing_scripts(config: Config, home: Path, task: str) -> list[str]:
    """The task's UDF scripts that are not there (deleted, or being replaced)."""
    names = {config.udfs[u].script for u in config.tasks[task].udfs if u in config.udfs}
    return sorted(n for n in names if not (home / "udfs" / n).is_file())


def _udf_tasks(config: Config, scripts: set[str] | None) -> set[str]:
    return {t.name for t in config.tasks.values()
            if any(scripts is None or config.udfs[u].script in scripts for u in t.udfs)}


def _config_plan(old: Config, new: Config) -> Plan:
    changed_udfs = [n for n, u in new.udfs.items() if old.udfs.get(n) != u]
    plan = Plan(new, delete=set(old.tasks) - set(new.tasks))
    if changed_udfs:
        what = ", ".join(f"{'new' if n not in old.udfs else 'changed'} UDF {n}"
                         for n in changed_udfs)
        plan.restart_kapacitord = f"{what} ([udf.functions] are read only at start)"
        plan.define = set(new.tasks)
        return plan
    plan.define = {n for n, t in new.tasks.items()
                   if n not in old.tasks or t != old.tasks[n]}
    return plan


def plan_changes(changed: set[Path], config: Config, home: Path,
                 reload: Callable[[], Config]) -> Plan:
    """Map changed files onto tasks to redefine, restart or delete."""
    plan = Plan(config)
    if config.path in changed:
        try:
            plan = _config_plan(config, reload())
        except ConfigError as exc:
            log(f"dev: config.json changed but is invalid, keeping the running tasks:\n{exc}")
    current = plan.config
    resolved = {p.resolve() for p in changed}
    plan.define |= {t.name for t in current.tasks.values() if t.tick_path.resolve() in resolved}
    scripts = touched_scripts(changed, home / "udfs", current)
    plan.restart |= _udf_tasks(current, scripts) - plan.define
    plan.restart -= plan.delete
    return plan
