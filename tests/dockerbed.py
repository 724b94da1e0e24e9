"""The Docker test bed: the engine, the local base images, the project's images, containers.

Every container, network and volume a test makes carries the label `LABEL` (with this
session's id as its value), so the session removes whatever a failed test left behind, and
only that: two sessions may share one engine. Base images and built images are kept: the local
image store is the cache between runs. Published ports bind to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from localstack import ROOT
from localstack.polling import wait_for

# Debian's client: BuildKit built in (a newer client on PATH may lack the buildx plugin).
DOCKER = os.environ.get("DOCKER") or "/usr/bin/docker"
COMPOSE = shutil.which("docker-compose") or "docker-compose"
LABEL = f"org.kapacitor-ml-udfs.test={uuid.uuid4().hex[:12]}"
IMAGE = "kapacitor-ml-udfs:local"  # the tag docker-compose.yml gives the image
SIMULATOR_IMAGE = "kapacitor-ml-simulator:local"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
FIX = ("start it with `sudo bash scripts/dockerd.sh` (after `apt-get install docker.io "
       "docker-compose debootstrap`; .ci/run does all of it), or deselect these tests with "
       "-m 'not docker'")

T = TypeVar("T")


def docker(*args: str, check: bool = True, timeout: float = 120.0,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "DOCKER_BUILDKIT": "1", **(env or {})})
    if check and out.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({out.returncode}):\n"
                             f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def require_engine() -> None:
    """Fail (never skip) when no engine answers: the message says how to get one."""
    if not Path(DOCKER).exists():
        pytest.fail(f"{DOCKER} not found: no Docker client. {FIX}")
    out = subprocess.run([DOCKER, "info", "--format", "{{.ServerVersion}}"],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        pytest.fail(f"no Docker engine answers ({out.stderr.strip()}): {FIX}")


def poll(check: Callable[[], T], timeout: float, what: str, interval: float = 0.5) -> T:
    """localstack.polling.wait_for at the containers' pace, failing at the deadline."""
    return wait_for(check, timeout, interval, what=what)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ensure_base_images(*names: str) -> None:
    """Build the local stand-ins that are missing (a no-op when they exist)."""
    out = subprocess.run(["bash", str(ROOT / "scripts/base_images.sh"), *names],
                         capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, f"scripts/base_images.sh failed:\n{out.stderr[-4000:]}"


def build(tag: str, context: Path, *build_args: str) -> float:
    """BuildKit build with the host's CA bundle as the `extra_ca` secret; return seconds."""
    args = ["build", "-t", tag]
    if Path(CA_BUNDLE).exists():
        args += ["--secret", f"id=extra_ca,src={CA_BUNDLE}"]
    for arg in build_args:
        args += ["--build-arg", arg]
    started = time.monotonic()
    docker(*args, str(context), timeout=1800)
    return time.monotonic() - started


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout)


def remove_labelled() -> None:
    """Remove every container, network and volume the tests labelled."""
    for kind, ls in (("container", ["ps", "-aq"]), ("network", ["network", "ls", "-q"]),
                     ("volume", ["volume", "ls", "-q"])):
        ids = docker(*ls, "--filter", f"label={LABEL}", check=False).stdout.split()
        if ids:
            rm = ["rm", "-f", "-v"] if kind == "container" else [kind, "rm"]
            docker(*rm, *ids, check=False)


