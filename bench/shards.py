"""Points/s of ads_model through the Telegraf shard router and 1, 2, ... Kapacitor shards.

    python bench/shards.py [--shards 1 2] [--series 500] [--points 400] [--rounds 2] [--direct]

The same path as docs/scaling.md, without Docker (so only the parts measured share the
cores): the bench POSTs line protocol to the router (real Telegraf with the starlark shard
processor and one output per shard, the plugin set of scripts/install_telegraf.sh), which
feeds N real kapacitord instances started by the entrypoint (KAPACITOR_SHARD=i), each running
one task: `environment` grouped by sensor through @ads_model(). `--series` sensors, `--points`
points each (one per second of their time, interleaved), all written at once; the clock runs
from the first write until the ads_model nodes of all shards together have collected every
point (their task stats). Shard counts alternate over `--rounds` rounds, so each count sees
the same machine load. The router, kapacitord and the UDFs share the machine's cores; the
writer's bodies are built before the clock starts.

`--direct` adds two paths in the same run: one router per shard (each series always through
the same one) and no router (the bench splits the points by the same hash).

On a larger machine: `python bench/shards.py --shards 1 2 4 8 --series 4000 --direct`
(make bench-shards BENCH_SHARDS="1 2 4 8").
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import ModuleType

from kapacitorkit.api import ApiError, KapacitorApi
from kapacitorkit.ports import free_port
from localstack.entrypoint import LocalEntrypoint, make_home
from localstack.process import Process

ROOT = Path(__file__).resolve().parent.parent
TASK = "bench_ads"
BATCH = int(os.environ.get("BENCH_BATCH", "1000"))
TICK = """var shard = '0'

stream
    |from()
        .measurement('environment')
        .groupBy('sensor')
    @ads_model()
        .field('temperature')
    |default()
        .tag('shard', shard)
    |httpOut('scores')
"""


def load_shards() -> ModuleType:
    spec = importlib.util.spec_from_file_location("shards", ROOT / "scripts/shards.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shards = load_shards()


def built(script: str, *args: str) -> str:
    out = subprocess.run(["bash", str(ROOT / "scripts" / script), *args], capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def lines_of(series: int, points: int) -> list[tuple[str, str]]:
    """(sensor, line): one point per sensor per second of their time, sensors interleaved."""
    rng = random.Random(3)
    t0 = 1_700_000_000 * 10**9
    return [(f"s{s}", f"environment,sensor=s{s} temperature="
             f"{22 + math.sin(k / 50 + s) + rng.gauss(0, 0.1):.3f},humidity=45 {t0 + k * 10**9}")
            for k in range(points) for s in range(series)]


def bodies(lines: list[str], per_body: int = 5000) -> list[bytes]:
    """POST-sized bodies, in order."""
    return ["\n".join(lines[i:i + per_body]).encode() for i in range(0, len(lines), per_body)]


def by_shard(lines: list[tuple[str, str]], count: int) -> list[list[bytes]]:
    """The bodies each shard gets, split by the router's hash (scripts/shards.py)."""
    parts: list[list[str]] = [[] for _ in range(count)]
    for sensor, line in lines:
        key = shards.series_key("environment", {"sensor": sensor})
        parts[shards.shard_of(key, count)].append(line)
    return [bodies(part) for part in parts]


def home_for(work: Path) -> Path:
    """The image's layout with a config.json of one task: ads_model over every sensor."""
    home = make_home(work)
    config = json.loads((ROOT / "config/config.json").read_text())
    (home / "tick_scripts" / f"{TASK}.tick").write_text(TICK)
    config["udfs"] = [u for u in config["udfs"] if u["name"] == "ads_model"]
    config["tasks"] = [{"name": TASK, "tick_script": f"{TASK}.tick", "type": "stream",
                        "dbrps": [{"db": "telemetry", "rp": "autogen"}], "udfs": ["ads_model"],
                        "enabled": True}]
    config["alert_handlers"] = []
    (home / "config" / "config.json").write_text(json.dumps(config))
    return home


def router_conf(kapacitors: list[str], port: int, batch: int = 1000) -> str:
    """The router of scripts/shards.py: listener -> shard.star -> one output per shard."""
    lines = shards.block("[agent]", {"flush_interval": "1s", "metric_batch_size": batch,
                                     "metric_buffer_limit": 2_000_000, "omit_hostname": True})
    lines += shards.block("[[inputs.influxdb_listener]]",
                          {"service_address": f"127.0.0.1:{port}", "namepass": ["environment"]})
    lines += shards.block("[[processors.starlark]]", {
        "namepass": ["environment"], "script": str(shards.SHARD_STAR),
        "constants": {"shards": len(kapacitors), "key_tags": list(shards.KEY_TAGS)}})
    template = {"database": "telemetry", "retention_policy": "autogen",
                "skip_database_creation": True}
    hosts = [url.split("//", 1)[-1] for url in kapacitors]
    for out in shards.shard_outputs(template, len(kapacitors), ["environment"], 2_000_000,
                                    lambda i: hosts[i]):
        lines += shards.block("[[outputs.influxdb]]", out)
    return "\n".join(lines)


