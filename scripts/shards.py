"""Series sharded across Kapacitor instances by Telegraf: the files for N shards, and the hash.

`python scripts/shards.py --shards N` (or `make shards SHARDS=N`) writes

- `deploy/telegraf/router.conf`: deploy/telegraf/telegraf.conf turned into the shard router.
  Its starlark processor (deploy/helm/kapacitor-ml/files/shard.star) tags each raw metric with
  `shard`; one Kapacitor output per shard passes only its shard's metrics (tagpass), each with
  its own buffer (metric_buffer_limit), so a shard that is down keeps its points waiting
  without holding up the others. InfluxDB gets every point with its shard tag, which is what
  the shards' batch queries select on.
- `docker-compose.shards.yml`: the stack's `kapacitor` becomes shard 0, and kapacitor-1 ..
  kapacitor-(N-1) are copies of it, each with its own volume; `telegraf` runs router.conf.

Run: `docker compose -f docker-compose.yml -f docker-compose.shards.yml up --build`.
Both files are generated, not committed: docs/scaling.md explains the design.

`shard_of` is the router's Starlark rendezvous hash in Python (tests hold the two to agree):
`python scripts/shards.py --moves 3 4` prints which of the simulator's series move.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TELEGRAF_CONF = ROOT / "deploy/telegraf/telegraf.conf"
ROUTER_CONF = ROOT / "deploy/telegraf/router.conf"
COMPOSE_FILE = ROOT / "docker-compose.yml"
SHARDS_FILE = ROOT / "docker-compose.shards.yml"
SHARD_STAR = ROOT / "deploy/helm/kapacitor-ml/files/shard.star"
# The tags the tasks group by (tick_scripts/*.tick): with the measurement, the series key.
KEY_TAGS = ("machine", "sensor")
# The router's InfluxDB listener: writers other than MQTT (the bench, other collectors).
ROUTER_PORT = 8186
# Per shard output: points kept while its Kapacitor is down (Telegraf drops the oldest beyond).
BUFFER_LIMIT = 100_000


# --- the hash: the same as shard.star -----------------------------------------------------


def java_hash(text: str) -> int:
    """Starlark's hash() of a string: java.lang.String.hashCode (signed 32 bits).

    starlark-go iterates runes, so a character beyond the BMP counts as one term (not as a
    UTF-16 pair): this does the same.
    """
    h = 0
    for char in text:
        h = (31 * h + ord(char)) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def mix32(x: int) -> int:
    """MurmurHash3's 32-bit finaliser: nearby inputs get unrelated outputs."""
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    return x ^ (x >> 16)


def series_key(measurement: str, tags: Mapping[str, str],
               key_tags: Iterable[str] = KEY_TAGS) -> str:
    """The measurement and the group-by tags a point has, in key_tags order."""
    return ",".join([measurement, *(f"{k}={tags[k]}" for k in key_tags if k in tags)])


def shard_of(key: str, shards: int) -> int:
    """Rendezvous hashing: the shard with the highest score (lowest index on a tie)."""
    scores = [mix32(java_hash(f"{key}#{i}")) for i in range(shards)]
    return scores.index(max(scores))


def simulator_keys(sensors: int = 3, machines: int = 2) -> list[str]:
    """The series keys of `python -m simulator --sensors S --machines M`."""
    return ([series_key("environment", {"sensor": f"sensor-{i}"}) for i in range(1, sensors + 1)]
            + [series_key("machine", {"machine": f"mill-{i}"}) for i in range(1, machines + 1)])


def moved(keys: Iterable[str], before: int, after: int) -> list[str]:
    return [k for k in keys if shard_of(k, before) != shard_of(k, after)]


# --- router.conf ------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def toml_table(header: str, table: Mapping[str, Any], indent: str = "") -> list[str]:
    """One table: its scalars, then its sub-tables (Telegraf's tagpass, constants)."""
    lines = [f"{indent}{header}"]
    subtables = {k: v for k, v in table.items() if isinstance(v, dict)}
    lines += [f"{indent}  {k} = {toml_value(v)}" for k, v in table.items() if k not in subtables]
    name = header.strip("[]")
    for key, sub in subtables.items():
        lines += toml_table(f"[{name}.{key}]", sub, indent + "  ")
    return lines


def block(header: str, table: Mapping[str, Any]) -> list[str]:
    """A top-level table and the blank line after it."""
    return [*toml_table(header, table), ""]


def is_kapacitor_output(output: Mapping[str, Any]) -> bool:
    return any(url.split("//", 1)[-1].startswith("kapacitor:") for url in output.get("urls", []))


def kapacitor_host(shard: int) -> str:
    """Shard 0 is the stack's own `kapacitor` service; the others are kapacitor-1, ..."""
    return "kapacitor" if shard == 0 else f"kapacitor-{shard}"


def raw_measurements(conf: Mapping[str, Any]) -> list[str]:
    """What the MQTT consumers let in: the series the tasks read and the router shards."""
    return sorted({m for c in conf["inputs"]["mqtt_consumer"] for m in c.get("namepass", [])})


def shard_outputs(template: Mapping[str, Any], shards: int, raw: list[str],
                  buffer_limit: int, host: Any = kapacitor_host) -> list[dict[str, Any]]:
    """One output per shard: its own buffer, only its own shard's raw metrics."""
    outputs = []
    for i in range(shards):
        out = {k: v for k, v in template.items() if k != "urls"}
        address = host(i) if ":" in host(i) else f"{host(i)}:9092"
        out.update(urls=[f"http://{address}"], metric_buffer_limit=buffer_limit,
                   namepass=raw, tagexclude=["shard"], tagpass={"shard": [str(i)]})
        outputs.append(out)
    return outputs


