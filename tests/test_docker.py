"""The image, built and run with a real Docker engine: read-only, non-root, beside InfluxDB.

One container runs through the module in order: every default task executing, simulated
points in and results out (InfluxDB, both alert logs, every dashboard panel's query),
healthy, a killed UDF brought back, a clean stop and a restart on the same volume. Other
containers show the failure modes: a task that cannot run (unhealthy), a data volume the
user cannot write, an InfluxDB that does not answer.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kapacitorkit.api import ApiError, KapacitorApi
from tests.dockerbed import (
    LABEL,
    REPORT,
    ROOT,
    Container,
    compose_tag,
    docker,
    ensure_base_images,
    influx_rows,
    network,
    poll,
    run_influxdb,
    volume,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

CONFIG = json.loads((ROOT / "config/config.json").read_text())
TASKS = [t["name"] for t in CONFIG["tasks"] if t["enabled"]]
DASHBOARD = ROOT / "deploy/grafana/dashboards/kapacitor-ml.json"
# Short health timings for the tests (the image's own are for production).
FAST_HEALTH = ("--health-interval", "2s", "--health-timeout", "10s", "--health-retries", "2",
               "--health-start-period", "1s")


class Stack:
    """InfluxDB and the image on one network, with the API and InfluxDB on loopback ports."""

    def __init__(self, image: str) -> None:
        ensure_base_images("influxdb")
        self.net = network()
        self.influx = run_influxdb(self.net, compose_tag("influxdb"))
        self.influx_url = f"http://127.0.0.1:{self.influx.port(8086)}"
        self.volume = volume()
        started = time.monotonic()
        self.kapacitor = Container.run(
            image, "--network", self.net, "--read-only", "--tmpfs", "/tmp",
            "-v", f"{self.volume}:/var/lib/kapacitor", "-e", "INFLUXDB_URL=http://influxdb:8086",
            # kapacitord's own override: snapshots every 5 s instead of every minute.
            "-e", "KAPACITOR_TASK_SNAPSHOT_INTERVAL=5s",
            "-p", "127.0.0.1::9092", *FAST_HEALTH)
        self.api = KapacitorApi(f"http://127.0.0.1:{self.kapacitor.port(9092)}")
        self.wait_all_executing()
        REPORT["tasks"] = (f"all {len(TASKS)} tasks executing {time.monotonic() - started:.1f}s "
                           "after docker run")

    def wait_all_executing(self, timeout: float = 240.0) -> None:
        def executing() -> bool:
            try:
                states = {t["id"]: t for t in self.api.tasks("executing", "error")}
            except (OSError, ApiError):
                return False
            return all(states.get(n, {}).get("executing") for n in TASKS)
        poll(executing, timeout, f"all of {TASKS} to execute:\n{self.kapacitor.logs()[-3000:]}")

    def remove(self) -> None:
        for box in (self.kapacitor, self.influx):
            box.remove()
        docker("volume", "rm", self.volume, check=False)
        docker("network", "rm", self.net, check=False)


@pytest.fixture(scope="module")
def stack(kapacitor_image: str) -> Iterator[Stack]:
    made = Stack(kapacitor_image)
    yield made
    made.remove()


def udf_pids(box: Container) -> dict[str, set[int]]:
    """UDF script name -> pids of the processes running it inside the container."""
    code = ("import os,json\nout={}\n"
            "for p in filter(str.isdigit, os.listdir('/proc')):\n"
            "    try: argv=open(f'/proc/{p}/cmdline','rb').read().split(b'\\0')\n"
            "    except OSError: continue\n"
            "    for a in argv:\n"
            "        if a.endswith(b'.py') and b'/udfs/' in a:\n"
            "            out.setdefault(os.path.basename(a.decode()),[]).append(int(p))\n"
            "print(json.dumps(out))")
    return {k: set(v) for k, v in json.loads(box.exec("python", "-c", code)).items()}


# -- the image ---------------------------------------------------------------------------------


def test_image_has_the_pinned_env_and_no_build_secret(kapacitor_image: str) -> None:
    text = (ROOT / "conda_requirements.txt").read_text()
    pins = dict(line.split("==") for line in text.splitlines() if line and line[0] != "#")
    code = ("import importlib.metadata as m, json, os, sys; print(json.dumps({'prefix': "
            "sys.prefix, 'tmp': os.listdir('/tmp'), 'secrets': os.listdir('/run/secrets') "
            "if os.path.isdir('/run/secrets') else [], "
            f"'pins': {{n: m.version(n) for n in {sorted(pins)}}}}}))")
    found = json.loads(docker("run", "--rm", "--label", LABEL, "--entrypoint", "python",
                              kapacitor_image, "-c", code).stdout)
    assert found["prefix"] == "/opt/conda/envs/udfs"
    assert found["pins"] == pins
    assert found["tmp"] == found["secrets"] == [], "a build file was left in the image"
    assert "image" in REPORT  # built, timed and sized by the fixture


# -- the running container ---------------------------------------------------------------------


def test_runs_read_only_as_non_root_with_every_task(stack: Stack) -> None:
    box = stack.kapacitor
    info = box.inspect()
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert box.exec("id", "-un").strip() == "kapacitor"
    assert box.exec("id", "-u").strip() != "0"
    # The official image's default: Kapacitor reports the container's hostname.
    conf = box.exec("cat", "/var/lib/kapacitor/conf/kapacitor.conf")
    assert f'hostname = "{info["Config"]["Hostname"]}"' in conf
    # Nothing outside the data dir and /tmp is writable; kapacitord's cache goes to /tmp.
    assert ".cache" not in box.exec("ls", "-A", "/var/lib/kapacitor").split()
    assert "cannot touch" in box.exec("sh", "-c", "touch /opt/kapacitor-udfs/x 2>&1",
                                      check=False)


def test_simulated_points_reach_influxdb_and_both_alert_logs(stack: Stack) -> None:
    made = subprocess.run([sys.executable, "-m", "simulator", "--fast", "--duration", "3600",
                           "--stdout"], cwd=ROOT, timeout=300, capture_output=True, check=True)
    lines = made.stdout.splitlines()
    # An hour of 5 series, in batches Kapacitor takes within the timeout even on a busy host.
    for start in range(0, len(lines), 1000):
        body = b"\n".join(lines[start:start + 1000])
        for url in (f"{stack.influx_url}/write?db=telemetry",
                    f"{stack.api.base}/kapacitor/v1/write?db=telemetry&rp=autogen"):
            urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=120).close()
    for measurement in ("anomaly_scores", "anomaly_periods", "machine_predictions",
                        "environment_smoothed", "environment_alerts"):
        poll(lambda m=measurement: influx_rows(stack.influx_url, f'SELECT * FROM "{m}" LIMIT 1'),
             60, f"results in InfluxDB's {measurement}")
    for topic in ("anomalies", "machine_failures"):
        path = f"/var/lib/kapacitor/alerts/{topic}.log"
        poll(lambda p=path: stack.kapacitor.exec("sh", "-c", f"test -s {p} && head -c 1 {p}",
                                                 check=False), 60, f"alert events in {path}")


def grafana_to_influxql(query: str) -> str:
    """A dashboard query with Grafana's macros replaced as Grafana would for the last 6 h."""
    query = query.replace("$timeFilter", "time > now() - 6h")
    query = re.sub(r"\$__interval|\$interval", "1m", query)
    return query


