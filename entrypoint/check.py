"""`python -m entrypoint check`: is this config.json, with its TICKscripts, ready to run?

Side-effect free: the schema and file checks of entrypoint.config, then (when a kapacitord
is found) every task defined, disabled, in a throwaway kapacitord on a free loopback port
with a temporary data directory, so Kapacitor itself compiles each TICKscript and checks
each UDF option against the UDF's Info answer.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from entrypoint import config as config_json
from entrypoint import tasks
from entrypoint.kapacitord import Kapacitord, write_conf
from entrypoint.settings import Settings
from entrypoint.socket_udfs import SocketUdfError, SocketUdfs
from kapacitorkit import binaries
from kapacitorkit.api import ApiError, KapacitorApi
from kapacitorkit.ports import free_port

READY_TIMEOUT = 60.0


def refusals(config: config_json.Config, settings: Settings, kapacitord: str) -> dict[str, str]:
    """Kapacitor's own error for each task it will not define (empty: all accepted)."""
    sockets = SocketUdfs(settings.home, settings.udf_python,  # kapacitord asks them for Info
                         env=settings.udf_env())
    with tempfile.TemporaryDirectory(prefix="entrypoint-check-") as tmp:
        port = free_port()
        scratch = dataclasses.replace(
            settings, conf_dir=Path(tmp), data_dir=Path(tmp) / "data", kapacitord=kapacitord,
            http_bind=f"127.0.0.1:{port}", kapacitor_url=f"http://127.0.0.1:{port}",
            influxdb_url="", log_level="ERROR", socket_dir=sockets.directory)
        server = Kapacitord(scratch, write_conf(config, scratch), echo=False)
        try:
            sockets.sync(config)
            server.start()
            api = KapacitorApi(scratch.kapacitor_url)
            api.wait_ready(READY_TIMEOUT, alive=server.alive)
            refused = {}
            for name, task in config.tasks.items():
                try:
                    tasks.define(api, task)
                except ApiError as exc:
                    refused[name] = str(exc)
            return refused
        finally:
            server.stop()
            sockets.stop_all()


def run_check(path: Path, settings: Settings, compile_ticks: bool = True) -> int:
    """Print what is wrong (naming the key or the task) and return the exit status."""
    try:
        config = config_json.load(path, settings.home)
    except config_json.ConfigError as exc:
        print(f"invalid configuration:\n{exc}")
        return 2
    for note in config.notes:
        print(f"{path}: warning: {note}")
    print(f"{path}: schema, files and UDF calls OK "
          f"({len(config.udfs)} UDF(s), {len(config.tasks)} task(s))")
    if not compile_ticks:
        return 0
    kapacitord = settings.kapacitord or binaries.find_kapacitord()
    if kapacitord is None:
        print(f"TICKscripts not compiled: {binaries.NOT_FOUND} (or pass --static)")
        return 3
    try:
        refused = refusals(config, settings, kapacitord)
    except SocketUdfError as exc:
        print(f"TICKscripts not compiled: {exc}")
        return 2
    except (OSError, ApiError) as exc:
        print(f"TICKscripts not compiled: kapacitord {kapacitord} did not start: {exc}")
        return 3
    for name, error in refused.items():
        task = config.tasks[name]
        print(f'{path}: tasks "{name}" ({task.tick_path.name}): Kapacitor refuses it: {error}')
    if refused:
        return 2
    print(f"every TICKscript compiles in kapacitord ({kapacitord})")
    return 0