def router_conf(shards: int, base_text: str, buffer_limit: int = BUFFER_LIMIT,
                kapacitor_urls: list[str] | None = None) -> str:
    """telegraf.conf with the sharding processor and one Kapacitor output per shard.

    kapacitor_urls: shard i's base URL (default: the compose services, kapacitor-i:9092).
    """
    conf = tomllib.loads(base_text)
    raw = raw_measurements(conf)
    lines = [f"# Generated by scripts/shards.py --shards {shards} from deploy/telegraf/"
             "telegraf.conf: do not edit (make shards SHARDS=N).", ""]
    lines += block("[agent]", conf["agent"])
    for kind, plugins in conf["inputs"].items():
        for plugin in plugins:
            lines += block(f"[[inputs.{kind}]]", plugin)
    listener = {"service_address": f":{ROUTER_PORT}", "namepass": raw}
    lines += block("[[inputs.influxdb_listener]]", listener)
    starlark = {"namepass": raw, "script": "/etc/telegraf/shard.star",
                "constants": {"shards": shards, "key_tags": list(KEY_TAGS)}}
    lines += block("[[processors.starlark]]", starlark)
    for kind, plugins in conf["outputs"].items():
        for plugin in plugins:
            if kind == "influxdb" and is_kapacitor_output(plugin):
                host = (lambda i: kapacitor_urls[i].split("//", 1)[-1]) if kapacitor_urls \
                    else kapacitor_host
                for out in shard_outputs(plugin, shards, raw, buffer_limit, host):
                    lines += block("[[outputs.influxdb]]", out)
            else:
                lines += block(f"[[outputs.{kind}]]", plugin)
    return "\n".join(lines)


# --- docker-compose.shards.yml ---------------------------------------------------------------


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def shard_service(base: Mapping[str, Any], shard: int) -> dict[str, Any]:
    """A copy of the stack's kapacitor service for one more shard, with its own volume."""
    service = {k: copy.deepcopy(v) for k, v in base.items()
               if k not in ("build", "ports", "volumes")}
    service["environment"] = {**environment(base), "KAPACITOR_HOSTNAME": kapacitor_host(shard),
                              "KAPACITOR_SHARD": str(shard)}
    service["volumes"] = [f"{kapacitor_host(shard)}-data:/var/lib/kapacitor"]
    service["ports"] = [f"127.0.0.1:${{KAPACITOR_{shard}_PORT-}}:9092"]
    return service


def compose_override(shards: int, base: Mapping[str, Any]) -> str:
    kapacitor = base["services"]["kapacitor"]
    services: dict[str, Any] = {"kapacitor": {"environment": {"KAPACITOR_SHARD": "0"}}}
    for i in range(1, shards):
        services[kapacitor_host(i)] = shard_service(kapacitor, i)
    services["telegraf"] = {
        "volumes": ["./deploy/telegraf/router.conf:/etc/telegraf/telegraf.conf:ro",
                    "./deploy/helm/kapacitor-ml/files/shard.star:/etc/telegraf/shard.star:ro"],
        "depends_on": {kapacitor_host(i): {"condition": "service_healthy"}
                       for i in range(shards)},
        "ports": [f"127.0.0.1:${{ROUTER_PORT-{ROUTER_PORT}}}:{ROUTER_PORT}"],
    }
    document = {"version": base.get("version", "3.8"), "services": services,
                "volumes": {f"{kapacitor_host(i)}-data": None for i in range(1, shards)}}
    header = (f"# Generated by scripts/shards.py --shards {shards}: do not edit (make shards "
              "SHARDS=N).\n# docker compose -f docker-compose.yml -f docker-compose.shards.yml "
              "up --build\n")
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def write(shards: int, out_dir: Path, buffer_limit: int = BUFFER_LIMIT) -> list[Path]:
    """Both files under out_dir (a copy of the repo's layout); returns their paths."""
    router = out_dir / ROUTER_CONF.relative_to(ROOT)
    compose = out_dir / SHARDS_FILE.relative_to(ROOT)
    router.parent.mkdir(parents=True, exist_ok=True)
    base_text = (out_dir / TELEGRAF_CONF.relative_to(ROOT)).read_text()
    router.write_text(router_conf(shards, base_text, buffer_limit))
    base = yaml.safe_load((out_dir / COMPOSE_FILE.relative_to(ROOT)).read_text())
    compose.write_text(compose_override(shards, base))
    return [router, compose]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=2, help="number of Kapacitor shards")
    parser.add_argument("--buffer-limit", type=int, default=BUFFER_LIMIT,
                        help="points each shard's output keeps while its Kapacitor is down")
    parser.add_argument("--out-dir", type=Path, default=ROOT,
                        help="a directory laid out like the repo (default: the repo)")
    parser.add_argument("--moves", type=int, nargs=2, metavar=("FROM", "TO"),
                        help="print the simulator series that move between two shard counts")
    args = parser.parse_args(argv)
    if args.moves:
        keys = simulator_keys(sensors=100, machines=100)
        gone = moved(keys, *args.moves)
        print(f"{len(gone)} of {len(keys)} series move ({len(gone) / len(keys):.1%})")
        return 0
    if args.shards < 1:
        parser.error("--shards must be at least 1")
    for path in write(args.shards, args.out_dir, args.buffer_limit):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