def test_every_dashboard_panel_query_returns_rows(stack: Stack) -> None:
    """Grafana cannot run here; its panels' queries run against the InfluxDB the tasks fill."""
    # Batch tasks run on their own schedule; wait for a first window of their output too.
    dashboard = json.loads(DASHBOARD.read_text())
    targets = [(panel["title"], target["query"]) for panel in dashboard["panels"]
               for target in panel.get("targets", []) if "query" in target]
    assert targets
    for title, query in targets:
        sql = grafana_to_influxql(query)
        assert "$" not in sql, f"{title}: unhandled macro in {sql}"
        poll(lambda s=sql: influx_rows(stack.influx_url, s), 90, f"rows for panel {title!r}: {sql}")


def test_healthy_when_every_task_executes(stack: Stack) -> None:
    poll(lambda: stack.kapacitor.health() == "healthy", 60, "health status healthy")
    out = stack.kapacitor.exec("python", "-m", "entrypoint.health")
    assert f"healthy: {len(TASKS)} task(s) executing" in out


def test_killed_udf_is_running_again_within_15s(stack: Stack) -> None:
    box = stack.kapacitor
    before = udf_pids(box)
    victim = before["moving_average.py"]
    box.exec("python", "-c", f"import os; [os.kill(p, 9) for p in {sorted(victim)}]")
    killed = time.monotonic()

    def replaced() -> bool:
        now = udf_pids(box).get("moving_average.py", set())
        info = stack.api.task("temperature_moving_average")
        return bool(now) and not now & victim and info.get("executing") and not info.get("error")
    poll(replaced, 15, "a new moving_average UDF process and its task executing")
    REPORT["udf restart"] = f"killed moving_average UDF running again after " \
                            f"{time.monotonic() - killed:.1f}s"
    # Only the task that lost its UDF was restarted.
    after = udf_pids(box)
    for script, pids in before.items():
        if script != "moving_average.py":
            assert after.get(script) == pids, f"{script} was restarted too"


