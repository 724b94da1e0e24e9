"""Run one sample end to end: the entrypoint on the sample's config.json, its points in,
each task's results out. Usage: python Samples/run_sample.py Samples/<name> [--keep]

Servers of its own on free loopback ports: kapacitord (KAPACITORD, the build of
scripts/install_kapacitor.sh, or PATH) through the entrypoint, and influxd (Debian's
influxdb) unless INFLUXDB_URL names one. KAPACITOR_HTTP_BIND picks Kapacitor's address; if
that port is taken the sample stops at once, naming it, and touches nothing there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from entrypoint.settings import url_from_bind
from kapacitorkit.api import KapacitorApi
from kapacitorkit.ports import PortInUse, ensure_free, free_port
from localstack import ROOT
from localstack.influxd import LocalInfluxd, query, series_rows, subscribed, write
from localstack.kapacitord import find_kapacitord


def influx_ready(url: str, db: str) -> None:
    """Fail early with advice if InfluxDB is not there; create the sample's database."""
    try:
        urllib.request.urlopen(f"{url}/ping", timeout=3).close()
    except OSError as exc:
        sys.exit(f"run_sample: no InfluxDB at INFLUXDB_URL={url} ({exc}); unset it to let "
                 "the sample start its own influxd")
    query(url, f'CREATE DATABASE "{db}"')


def timestamped(points: Path) -> tuple[str, int]:
    """The sample's points one second apart, ending now; and the first timestamp (s)."""
    lines = [ln for ln in points.read_text().splitlines() if ln.strip()]
    first = int(time.time()) - len(lines)
    return "".join(f"{ln} {first + i}\n" for i, ln in enumerate(lines)), first


def output_databases(sample: Path) -> list[str]:
    """The databases the sample's TICKscripts write to (each sample has its own)."""
    found = {m for tick in sample.glob("*.tick")
             for m in re.findall(r"\.database\('([^']+)'\)", tick.read_text())}
    return sorted(found)


def output_measurements(sample: Path) -> set[str]:
    """The measurements the sample's influxDBOut nodes write."""
    chains = (c for tick in sample.glob("*.tick")
              for c in re.findall(r"influxDBOut\(\)((?:\s*\.\w+\([^)]*\))*)", tick.read_text()))
    return {m for chain in chains for m in re.findall(r"\.measurement\('([^']+)'\)", chain)}


def results(url: str, databases: list[str], since: int) -> list[str]:
    """Every output row written since `since`, one JSON line each, by measurement."""
    lines = []
    for db in databases:
        lines.extend(_rows(query(url, f"SELECT * FROM /.*/ WHERE time >= {since}s", db)))
    return lines


def _rows(answer: dict) -> list[str]:
    return [f"{name}: {json.dumps(_shown(row), sort_keys=True)}"
            for name, row in series_rows(answer)]


def _shown(row: dict) -> dict:
    return {k: v for k, v in row.items() if v is not None and k != "time"}


def settled_results(url: str, databases: list[str], since: int, measurements: set[str],
                    quiet: float = 1.5, timeout: float = 15.0) -> list[str]:
    """Poll until every output measurement has rows (a task whose UDF loads a model in Init
    is slower than one that does not) and they stopped growing for `quiet` seconds."""

    def complete(lines: list[str]) -> bool:
        return bool(lines) and measurements <= {line.split(":", 1)[0] for line in lines}

    deadline = time.monotonic() + timeout
    last, stable_since = results(url, databases, since), time.monotonic()
    while time.monotonic() < deadline and (not complete(last)
                                           or time.monotonic() - stable_since < quiet):
        time.sleep(0.3)
        now = results(url, databases, since)
        if now != last:
            last, stable_since = now, time.monotonic()
    return last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sample", type=Path)
    parser.add_argument("--keep", action="store_true", help="leave it running (Ctrl-C stops)")
    args = parser.parse_args()
    config = json.loads((args.sample / "config.json").read_text())
    bind = os.environ.get("KAPACITOR_HTTP_BIND") or f"127.0.0.1:{free_port()}"
    try:
        ensure_free(bind, "run_sample: Kapacitor's HTTP address (KAPACITOR_HTTP_BIND)")
    except PortInUse as exc:
        sys.exit(str(exc))
    work = Path(tempfile.mkdtemp(prefix="sample-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        influx_url = os.environ.get("INFLUXDB_URL")
        if not influx_url:
            (work / "influxd").mkdir()
            try:
                influxd = LocalInfluxd(work / "influxd")
            except RuntimeError as exc:
                sys.exit(f"run_sample: {exc}")
            stack.callback(influxd.stop)
            influx_url = influxd.url
        return run(args, config, bind, influx_url, work)


def run(args: argparse.Namespace, config: dict, bind: str, influx_url: str, work: Path) -> int:
    """The entrypoint on the sample, its points in, the rows out; stopped at the end."""
    databases = output_databases(args.sample)
    for db in ("telemetry", *databases):
        influx_ready(influx_url, db)
    env = {**os.environ, "KAPACITOR_CONFIG_JSON": str(args.sample.resolve() / "config.json"),
           "KAPACITOR_UDFS_HOME": str(ROOT), "KAPACITOR_CONF_DIR": str(work / "conf"),
           "KAPACITOR_DATA_DIR": str(work / "data"), "KAPACITORD": find_kapacitord(),
           "KAPACITOR_HTTP_BIND": bind, "INFLUXDB_URL": influx_url, "LOG_LEVEL": "ERROR"}
    env.pop("KAPACITOR_URL", None)
    via_influxdb = config.get("ingest") == "influxdb_subscriptions"
    if via_influxdb:  # InfluxDB must reach Kapacitor back at hostname:port
        env.setdefault("KAPACITOR_HOSTNAME", urllib.parse.urlsplit(url_from_bind(bind)).hostname)
    proc = subprocess.Popen([sys.executable, "-m", "entrypoint"], cwd=ROOT, env=env)
    api = KapacitorApi(url_from_bind(bind))
    try:
        api.wait_ready(60, alive=lambda: proc.poll() is None)
        stuck = api.not_executing(t["name"] for t in config["tasks"])
        if stuck:
            sys.exit(f"run_sample: task(s) {', '.join(stuck)} not executing after 30 s")
        lines, since = timestamped(args.sample / "points.lp")
        if via_influxdb:  # EII's path: points go to InfluxDB only, which forwards them
            if not subscribed(influx_url, "telemetry", ":" + api.base.rsplit(":", 1)[-1]):
                sys.exit("run_sample: Kapacitor did not subscribe to InfluxDB within 30 s")
            write(influx_url, lines, db="telemetry", precision="s")
        else:
            api.write(lines, db="telemetry", precision="s")
        print("\n".join(settled_results(influx_url, databases, since,
                                         output_measurements(args.sample))), flush=True)
        if args.keep:
            print(f"Kapacitor at {api.base}, InfluxDB at {influx_url}; Ctrl-C stops", flush=True)
            return proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
