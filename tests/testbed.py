"""The test bed: real kapacitord (built by scripts/install_kapacitor.sh) and a real influxd.

Each server runs on free loopback ports with its own temporary directories and
is stopped at the end of the test (kapacitord) or session (influxd). The
kapacitor.conf comes from the same renderer and template the image uses.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from entrypoint.kapacitor_api import KapacitorApi
from entrypoint.kapacitor_conf import UdfFunction, render

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def udf_function(name: str, script: str, *args: str, timeout: str = "10s",
                 env: dict[str, str] | None = None) -> UdfFunction:
    """A process UDF running one of our scripts with this interpreter."""
    return UdfFunction(name, prog=sys.executable,
                       args=("-u", str(ROOT / "udfs" / script), *args),
                       timeout=timeout, env=env or {})


def kapacitor_bin_dir() -> Path:
    """Build (first time) or find the pinned kapacitord; fail loudly if that is impossible."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / "install_kapacitor.sh")],
                          capture_output=True, text=True, timeout=3000)
    if done.returncode != 0:
        pytest.fail(f"scripts/install_kapacitor.sh failed:\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


class Process:
    """A server process whose output goes to a log file we can read in assertions."""

    def __init__(self, cmd: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log
        self._cmd, self._env = list(cmd), env
        self._log = log.open("wb")
        self._spawn()

    def _spawn(self) -> None:
        self.proc = subprocess.Popen(self._cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=self._env, start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class Kapacitord(Process):
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
        self._log = self.log_path.open("ab")
        self._spawn()
        self.api.wait_ready(60, alive=self.alive)


class Influxd(Process):
    def __init__(self, work: Path) -> None:
        binary = shutil.which("influxd")
        if binary is None:
            pytest.fail("influxd not found: install Debian's `influxdb` package (.ci/run does)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = work / "influxdb.conf"
        conf.write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{free_port()}"
[meta]
  dir = "{work}/meta"
[data]
  dir = "{work}/data"
  wal-dir = "{work}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
""")
        super().__init__([binary, "-config", str(conf)], work / "influxd.log")
        deadline = time.monotonic() + 30
        while not self._ping():
            if time.monotonic() > deadline or not self.alive():
                self.stop()
                raise RuntimeError(f"influxd did not start:\n{self.log_text()[-2000:]}")
            time.sleep(0.1)

    def _ping(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.url}/ping", timeout=1).close()
            return True
        except OSError:
            return False

    def query(self, q: str, db: str = "") -> list[dict]:
        """Rows of the first series of the first statement, as dicts."""
        params = urllib.parse.urlencode({"q": q, "db": db, "epoch": "ns"})
        body = "" if q.strip().upper().startswith("SELECT") or q.upper().startswith("SHOW") else q
        request = urllib.request.Request(f"{self.url}/query?{params}",
                                         data=b"" if body else None,
                                         method="POST" if body else "GET")
        with urllib.request.urlopen(request, timeout=10) as resp:
            result = json.load(resp)["results"][0]
        if "error" in result:
            raise RuntimeError(result["error"])
        rows = []
        for series in result.get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(series.get("tags", {}))
                rows.append(row)
        return rows


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1):
    """Poll until predicate() is truthy and return it; fail with the last value."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


@pytest.fixture(scope="session")
def kapacitor_bin() -> Path:
    return kapacitor_bin_dir()


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory) -> Iterator[Influxd]:
    server = Influxd(tmp_path_factory.mktemp("influxd"))
    yield server
    server.stop()


@pytest.fixture
def kapacitord(kapacitor_bin, tmp_path) -> Iterator:
    """Factory: kapacitord(functions, influxdb_url=...) starts one; all stop at teardown."""
    started: list[Kapacitord] = []

    def start(functions: Sequence[UdfFunction], **kwargs) -> Kapacitord:
        server = Kapacitord(kapacitor_bin, tmp_path / f"k{len(started)}", functions, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