def test_clean_stop_and_restart_with_snapshots(stack: Stack) -> None:
    box = stack.kapacitor
    restored_before = box.logs().count("state loaded from")
    started = time.monotonic()
    docker("stop", "--time", "10", box.name, timeout=60)
    stop_seconds = time.monotonic() - started
    state = box.state()
    assert state["ExitCode"] == 0, box.logs()[-2000:]
    assert stop_seconds < 10, f"docker stop took {stop_seconds:.1f}s (SIGKILL at 10s)"
    REPORT["stop"] = f"docker stop {stop_seconds:.1f}s, exit status 0"
    docker("start", box.name)
    stack.api = KapacitorApi(f"http://127.0.0.1:{box.port(9092)}")  # a new free host port
    stack.wait_all_executing()
    # ads_model and moving_average keep per-series state: it comes back from the state each
    # UDF saved in the volume when it stopped (udfkit.statefile).
    poll(lambda: box.logs().count("state loaded from") > restored_before, 60,
         "a UDF loading its state after the restart")


# -- failure modes ------------------------------------------------------------------------------


def test_unhealthy_when_a_task_cannot_run_on_a_custom_bind(kapacitor_image: str,
                                                            tmp_path: Path) -> None:
    """rfc_classifier cannot find its model: machine_failure never executes. The health check
    must say so, on the address KAPACITOR_HTTP_BIND gives (not the default 9092)."""
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    document = json.loads((config / "config.json").read_text())
    for udf in document["udfs"]:
        if udf["name"] == "rfc_classifier":
            udf["env"] = {"MODELS_DIR": "/nonexistent"}
    (config / "config.json").write_text(json.dumps(document))
    for path in (tmp_path, config, *config.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    box = Container.run(kapacitor_image, "--read-only", "--tmpfs", "/tmp",
                        "-v", f"{volume()}:/var/lib/kapacitor",
                        "-v", f"{config}:/opt/kapacitor-udfs/config:ro",
                        "-e", "KAPACITOR_HTTP_BIND=:9200", *FAST_HEALTH)
    try:
        poll(lambda: box.health() == "unhealthy", 120, "health status unhealthy")
        assert box.state()["Running"], box.logs()[-2000:]
        out = box.exec("python", "-m", "entrypoint.health", check=False)
        assert "unhealthy: task machine_failure" in out, out
        assert "does not answer" not in out, out
    finally:
        box.remove()


def test_unwritable_data_dir_is_named_with_the_uid(kapacitor_image: str) -> None:
    vol = volume()
    out = docker("run", "--rm", "--label", LABEL, "--read-only", "--tmpfs", "/tmp",
                 "--user", "12345", "-v", f"{vol}:/var/lib/kapacitor", kapacitor_image,
                 check=False, timeout=60)
    docker("volume", "rm", vol, check=False)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "cannot write to /var/lib/kapacitor" in out.stderr
    assert "uid 12345" in out.stderr
    assert "Traceback" not in out.stderr


def test_unreachable_influxdb_is_reported_and_retried(kapacitor_image: str) -> None:
    out = docker("run", "--rm", "--label", LABEL, "--read-only", "--tmpfs", "/tmp",
                 "--network", "none", "-e", "INFLUXDB_URL=http://influxdb.invalid:8086",
                 "-e", "INFLUXDB_WAIT=6", kapacitor_image, check=False, timeout=60)
    logs = out.stdout + out.stderr
    assert out.returncode == 1, logs
    assert "waiting for InfluxDB at http://influxdb.invalid:8086" in logs
    assert "did not answer within 6s" in logs and "INFLUXDB_URL" in logs
    assert "starting " not in logs  # kapacitord is not started against a missing InfluxDB
