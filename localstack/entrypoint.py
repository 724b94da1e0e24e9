"""The entrypoint (`python -m entrypoint`) as a child process, in a copy of the image's layout.

The entrypoint tests and the fault runs lay out a home like /opt/kapacitor-udfs
(udfs/ and tick_scripts/ copied so they may be edited; udfkit/, mlkit/ and models/
linked), write a config.json, and run the entrypoint configured only by environment
variables, against the pinned kapacitord.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from kapacitorkit.api import KapacitorApi
from kapacitorkit.ports import free_port
from localstack import ROOT
from localstack.polling import wait_for
from localstack.process import Process


def make_home(root: Path, extra_udfs: Iterable[Path] = ()) -> Path:
    """A copy of the image's /opt/kapacitor-udfs layout, with `extra_udfs` (scripts such as
    faultkit's) copied beside the UDFs."""
    home = root / "home"
    (home / "udfs").mkdir(parents=True)
    for entry in (ROOT / "udfs").iterdir():
        if entry.suffix == ".py":
            shutil.copy(entry, home / "udfs" / entry.name)
        elif entry.is_dir() and entry.name != "__pycache__":
            (home / "udfs" / entry.name).symlink_to(entry)
    for script in extra_udfs:
        shutil.copy(script, home / "udfs" / script.name)
    shutil.copytree(ROOT / "tick_scripts", home / "tick_scripts")
    shutil.copytree(ROOT / "config", home / "config")
    (home / "models").symlink_to(ROOT / "models")
    return home


class LocalEntrypoint(Process):
    """The entrypoint subprocess, its API, and its log."""

    def __init__(self, home: Path, work: Path, kapacitor_bin: Path, influxdb_url: str = "",
                 **env: str) -> None:
        port = free_port()
        self.api = KapacitorApi(f"http://127.0.0.1:{port}")
        full_env = {**os.environ, "KAPACITOR_UDFS_HOME": str(home),
                    "KAPACITOR_CONFIG_JSON": str(home / "config" / "config.json"),
                    "KAPACITOR_CONF_DIR": str(work / "conf"),
                    "KAPACITOR_DATA_DIR": str(work / "data"),
                    "KAPACITORD": str(kapacitor_bin / "kapacitord"),
                    "KAPACITOR_HTTP_BIND": f"127.0.0.1:{port}", "INFLUXDB_URL": influxdb_url,
                    "SUPERVISE_INTERVAL": "1", "LOG_LEVEL": "ERROR", **env}
        full_env.pop("KAPACITOR_URL", None)
        self.started = time.monotonic()
        super().__init__([sys.executable, "-m", "entrypoint"], work / "entrypoint.log",
                         env=full_env)

    def wait_log(self, pattern: str, timeout: float = 20.0) -> re.Match:
        found = wait_for(lambda: re.search(pattern, self.log_text()), timeout)
        if not found:
            raise TimeoutError(f"no {pattern!r} in:\n{self.log_text()[-3000:]}")
        return found

    def wait_tasks(self, names: list[str], timeout: float = 30.0) -> float:
        """Wait for each task's status line; all must be executing. Returns seconds taken."""
        self.wait_log(r"task\(s\) executing", timeout)
        text = self.log_text()
        for name in names:
            if f"task {name}: executing" not in text:
                raise RuntimeError(f"task {name} is not executing:\n{text[-3000:]}")
        return time.monotonic() - self.started
