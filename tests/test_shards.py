"""Series sharded across Kapacitor instances by a Telegraf router (docs/scaling.md).

Static part: the rendezvous hash (its Python mirror in scripts/shards.py), the generated router
config and compose file, the TICKscripts' shard vars, the Telegraf build. The live part, on a
real Docker engine with 3 shards, is tests/test_shards_live.py.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from entrypoint import shard as entry_shard
from localstack.entrypoint import LocalEntrypoint, make_home
from localstack.influxd import LocalInfluxd
from localstack.polling import wait_for
from simulator.generate import iter_all, to_line_protocol_batch
from tests.testbed import ROOT


def load_shards() -> ModuleType:
    """scripts/shards.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("shards", ROOT / "scripts/shards.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shards = load_shards()
TICKS = sorted((ROOT / "tick_scripts").glob("*.tick"))
BATCH = {"machine_failure_batch.tick", "torque_outliers.tick"}


# --- the hash ---------------------------------------------------------------------------------


def test_java_hash_is_string_hashcode() -> None:
    """Starlark specifies hash(str) as Java's String.hashCode: known values of it."""
    assert shards.java_hash("") == 0
    assert shards.java_hash("hello") == 99162322
    assert shards.java_hash("polygenelubricants") == -(2**31)
    assert shards.java_hash("environment,sensor=sensor-1#0") == shards.java_hash(
        "environment,sensor=sensor-1#0")


@pytest.mark.parametrize("before", [1, 2, 3, 4, 7])
def test_growing_moves_about_one_in_n_and_only_to_the_new_shard(before: int) -> None:
    keys = shards.simulator_keys(sensors=1000, machines=1000)
    moved = shards.moved(keys, before, before + 1)
    assert {shards.shard_of(k, before + 1) for k in moved} <= {before}
    expected = len(keys) / (before + 1)
    assert 0.8 * expected < len(moved) < 1.2 * expected, (len(moved), expected)


@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_series_spread_evenly(n: int) -> None:
    counts = Counter(shards.shard_of(k, n) for k in shards.simulator_keys(1000, 1000))
    assert sorted(counts) == list(range(n))
    mean = 2000 / n
    assert all(0.8 * mean < c < 1.2 * mean for c in counts.values()), counts


def test_series_key_is_measurement_and_group_by_tags_only() -> None:
    key = shards.series_key("environment", {"sensor": "s1", "site": "x", "shard": "2"})
    assert key == "environment,sensor=s1"
    assert shards.series_key("machine", {"machine": "m", "sensor": "s"}) == \
        "machine,machine=m,sensor=s"


def test_key_tags_are_what_the_tasks_group_by() -> None:
    grouped = set()
    for tick in TICKS:
        for args in re.findall(r"\.groupBy\(([^)]*)\)", tick.read_text()):
            grouped |= set(re.findall(r"'([^']+)'", args))
    assert grouped == set(shards.KEY_TAGS)
    values = yaml.safe_load((ROOT / "deploy/helm/kapacitor-ml/values.yaml").read_text())
    assert values["router"]["keyTags"] == list(shards.KEY_TAGS)


# --- router.conf and docker-compose.shards.yml -----------------------------------------------


def router(n: int, buffer_limit: int = shards.BUFFER_LIMIT) -> dict[str, Any]:
    return tomllib.loads(shards.router_conf(n, shards.TELEGRAF_CONF.read_text(), buffer_limit))


def test_router_tags_raw_points_and_routes_each_shard_to_its_kapacitor() -> None:
    conf = router(3, buffer_limit=500)
    (starlark,) = conf["processors"]["starlark"]
    assert starlark["constants"] == {"shards": 3, "key_tags": list(shards.KEY_TAGS)}
    assert starlark["namepass"] == ["environment", "machine"]
    storage = [o for o in conf["outputs"]["influxdb"] if "tagpass" not in o]
    assert [o["urls"] for o in storage] == [["http://influxdb:8086"]]
    per_shard = [o for o in conf["outputs"]["influxdb"] if "tagpass" in o]
    assert [(o["urls"][0], o["tagpass"]["shard"]) for o in per_shard] == [
        ("http://kapacitor:9092", ["0"]), ("http://kapacitor-1:9092", ["1"]),
        ("http://kapacitor-2:9092", ["2"])]
    for out in per_shard:
        assert out["metric_buffer_limit"] == 500
        assert out["tagexclude"] == ["shard"] and out["retention_policy"] == "autogen"
        assert out["namepass"] == ["environment", "machine"]
    # everything else of telegraf.conf is kept: the MQTT consumers and the agent settings
    base = tomllib.loads(shards.TELEGRAF_CONF.read_text())
    assert conf["inputs"]["mqtt_consumer"] == base["inputs"]["mqtt_consumer"]
    assert conf["agent"] == base["agent"]


def test_router_and_helm_chart_agree() -> None:
    """The chart renders the same processor and per-shard outputs (tests/test_helm.py runs it)."""
    chart = (ROOT / "deploy/helm/kapacitor-ml/templates/router-configmap.yaml").read_text()
    assert 'script = "/etc/telegraf/shard.star"' in chart
    assert 'tagexclude = ["shard"]' in chart and "shard = [\"{{ $i }}\"]" in chart
    assert 'script = "/etc/telegraf/shard.star"' in shards.router_conf(
        2, shards.TELEGRAF_CONF.read_text())


def test_telegraf_build_has_the_plugins_of_both_configs() -> None:
    script = (ROOT / "scripts/install_telegraf.sh").read_text()
    built = set(re.search(r'plugins="([^"]+)"', script).group(1).split(","))
    used: set[str] = set()
    for conf in (tomllib.loads(shards.TELEGRAF_CONF.read_text()), router(2)):
        used |= {f"{kind}.{name}" for kind in ("inputs", "outputs", "processors")
                 for name in conf.get(kind, {})}
        used |= {f"parsers.{c['data_format']}" for c in conf["inputs"]["mqtt_consumer"]}
    assert built == used


def mount(volume: str | dict[str, str]) -> tuple[str, str]:
    """(source, target) of a compose volume, long or short syntax (Compose v1 prints short)."""
    if isinstance(volume, dict):
        return volume["source"], volume["target"]
    source, target = volume.split(":")[:2]
    return source, target


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    for name in ("docker-compose.yml", "deploy/telegraf/telegraf.conf"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    shards.write(3, tmp_path)
    return tmp_path


def test_compose_file_adds_shards_with_their_own_volumes(generated: Path) -> None:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose missing: apt-get install docker-compose (scripts/setup.sh test)"
    files = ["-f", str(ROOT / "docker-compose.yml"), "-f",
             str(generated / "docker-compose.shards.yml")]
    out = subprocess.run([exe, "--project-directory", str(ROOT), *files, "config"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    services = config["services"]
    names = ["kapacitor", "kapacitor-1", "kapacitor-2"]
    volumes = set()
    for i, name in enumerate(names):
        svc = services[name]
        assert svc["environment"]["KAPACITOR_SHARD"] == str(i)
        assert svc["read_only"] is True and svc["image"] == services["kapacitor"]["image"]
        (data,) = [src for src, dst in map(mount, svc["volumes"]) if dst == "/var/lib/kapacitor"]
        volumes.add(data)
    assert len(volumes) == 3
    telegraf = services["telegraf"]
    targets = {dst: src for src, dst in map(mount, telegraf["volumes"])}
    assert targets["/etc/telegraf/telegraf.conf"].endswith("deploy/telegraf/router.conf")
    assert targets["/etc/telegraf/shard.star"].endswith("files/shard.star")
    assert set(telegraf["depends_on"]) >= set(names)
    assert set(services) >= {"influxdb", "grafana", "mosquitto", "simulator"}  # unchanged


# --- the tasks' shard vars ----------------------------------------------------------------------


@pytest.mark.parametrize("tick", TICKS, ids=lambda p: p.name)
def test_every_task_tags_its_results_with_its_shard(tick: Path) -> None:
    text = tick.read_text()
    assert re.search(r"^var shard = '0'$", text, re.MULTILINE)
    assert "|default()\n        .tag('shard', shard)" in text
    if tick.name in BATCH:
        assert "var shard_series = '.*'" in text
        assert "WHERE \"shard\" =~ /' + shard_series + '/'" in text


def test_entrypoint_hands_the_shard_only_to_scripts_that_declare_it() -> None:
    script = "var shard = '0'\nvar shard_series = '.*'\nstream|from()\n"
    env = {"KAPACITOR_SHARD": "2"}
    assert entry_shard.task_vars(script, env) == {
        "shard": {"type": "string", "value": "2"},
        "shard_series": {"type": "string", "value": "^2$"}}
    assert entry_shard.task_vars("var shard = '0'\n", env) == {
        "shard": {"type": "string", "value": "2"}}
    assert entry_shard.task_vars("stream|from()\n", env) == {}
    assert entry_shard.task_vars(script, {}) == {}
    assert entry_shard.series_regex("a.b/c") == r"^a\.b\/c$"


# --- a restarted shard keeps its tasks running -----------------------------------------------


def test_restart_on_the_same_volume_leaves_running_tasks_alone(kapacitor_bin, influxdb,
                                                                tmp_path) -> None:
    """kapacitord starts its stored tasks before it listens; the entrypoint must not disable
    and enable them again (points the router delivers meanwhile would reach no task)."""
    home = make_home(tmp_path)
    names = ["temperature_moving_average", "temperature_anomalies"]
    first = LocalEntrypoint(home, tmp_path, kapacitor_bin, influxdb.url, KAPACITOR_SHARD="1")
    try:
        first.wait_tasks(names, timeout=60)
        before = {n: first.api.task(n) for n in names}
    finally:
        first.stop()
    second = LocalEntrypoint(home, tmp_path, kapacitor_bin, influxdb.url, KAPACITOR_SHARD="1")
    try:
        second.wait_tasks(names, timeout=60)
        for name in names:
            after = second.api.task(name)
            assert after["executing"] and after["vars"]["shard"]["value"] == "1"
            assert after["last-enabled"] == before[name]["last-enabled"], f"{name} redefined"
    finally:
        second.stop()
    third = LocalEntrypoint(home, tmp_path, kapacitor_bin, influxdb.url, KAPACITOR_SHARD="2")
    try:  # another shard id is another definition: redefined with the new vars
        third.wait_tasks(names, timeout=60)
        assert third.api.task(names[0])["vars"]["shard"]["value"] == "2"
    finally:
        third.stop()


@pytest.fixture
def own_influxdb(tmp_path: Path) -> Iterator[LocalInfluxd]:
    """An influxd of this test's own: the session's is shared, and these points would show
    up in other tests' queries of `telemetry`."""
    (tmp_path / "influxd").mkdir()
    server = LocalInfluxd(tmp_path / "influxd")
    try:
        server.query("CREATE DATABASE telemetry")
        yield server
    finally:
        server.stop()


@pytest.mark.influxdb
def test_alerts_and_results_carry_the_shard(kapacitor_bin, own_influxdb, tmp_path) -> None:
    """Alerts (both topics' log handlers) and results of shard 2 say shard 2."""
    influxdb = own_influxdb
    entry = LocalEntrypoint(make_home(tmp_path), tmp_path, kapacitor_bin, influxdb.url,
                            KAPACITOR_SHARD="2")
    try:
        entry.wait_tasks(["temperature_anomalies", "machine_failure"], timeout=60)
        steps = iter_all(5, ["sensor-1", "sensor-2"], ["mill-1"],
                         start_ns=time.time_ns() - 3000 * 10**9, step_s=1.0,
                         anomaly_rate=0.02, failure_rate=0.05)
        body = "".join(to_line_protocol_batch(next(steps)) for _ in range(3000))
        entry.api.write(body, "telemetry", "autogen")
        logs = {name: tmp_path / "data" / "alerts" / f"{name}.log"
                for name in ("anomalies", "machine_failures")}
        wait_for(lambda: all(p.exists() and "\n" in p.read_text() for p in logs.values()), 60,
                 what="alerts in both topics' logs")
        for path in logs.values():
            # only whole lines: the handler may be writing the next event as we read
            events = [json.loads(line) for line in path.read_text().split("\n")[:-1]]
            tags = [s["tags"] for e in events for s in e["data"]["series"]]
            assert tags and all(t["shard"] == "2" for t in tags), path.name
        wait_for(lambda: influxdb.query('SELECT count(*) FROM "anomaly_scores"', "telemetry"),
                 30, what="anomaly scores in InfluxDB")
        shards_seen = influxdb.query('SHOW TAG VALUES FROM "anomaly_scores" WITH KEY = "shard"',
                                     "telemetry")
        assert [row["value"] for row in shards_seen] == ["2"]
    finally:
        entry.stop()
