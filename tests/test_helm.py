"""The Helm chart (deploy/helm/kapacitor-ml): `helm lint --strict`, and the objects `helm
template` renders checked for what sharding needs (shard count, volumes, probes, security).

helm is built from its Go module (tools/helm/go.mod, scripts/install_helm.sh) like kapacitord;
nothing here talks to a cluster (docs/scaling.md has the commands for a real one).
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from functools import cache
from typing import Any

import pytest
import yaml

from tests.testbed import ROOT

# helm is built once by the set-up (scripts/setup.sh test); without it the first test builds
# it, which takes minutes: `make check` leaves these out.
pytestmark = pytest.mark.slow

CHART = ROOT / "deploy/helm/kapacitor-ml"
HEALTH = ["/opt/conda/envs/udfs/bin/python", "-m", "entrypoint.health"]


@cache
def helm() -> str:
    """The pinned helm (built once, cached under ~/.cache like kapacitord)."""
    out = subprocess.run(["bash", str(ROOT / "scripts/install_helm.sh")], capture_output=True,
                         text=True, timeout=1800)
    assert out.returncode == 0, f"scripts/install_helm.sh failed:\n{out.stderr[-3000:]}"
    return out.stdout.strip()


def run_helm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([helm(), *args], capture_output=True, text=True, timeout=120,
                          env={"HOME": "/nonexistent", "PATH": "/usr/bin:/bin",
                               "HELM_CACHE_HOME": "/tmp/helm-cache",
                               "HELM_CONFIG_HOME": "/tmp/helm-config",
                               "HELM_DATA_HOME": "/tmp/helm-data"})


def render(*sets: str) -> dict[tuple[str, str], dict[str, Any]]:
    """`helm template` with --set options: {(kind, name): object}."""
    args = [a for s in sets for a in ("--set", s)]
    out = run_helm("template", "ml", str(CHART), *args)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_lint_strict() -> None:
    out = run_helm("lint", "--strict", str(CHART))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


@pytest.mark.parametrize("shards", [1, 3, 8])
def test_shard_count_sets_statefulset_and_router(shards: int) -> None:
    objs = render(f"shards={shards}")
    sts = objs[("StatefulSet", "ml-kapacitor")]
    assert sts["spec"]["replicas"] == shards
    conf = tomllib.loads(objs[("ConfigMap", "ml-router")]["data"]["telegraf.conf"])
    assert conf["processors"]["starlark"][0]["constants"]["shards"] == shards
    kapacitor_outputs = [o for o in conf["outputs"]["influxdb"] if "tagpass" in o]
    assert [o["tagpass"]["shard"] for o in kapacitor_outputs] == [[str(i)] for i in range(shards)]
    assert [o["urls"] for o in kapacitor_outputs] == [
        [f"http://ml-kapacitor-{i}.ml-kapacitor:9092"] for i in range(shards)]
    for out in kapacitor_outputs:  # each its own buffer; the tag stays out of Kapacitor
        assert out["metric_buffer_limit"] == 100000 and out["tagexclude"] == ["shard"]


def test_each_shard_knows_its_ordinal_and_has_its_own_volume() -> None:
    sts = render()[("StatefulSet", "ml-kapacitor")]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["KAPACITOR_SHARD"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.labels['apps.kubernetes.io/pod-index']"
    claims = sts["spec"]["volumeClaimTemplates"]
    assert [c["metadata"]["name"] for c in claims] == ["data"]
    assert claims[0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/var/lib/kapacitor": "data", "/tmp": "tmp"}
    assert sts["spec"]["serviceName"] == "ml-kapacitor"


def test_probes_are_the_images_health_check() -> None:
    container = render()[("StatefulSet", "ml-kapacitor")]["spec"]["template"]["spec"][
        "containers"][0]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert '"' + '", "'.join(HEALTH) + '"' in dockerfile, "the image's HEALTHCHECK changed"
    assert container["startupProbe"]["exec"]["command"] == HEALTH
    assert container["readinessProbe"]["exec"]["command"] == HEALTH
    assert container["livenessProbe"]["httpGet"]["path"] == "/kapacitor/v1/ping"


def test_non_root_read_only_with_resource_requests() -> None:
    objs = render()
    for kind, name in (("StatefulSet", "ml-kapacitor"), ("Deployment", "ml-router")):
        pod = objs[(kind, name)]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] > 0
        for c in pod["containers"]:
            sec = c["securityContext"]
            assert sec["runAsNonRoot"] and sec["readOnlyRootFilesystem"]
            assert not sec["allowPrivilegeEscalation"] and sec["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(c["resources"]["requests"])
        assert pod["automountServiceAccountToken"] is False


def test_headless_service_publishes_only_ready_shards() -> None:
    svc = render()[("Service", "ml-kapacitor")]
    assert svc["spec"]["clusterIP"] == "None"
    assert not svc["spec"].get("publishNotReadyAddresses")


def test_router_uses_the_repos_shard_script_and_restarts_on_change() -> None:
    objs = render()
    assert objs[("ConfigMap", "ml-router")]["data"]["shard.star"].strip() == \
        (CHART / "files/shard.star").read_text().strip()
    checksum = objs[("Deployment", "ml-router")]["spec"]["template"]["metadata"][
        "annotations"]["checksum/config"]
    assert checksum != render("shards=4")[("Deployment", "ml-router")]["spec"]["template"][
        "metadata"]["annotations"]["checksum/config"]


def test_mqtt_with_several_router_replicas_is_refused() -> None:
    out = run_helm("template", "ml", str(CHART), "--set", "router.replicas=2",
                   "--set", "router.mqttServers={tcp://mosquitto:1883}")
    assert out.returncode != 0 and "every replica would consume" in out.stderr
    conf = tomllib.loads(render("router.mqttServers={tcp://mosquitto:1883}")[
        ("ConfigMap", "ml-router")]["data"]["telegraf.conf"])
    assert {c["topics"][0] for c in conf["inputs"]["mqtt_consumer"]} == {
        "sensors/environment/+", "sensors/machine/+"}


def test_zero_shards_is_refused() -> None:
    out = run_helm("template", "ml", str(CHART), "--set", "shards=0")
    assert out.returncode != 0 and "shards must be at least 1" in out.stderr


def test_helm_builds_from_its_pinned_module_read_only() -> None:
    """scripts/install_helm.sh builds with -mod=readonly, and tools/helm's go.sum holds
    every package of the build (go list resolves them without rewriting anything)."""
    script = (ROOT / "scripts/install_helm.sh").read_text()
    assert 'GOFLAGS="-mod=readonly -buildvcs=false"' in script
    module = ROOT / "tools/helm"
    before = [(module / n).read_bytes() for n in ("go.mod", "go.sum")]
    out = subprocess.run(["go", "list", "-deps", "helm.sh/helm/v4/cmd/helm"], cwd=module,
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert [(module / n).read_bytes() for n in ("go.mod", "go.sum")] == before
    version = subprocess.run([helm(), "version", "--short"], capture_output=True, text=True,
                             timeout=30).stdout
    assert version.startswith("v4.3.2"), version
