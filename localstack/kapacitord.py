"""kapacitord: the pinned build (scripts/install_kapacitor.sh) started with our kapacitor.conf."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from kapacitorkit import binaries
from kapacitorkit.api import KapacitorApi
from kapacitorkit.conf import UdfFunction, render
from kapacitorkit.ports import free_port
from localstack import ROOT
from localstack.process import Process


def kapacitor_bin_dir() -> Path:
    """Build (first time) or find the pinned kapacitord and kapacitor; raise if impossible.

    The script's progress lines (stderr) go straight to ours: a first build takes minutes.
    """
    done = subprocess.run(["bash", str(binaries.INSTALL_SCRIPT)],
                          stdout=subprocess.PIPE, text=True, timeout=3000)
    if done.returncode != 0:
        raise RuntimeError("scripts/install_kapacitor.sh failed (its messages are above)")
    return Path(done.stdout.strip().splitlines()[-1])


def find_kapacitord() -> str:
    """kapacitorkit's search ($KAPACITORD, the pinned build, PATH); else build it now."""
    return binaries.find_kapacitord() or str(kapacitor_bin_dir() / "kapacitord")


def udf_function(name: str, script: str, *args: str, timeout: str = "10s",
                 env: dict[str, str] | None = None) -> UdfFunction:
    """A process UDF running one of our scripts with this interpreter."""
    return UdfFunction(name, prog=sys.executable,
                       args=("-u", str(ROOT / "udfs" / script), *args),
                       timeout=timeout, env=env or {})


class LocalKapacitord(Process):
    def __init__(self, bin_dir: Path, work: Path, functions: Sequence[UdfFunction],
                 influxdb_url: str = "", snapshot_interval: str = "1m") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = work / "kapacitor"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.conf = work / "kapacitor.conf"
        self.conf.write_text(render(functions, data_dir=str(self.data_dir),
                                    http_bind=f"127.0.0.1:{self.port}",
                                    influxdb_url=influxdb_url,
                                    snapshot_interval=snapshot_interval))
        super().__init__([str(bin_dir / "kapacitord"), "-config", str(self.conf)],
                         work / "kapacitord.log")
        self.api = KapacitorApi(self.url)
        try:
            self.api.wait_ready(60, alive=self.alive)
        except Exception:
            self.stop()
            raise RuntimeError(f"kapacitord did not start:\n{self.log_text()[-3000:]}") from None

    def restart(self) -> None:
        """Stop and start again on the same data dir (tasks and snapshots persist)."""
        self.stop()
        self.start()

    def start(self, timeout: float = 60) -> None:
        """Start again after stop(), on the same data dir and log."""
        self._log = self.log_path.open("ab")
        self._spawn()
        self.api.wait_ready(timeout, alive=self.alive)
