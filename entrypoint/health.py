"""`python -m entrypoint.health`: the image's HEALTHCHECK.

Healthy means kapacitord answers on the address the entrypoint gave it (KAPACITOR_HTTP_BIND),
every enabled task of config.json exists and is executing without an error, and the
entrypoint's monitor (entrypoint/monitor.py) reports no output being lost: results that
could not be written, failed alert handlers or snapshots, a (nearly) full data volume, an
unreachable InfluxDB. A ping alone would call a container healthy while none of its tasks
runs, and Kapacitor keeps a task executing while it drops everything it writes.
"""

from __future__ import annotations

import sys

from entrypoint import config as config_json
from entrypoint.monitor import read_status, status_path
from entrypoint.settings import Settings
from kapacitorkit.api import ApiError, KapacitorApi


def problems(api: KapacitorApi, expected: list[str]) -> list[str]:
    """What is wrong, one line each; [] when healthy."""
    try:
        tasks = {t["id"]: t for t in api.tasks("status", "executing", "error")}
    except (ApiError, OSError, ValueError) as exc:
        return [f"kapacitord does not answer at {api.base}: {exc}"]
    found = []
    for name in expected:
        task = tasks.get(name)
        if task is None:
            found.append(f"task {name}: not defined")
        elif task.get("error"):
            found.append(f"task {name}: {task['error']}")
        elif not task.get("executing"):
            found.append(f"task {name}: not executing ({task.get('status')})")
    return found


def main() -> int:
    settings = Settings.from_env()
    try:
        config = config_json.load(settings.config_json, settings.home)
    except config_json.ConfigError as exc:
        print(f"unhealthy: {exc}")
        return 1
    expected = [name for name, task in config.tasks.items() if task.enabled]
    found = problems(KapacitorApi(settings.kapacitor_url, timeout=5.0), expected)
    found += read_status(status_path(settings.http_bind))
    for line in found:
        print(f"unhealthy: {line}")
    if not found:
        print(f"healthy: {len(expected)} task(s) executing")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