class Container:
    """A detached container made by `docker run`, removed by `remove()`."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def run(cls, image: str, *args: str, name: str = "", command: tuple[str, ...] = ()
            ) -> Container:
        name = name or unique("kmu-test")
        docker("run", "-d", "--name", name, "--label", LABEL, *args, image, *command)
        return cls(name)

    def inspect(self) -> dict:
        return json.loads(docker("inspect", self.name).stdout)[0]

    def state(self) -> dict:
        return self.inspect()["State"]

    def health(self) -> str:
        return self.state().get("Health", {}).get("Status", "")

    def port(self, container_port: int) -> int:
        """The 127.0.0.1 host port published for `container_port`."""
        out = docker("port", self.name, str(container_port)).stdout.split()[0]
        host, _, port = out.rpartition(":")
        assert host == "127.0.0.1", f"{self.name}: port {container_port} published on {host}"
        return int(port)

    def exec(self, *cmd: str, check: bool = True, user: str = "") -> str:
        args = ["exec", *(["--user", user] if user else []), self.name, *cmd]
        return docker(*args, check=check).stdout

    def logs(self) -> str:
        out = docker("logs", self.name, check=False)
        return out.stdout + out.stderr

    def remove(self) -> None:
        docker("rm", "-f", "-v", self.name, check=False)


def network() -> str:
    name = unique("kmu-test-net")
    docker("network", "create", "--label", LABEL, name)
    return name


def volume() -> str:
    name = unique("kmu-test-vol")
    docker("volume", "create", "--label", LABEL, name)
    return name


def run_influxdb(net: str, image: str) -> Container:
    """InfluxDB 1.x with the `telemetry` database, published on a free loopback port."""
    box = Container.run(image, "--network", net, "--network-alias", "influxdb",
                        "-e", "INFLUXDB_DB=telemetry", "-e", "INFLUXDB_REPORTING_DISABLED=true",
                        "-e", "INFLUXDB_HTTP_LOG_ENABLED=false", "-p", "127.0.0.1::8086")
    url = f"http://127.0.0.1:{box.port(8086)}"
    poll(lambda: "telemetry" in influx_query(url, "SHOW DATABASES", check=False), 60,
         "InfluxDB to answer with the telemetry database")
    return box


def influx_query(url: str, query: str, db: str = "", check: bool = True) -> str:
    """The raw JSON text of an InfluxQL query ('' on a connection error unless `check`)."""
    import urllib.parse
    import urllib.request

    params = urllib.parse.urlencode({"q": query, **({"db": db} if db else {})})
    try:
        with urllib.request.urlopen(f"{url}/query?{params}", timeout=10) as answer:
            return answer.read().decode()
    except OSError:
        if check:
            raise
        return ""


def influx_rows(url: str, query: str, db: str = "telemetry") -> list[list]:
    """Every value row of every series of a query's first result."""
    result = json.loads(influx_query(url, query, db))["results"][0]
    assert "error" not in result, f"{query}: {result['error']}"
    return [row for series in result.get("series", []) for row in series["values"]]


def compose_tag(service: str) -> str:
    """The image docker-compose.yml gives `service` (the stand-ins are built under it)."""
    import yaml

    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][service]["image"]


# -- fixtures (a pytest plugin: tests/conftest.py lists this module) ----------------------------

REPORT: dict[str, str] = {}
"""Figures the docker tests measured, printed at the end of the run."""


@pytest.fixture(scope="session")
def docker_engine():
    """A running engine; at the end, nothing the tests labelled is left."""
    require_engine()
    yield DOCKER
    remove_labelled()


@pytest.fixture(scope="session")
def kapacitor_image(docker_engine) -> str:
    """The project's image with the `pip` env, built once per session (layers cached)."""
    ensure_base_images("kapacitor", "influxdb")
    seconds = build(IMAGE, ROOT, "PYTHON_ENV=pip")
    REPORT["image"] = (f"{IMAGE} (PYTHON_ENV=pip) built in {seconds:.0f}s, "
                       f"{image_size(IMAGE) / 1e6:.0f} MB")
    return IMAGE


@pytest.fixture(scope="session")
def simulator_image(docker_engine) -> str:
    ensure_base_images("python")
    seconds = build(SIMULATOR_IMAGE, ROOT / "simulator")
    REPORT["simulator"] = f"{SIMULATOR_IMAGE} built in {seconds:.0f}s"
    return SIMULATOR_IMAGE


def pytest_terminal_summary(terminalreporter) -> None:
    if REPORT:
        terminalreporter.section("docker figures")
        for key, line in REPORT.items():
            terminalreporter.write_line(f"{key}: {line}")