def cpu_by_command(roots: list[int]) -> dict[str, float]:
    """CPU seconds (user + system) of the process trees under `roots`, by command name."""
    tick = os.sysconf("SC_CLK_TCK")
    procs: dict[int, tuple[int, str, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        procs[int(stat.parent.name)] = (int(fields[1]), name,
                                        (int(fields[11]) + int(fields[12])) / tick)
    wanted, found = set(roots), True
    while found:
        found = False
        for pid, (ppid, _, _) in procs.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                found = True
    totals: dict[str, float] = {}
    for pid in wanted & procs.keys():
        _, name, seconds = procs[pid]
        name = "udf (python)" if name.startswith("python") and pid not in roots else name
        totals[name] = totals.get(name, 0.0) + seconds
    return totals


def collected(api: KapacitorApi) -> int:
    """Points the task's ads_model node has received (Kapacitor's own node stats)."""
    try:
        stats = api.task(TASK).get("stats", {}).get("node-stats", {})
    except (ApiError, OSError):
        return 0
    return sum(int(v.get("collected", 0)) for k, v in stats.items() if k.startswith("ads_model"))


def post(url: str, body: bytes) -> None:
    """A write as Telegraf does it (Kapacitor needs the rp given: autogen)."""
    request = urllib.request.Request(f"{url}/write?db=telemetry&rp=autogen", data=body,
                                     method="POST")
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.status == 204, answer.status


def run(count: int, data: list[tuple[str, str]], kapacitor_bin: Path, telegraf: str,
        work: Path, mode: str) -> float:
    """points/s into `count` shards: through one router, one router per shard (each series
    always through the same one, so its order holds), or split by the bench (direct)."""
    entrypoints: list[LocalEntrypoint] = []
    routers: list[tuple[Process, str]] = []
    try:
        for i in range(count):
            shard_work = work / f"shard{i}"
            shard_work.mkdir(parents=True)
            entrypoints.append(LocalEntrypoint(home_for(shard_work), shard_work, kapacitor_bin,
                                               "", KAPACITOR_SHARD=str(i)))
        for entry in entrypoints:
            entry.wait_tasks([TASK], timeout=120)
        if mode == "direct":
            targets = [e.api.base for e in entrypoints]
        else:
            for r in range(1 if mode == "router" else count):
                routers.append(start_router(telegraf, work / f"router{r}",
                                            [e.api.base for e in entrypoints]))
            targets = [url for _, url in routers]
        roots = [*(r.proc.pid for r, _ in routers), *(e.proc.pid for e in entrypoints)]
        seconds = write_all(entrypoints, targets, by_shard(data, len(targets)), roots)
        return len(data) / seconds
    finally:
        for router, _ in routers:
            router.stop()
        for entry in entrypoints:
            entry.stop()


def start_router(telegraf: str, work: Path, kapacitors: list[str]) -> tuple[Process, str]:
    """A Telegraf router writing to `kapacitors`, listening; (process, its URL)."""
    work.mkdir(parents=True)
    port = free_port()
    conf = work / "router.conf"
    conf.write_text(router_conf(kapacitors, port, BATCH))
    router = Process([telegraf, "--config", str(conf)], work / "router.log")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not ping(url):
        if time.monotonic() > deadline:
            raise RuntimeError(f"router did not start:\n{router.log_text()[-2000:]}")
        time.sleep(0.1)
    return router, url


def write_all(entrypoints: list[LocalEntrypoint], targets: list[str],
              parts: list[list[bytes]], roots: list[int]) -> float:
    """Each part to its target, one writer thread each; seconds until the shards together
    collected every point. Prints the cores each kind of process used meanwhile."""
    total = sum(body.count(b"\n") + 1 for part in parts for body in part)
    before = cpu_by_command(roots)
    started = time.monotonic()
    writers = [threading.Thread(target=lambda u=u, p=p: [post(u, b) for b in p])
               for u, p in zip(targets, parts, strict=True)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    seconds = wait_all(entrypoints, total, started)
    after = cpu_by_command(roots)
    print(f"  {len(entrypoints)} shard(s), {len(targets)} writer(s): cores used: "
          + ", ".join(f"{k} {(v - before.get(k, 0.0)) / seconds:.2f}"
                      for k, v in sorted(after.items()) if v - before.get(k, 0.0) > 0.05)
          + f" (wall {seconds:.1f} s)", flush=True)
    return seconds


def ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=1):
            return True
    except OSError:
        return False


def wait_all(entrypoints: list[LocalEntrypoint], total: int, started: float) -> float:
    """Seconds from `started` until the shards together collected `total` points."""
    last, last_change = -1, time.monotonic()
    while True:
        done = sum(collected(e.api) for e in entrypoints)
        now = time.monotonic()
        if done >= total:
            return now - started
        if done != last:
            last, last_change = done, now
        elif now - last_change > 30:
            raise RuntimeError(f"stalled at {done} of {total} points")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--points", type=int, default=400, help="points per series")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--direct", action="store_true",
                        help="also without the router: the bench splits the points itself")
    args = parser.parse_args(argv)
    kapacitor_bin = Path(built("install_kapacitor.sh", "--check"))
    telegraf = built("install_telegraf.sh")
    data = lines_of(args.series, args.points)
    print(f"{args.series} series x {args.points} points = {len(data)} points; "
          f"{os.cpu_count()} cores; ads_model; load average {os.getloadavg()[0]:.1f} at start")
    modes = ["router", "routers", "direct"] if args.direct else ["router", "routers"]
    results: dict[tuple[str, int], list[float]] = {(m, n): [] for m in modes for n in args.shards}
    for round_ in range(args.rounds):
        for mode, count in results:
            work = Path(tempfile.mkdtemp(prefix=f"bench-shards-{count}-"))
            try:
                rate = run(count, data, kapacitor_bin, telegraf, work, mode)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            results[(mode, count)].append(rate)
            print(f"round {round_ + 1}: {mode}, {count} shard(s): {rate:,.0f} points/s",
                  flush=True)
    for mode in modes:
        base = statistics.median(results[(mode, args.shards[0])])
        for count in args.shards:
            rates = results[(mode, count)]
            print(f"{mode}: {count} shard(s): median {statistics.median(rates):,.0f} points/s "
                  f"({statistics.median(rates) / base:.2f}x {args.shards[0]}); all: "
                  + ", ".join(f"{r:,.0f}" for r in rates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
