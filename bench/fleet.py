"""ads_model as a fleet feeds it: one point per series per tick, series interleaved, one task.

    python bench/fleet.py [--series 10,1000,10000,100000] [--ticks 30] [--full 1000]
                          [--churn 1000000] [--split 10,10000] [--kapacitor 10000]

Per series count, over stdio (the code path kapacitord drives): ads_model is warmed past
learning (learn + 2 ticks, not timed), then `ticks` ticks are timed; the mirror UDF gets the
same points in the same run, as the baseline, the two in turns, best of two each. Printed:
points/s of each and their ratio, RSS per series (the UDF's resident set after the feed,
less its size after Init, per series; and the same for a fresh process that restored the
snapshot, which holds the state without the heap the feed left behind), and the time the
task waits for a snapshot and for a restore of the whole state, with its size. `--full`: the
same for series fed past `history` (4,096 points each), the memory bound. `--churn`: that
many distinct series over the run, 1,000 live at any time (each sends 4 points, forget_after
10 s of its own time): RSS along the run.
`--split`: for those series counts, where a point's time goes inside ads_model's worker,
in-process, step by step (read the columns, check the values, group and time, detector, annotate,
frame, free), and the mirror's (parse, serialise, free).
`--kapacitor N`: end to end through a real kapacitord, a stream task grouped by host over N
series with @ads_model() against the same task with @mirror() and with a mirror that adds
ads_model's two fields (what they cost Kapacitor), in the same run, timed right after learning
and again once five blocks are full, with the CPU each process spent per point; then the
ads_model task is snapshotted by Kapacitor, kapacitord restarted, and the restored task must
flag a spike on its first point after the restart (snapshot size, the time Kapacitor took to
store it and to restore it, from its log).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
from stdio_driver import handshake

from localstack.process import cpu_seconds
from udfkit import framing, udf_pb2

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000 * 10**9
TICK = 10**9
INFO, SNAPSHOT, RESTORE = 1, 4, 5  # Request/Response oneof numbers
SNAPSHOT_INTERVAL_S = 10


@dataclass
class Fleet:
    """Series of one task: their points per tick, as framed requests."""

    series: int
    offset: int = 0  # the first series' number (the churn feed moves it)

    def templates(self) -> list[udf_pb2.Point]:
        points = []
        for s in range(self.offset, self.offset + self.series):
            p = udf_pb2.Point(name="environment", database="telemetry",
                              retentionPolicy="autogen", group=f"host=h{s}")
            p.tags["host"] = f"h{s}"
            p.dimensions.append("host")
            points.append(p)
        return points

    def ticks(self, first: int, count: int, seed: int = 0) -> Iterator[bytes]:
        """The framed points of ticks first .. first + count - 1, one tick per item."""
        rng = np.random.default_rng(seed + first)
        templates = self.templates()
        level = 20 + (np.arange(self.series) % 17)
        for tick in range(first, first + count):
            values = (level + rng.normal(0, 0.5, self.series)).tolist()
            parts = []
            for p, v in zip(templates, values, strict=True):
                p.time = T0 + tick * TICK
                p.fieldsDouble["value"] = v
                parts.append(framing.frame_point_response(p.SerializeToString()))
            yield b"".join(parts)


class Udf:
    """A UDF process driven over stdio: feed points and count them back, ask for state."""

    def __init__(self, script: str, options: dict | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-u", f"udfs/{script}"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.decoder = framing.FrameDecoder(max_frame=1 << 31)
        self.fd = self.proc.stdout.fileno()
        self.request(handshake(options), kind=2)

    def feed(self, chunks: Iterator[bytes] | list[bytes], expected: int) -> float:
        """Seconds from the first byte written to the last of `expected` points back."""
        writer = threading.Thread(target=self._write, args=(chunks,), daemon=True)
        start = time.perf_counter()
        writer.start()
        seen = 0
        while seen < expected:
            data = os.read(self.fd, 1 << 20)
            if not data:
                raise RuntimeError(f"UDF closed its output after {seen} of {expected} points")
            seen += sum(framing.frame_kind(f) == framing.POINT for f in self.decoder.feed(data))
        seconds = time.perf_counter() - start
        writer.join()
        return seconds

    def _write(self, chunks: Iterator[bytes] | list[bytes]) -> None:
        for chunk in chunks:
            self.proc.stdin.write(chunk)
        self.proc.stdin.flush()

    def request(self, frame: bytes, kind: int) -> tuple[bytes, float]:
        """Send one request; the response of that kind and how long it took."""
        start = time.perf_counter()
        self.proc.stdin.write(frame)
        self.proc.stdin.flush()
        while True:
            for message in self.decoder.feed(os.read(self.fd, 1 << 22)):
                if framing.frame_kind(message) == kind:
                    return bytes(message), time.perf_counter() - start

    def snapshot(self) -> tuple[bytes, float]:
        request = framing.frame(udf_pb2.Request(
            snapshot=udf_pb2.SnapshotRequest()).SerializeToString())
        message, seconds = self.request(request, SNAPSHOT)
        return udf_pb2.Response.FromString(message).snapshot.snapshot, seconds

    def restore(self, data: bytes) -> float:
        request = framing.frame(udf_pb2.Request(
            restore=udf_pb2.RestoreRequest(snapshot=data)).SerializeToString())
        message, seconds = self.request(request, RESTORE)
        assert udf_pb2.Response.FromString(message).restore.success
        # answered once the restore's own buffers (the request, the state's bytes) are freed:
        # the worker answers Restore before it lets go of them
        self.request(framing.frame(udf_pb2.Request(info=udf_pb2.InfoRequest())
                                   .SerializeToString()), INFO)
        return seconds

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def close(self) -> None:
        self.proc.stdin.close()
        while os.read(self.fd, 1 << 20):
            pass
        self.proc.wait(timeout=60)


def fleet_row(series: int, ticks: int, warm: int, label: str = "", rounds: int = 2) -> None:
    """One row: ads_model and the mirror fed the same ticks in turns (`rounds` times each,
    best of each kept, so that a busy moment of the machine does not decide the ratio)."""
    fleet = Fleet(series)
    warmup = list(fleet.ticks(0, warm))
    timed = [list(fleet.ticks(warm + r * ticks, ticks)) for r in range(rounds)]
    ads, mirror = Udf("ads_model.py"), Udf("mirror.py")
    base = ads.rss_kib()
    ads.feed(warmup, series * warm)
    n = series * ticks
    ads_s = mirror_s = float("inf")
    for chunks in timed:
        ads_s = min(ads_s, ads.feed(chunks, n))
        mirror_s = min(mirror_s, mirror.feed(chunks, n))
    rss = ads.rss_kib()
    mirror.close()
    data, snap_s = ads.snapshot()
    ads.close()
    fresh = Udf("ads_model.py")
    fresh_base = fresh.rss_kib()
    restore_s = fresh.restore(data)
    restored_kib = (fresh.rss_kib() - fresh_base) / series
    fresh.close()
    print(f"{label or f'{series:,}':>10}  {n / ads_s:>9,.0f}  {n / mirror_s:>9,.0f}  "
          f"{mirror_s / ads_s:>6.0%}  {(rss - base) / series:>9.2f}  "
          f"{restored_kib:>8.2f}  "
          f"{rss / 1024:>7.0f}  {snap_s:>7.2f}  {restore_s:>7.2f}  {len(data) / 2**20:>8.1f}",
          flush=True)


def churn_row(distinct: int, live: int = 1000, life: int = 4, batch: int = 20) -> None:
    """`distinct` series over the run, `live` at a time, each sending `life` points. The feed
    goes `batch` ticks at a time, each sent once the last is answered, so that RSS is the
    UDF's state rather than points waiting in its input queue."""
    ads = Udf("ads_model.py", {"forget_after": timedelta(seconds=10)})
    per_tick = live // life
    ticks = distinct // per_tick
    samples, points, seconds = [], 0, 0.0
    for first in range(0, ticks, batch):
        chunks, expected = [], 0
        for tick in range(first, min(first + batch, ticks)):
            alive = min(tick + 1, life) * per_tick  # the series alive at this tick
            chunks.extend(Fleet(alive, max(0, tick - life + 1) * per_tick).ticks(tick, 1))
            expected += alive
        seconds += ads.feed(chunks, expected)
        points += expected
        samples.append(ads.rss_kib())
    ads.close()
    after = samples[len(samples) // 10:]
    print(f"churn: {distinct:,} series, {live:,} live (forget_after 10 s): "
          f"{points / seconds:,.0f} points/s; RSS MiB at 10%/50%/100% of the run "
          f"{after[0] / 1024:.0f} / {samples[len(samples) // 2] / 1024:.0f} / "
          f"{samples[-1] / 1024:.0f} (lowest to highest after 10%: "
          f"{min(after) / 1024:.0f} to {max(after) / 1024:.0f})")


def line_protocol(series: int, first: int, ticks: int, seed: int = 0,
                  measurement: str = "environment") -> list[bytes]:
    """The fleet's ticks as line protocol, about 1 MiB per write."""
    rng = np.random.default_rng(seed + first)
    level = 20 + (np.arange(series) % 17)
    hosts = [f"{measurement},host=h{s} value=" for s in range(series)]
    writes, lines = [], []
    for tick in range(first, first + ticks):
        stamp = f" {T0 + tick * TICK}\n"
        values = (level + rng.normal(0, 0.5, series)).tolist()
        lines.extend(f"{h}{v:.4f}{stamp}" for h, v in zip(hosts, values, strict=True))
        if len(lines) * 40 > 1 << 20:
            writes.append("".join(lines).encode())
            lines = []
    if lines:
        writes.append("".join(lines).encode())
    return writes


PHASES = (64 + 2, 5 * 64)
"""Where end-to-end rates are timed: right after learning (the first blocks give narrow
ranges, so more series are in an anomalous period) and once five blocks are full."""


def kapacitor_rows(series: int, ticks: int, rounds: int = 3) -> None:
    import tempfile

    from localstack.kapacitord import LocalKapacitord, kapacitor_bin_dir, udf_function

    print(f"\n== end to end through kapacitord: {series:,} series grouped by host, "
          f"{ticks} ticks timed from tick {' and from '.join(map(str, PHASES))}, "
          f"the tasks in turns, best of {rounds}")
    with tempfile.TemporaryDirectory() as work:
        functions = [udf_function("ads_model", "ads_model.py", timeout="60s"),
                     udf_function("mirror", "mirror.py", timeout="60s"),
                     replace(udf_function("mirror_fields", "mirror.py", timeout="60s"),
                             args=("-u", str(ROOT / "bench" / "mirror_fields.py")))]
        kap = LocalKapacitord(kapacitor_bin_dir(), Path(work), functions,
                              snapshot_interval=f"{SNAPSHOT_INTERVAL_S}s")
        try:
            tasks = {udf: _fleet_task(kap, udf) for udf in ("mirror", "mirror_fields",
                                                              "ads_model")}
            fed = dict.fromkeys(tasks, 0)
            tick = 0
            for phase in PHASES:
                for udf, task in tasks.items():
                    fed[udf] += series * (phase - tick)
                    _write_all(kap, task, line_protocol(series, tick, phase - tick,
                                                        measurement=udf), fed[udf])
                tick = phase + rounds * ticks
                _timed_phase(kap, tasks, fed, series, phase, ticks, rounds)
            for udf in ("mirror", "mirror_fields"):
                kap.api.delete_task(tasks[udf])
            _snapshot_and_restart(kap, series, tick, task=tasks["ads_model"],
                                  measurement="ads_model")
        finally:
            kap.stop()


def _timed_phase(kap, tasks: dict[str, str], fed: dict[str, int], series: int, first: int,
                 ticks: int, rounds: int) -> None:
    """Each task fed `rounds` times `ticks` ticks from tick `first`, in turns: its best rate
    and the CPU kapacitord and its UDF spent per point."""
    best = dict.fromkeys(tasks, 0.0)
    cpu = {udf: [0.0, 0.0] for udf in tasks}  # CPU s of kapacitord, of the UDF
    for r in range(rounds):
        for udf, task in tasks.items():
            writes = line_protocol(series, first + r * ticks, ticks, measurement=udf)
            fed[udf] += series * ticks
            before = cpu_seconds(kap.proc.pid), cpu_seconds(_udf_pid(udf))
            start = time.perf_counter()
            _write_all(kap, task, writes, fed[udf])
            best[udf] = max(best[udf], series * ticks / (time.perf_counter() - start))
            after = cpu_seconds(kap.proc.pid), cpu_seconds(_udf_pid(udf))
            for i in (0, 1):
                cpu[udf][i] += after[i] - before[i]
    timed = series * ticks * rounds / 1e6
    print(f"from tick {first}: @ads_model() {best['ads_model']:,.0f} points/s, @mirror() "
          f"{best['mirror']:,.0f}: {best['ads_model'] / best['mirror']:.0%}; the mirror adding "
          f"ads_model's two fields (bench/mirror_fields.py) {best['mirror_fields']:,.0f}: "
          f"{best['ads_model'] / best['mirror_fields']:.0%}", flush=True)
    for udf, (kapacitord, own) in cpu.items():
        print(f"  CPU per point, {udf} task: kapacitord {kapacitord / timed:.1f} µs, "
              f"the UDF {own / timed:.1f} µs", flush=True)


def _udf_pid(udf: str) -> int:
    """The process of UDF script `udf` (kapacitord's child; one task runs each here)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if f"/{udf}.py\0".encode() in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except OSError:
            continue
    raise LookupError(f"no process runs {udf}.py")


def _fleet_task(kap, udf: str) -> str:
    """A stream task grouped by host through @udf(), reading measurement `udf`."""
    task = f"fleet_{udf}"
    script = (f"var scored = stream\n    |from()\n        .measurement('{udf}')"
              f"\n        .groupBy('host')\n    @{udf}()\n"
              "scored\n    |count('value')\nscored\n    |httpOut('last')\n")
    kap.api.define_task(task, script, [{"db": "telemetry", "rp": "autogen"}], enabled=True)
    kap.api.wait_task(task)
    return task


def kapacitor_full_row(series: int) -> None:
    """A task whose ads_model holds `series` series with `history` full, through kapacitord:
    the state is learnt in-process (feeding 4,160 points per series through Kapacitor's HTTP
    write would take most of an hour) and handed to the task's UDF as its state file; then
    Kapacitor snapshots the task, kapacitord restarts without the file, and the task must go
    on from Kapacitor's snapshot alone."""
    import shutil
    import tempfile

    from localstack.kapacitord import LocalKapacitord, kapacitor_bin_dir, udf_function

    ticks = 4096 + 64
    print(f"\n== through kapacitord, {series:,} series with history full ({ticks} points each, "
          "learnt in-process)", flush=True)
    with tempfile.TemporaryDirectory() as work:
        state_dir = Path(work) / "udf-state"
        functions = [udf_function("ads_model", "ads_model.py", timeout="120s",
                                  env={"UDF_STATE_DIR": str(state_dir)})]
        kap = LocalKapacitord(kapacitor_bin_dir(), Path(work), functions,
                              snapshot_interval=f"{SNAPSHOT_INTERVAL_S}s")
        try:
            task = "fleet_full"
            script = ("var scored = stream\n    |from()\n        .measurement('environment')"
                      "\n        .groupBy('host')\n    @ads_model()\n"
                      "scored\n    |httpOut('last')\n")
            kap.api.define_task(task, script, [{"db": "telemetry", "rp": "autogen"}],
                                enabled=True)
            kap.api.wait_task(task)
            node = next(n for n in kap.api.task(task)["stats"]["node-stats"]
                        if n.startswith("ads_model"))
            kap.api.set_status(task, False)
            size = _learnt_state_file(state_dir, task, node, series, ticks)
            kap.api.set_status(task, True)
            loaded = _wait_line(kap.log_path, "state loaded from", 300)
            print(f"state file of {size / 2**20:.0f} MiB given to the task: {loaded}", flush=True)
            time.sleep(2 * SNAPSHOT_INTERVAL_S + 5)  # Kapacitor's first snapshot of the task
            kap.stop()
            shutil.rmtree(state_dir)  # only Kapacitor's snapshot is left
            _snapshot_and_restart(kap, series, ticks, task=task, restart_only=True)
        finally:
            kap.stop()


def _learnt_state_file(root: Path, task: str, node: str, series: int, ticks: int) -> int:
    """Learn `ticks` points of each series in-process and save the UDF's state file."""
    import importlib.util

    from udfkit import snapshot, statefile
    from udfkit.options import parse_options

    spec = importlib.util.spec_from_file_location("ads_model", ROOT / "udfs" / "ads_model.py")
    assert spec is not None and spec.loader is not None
    ads_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ads_model)
    handler = ads_model.AdsModel()
    handler.init(parse_options(handler.options, []), None)
    keys = [f"host=h{s}" for s in range(series)]
    level = 20 + (np.arange(series) % 17)
    rng = np.random.default_rng(0)
    for tick in range(ticks):
        times = [T0 + tick * TICK] * series
        slots = handler.groups.slots(keys, times)
        handler.detector.score_and_learn(slots, times, level + rng.normal(0, 0.5, series))
    payload = snapshot.encode(handler.name, handler.snapshot_version, handler.state())
    path = statefile.path_for(root, task, node)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(statefile.encode(payload, statefile.options_digest([])))
    return len(payload)


def _write_all(kap, task: str, writes: list[bytes], total: int, timeout: float = 900) -> None:
    from agent_throughput import _collected

    for data in writes:
        kap.api.write(data, db="telemetry")
    deadline = time.monotonic() + timeout
    while _collected(kap, task) < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{task}: {_collected(kap, task)} of {total} points")
        time.sleep(0.05)


def _snapshot_and_restart(kap, series: int, tick: int, task: str, restart_only: bool = False,
                          measurement: str = "environment") -> None:
    """Restart kapacitord once it has stored the task's snapshot; check the state is back:
    the restore's log line, and a spike flagged on the first point after the restart."""
    log = kap.log_path
    if not restart_only:
        # Kapacitor signals no snapshot; its first comes within two intervals of the task's
        # start and the feed above took longer: one more interval makes sure one is stored
        time.sleep(SNAPSHOT_INTERVAL_S + 1)
        kap.stop()
    store = Path(kap.data_dir) / "kapacitor.db"
    size = store.stat().st_size if store.exists() else 0
    start = time.perf_counter()
    kap.start(timeout=120)
    kap.api.wait_task(task, timeout=300)
    restored = _wait_line(log, "state restored from a", 300)
    seconds = time.perf_counter() - start
    spike = f"{measurement},host=h0 value=99 {T0 + tick * TICK}\n".encode()
    kap.api.write(spike, db="telemetry")
    flagged = _wait_flagged(kap, task, "h0", 60)
    print(f"Kapacitor snapshot: {restored}; kapacitord's store {size / 2**20:.0f} MiB; "
          f"start to state restored {seconds:.1f} s; a spike on the first point after "
          f"the restart {'flagged' if flagged else 'NOT flagged'} ({series:,} series)",
          flush=True)


def _wait_flagged(kap, task: str, host: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [r for r in kap.api.http_out_rows(task, "last") if r.get("host") == host]
        if rows and rows[0].get("value") == 99:
            return bool(rows[0].get("is_anomaly"))
        time.sleep(0.2)
    return False


def _wait_line(log: Path, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in log.read_text(errors="replace").splitlines() if text in line]
        if found:
            return found[-1].split(text, 1)[1].strip().rstrip('"')[:80]
        time.sleep(0.2)
    raise TimeoutError(f"no {text!r} in {log}")


def split_row(series: int, ticks: int, call: int = 16384, rounds: int = 5) -> None:
    """Where a point's time goes inside ads_model's process, in-process (the worker's steps
    one by one, best of `rounds`), and the mirror's for comparison."""
    from udfkit.agent import Agent
    from udfkit.columns import Columns

    sys.path.insert(0, str(ROOT / "udfs"))
    from ads_model import AdsModel

    agent = Agent(AdsModel, 0, 1)
    agent._init(udf_pb2.Request(init=udf_pb2.InitRequest(taskID="t", nodeID="n")))
    handler = agent.handler
    frames = [framing.FrameDecoder().feed(b"".join(Fleet(series).ticks(first, count)))
              for first, count in ((0, 64 + 2), (64 + 2, ticks))]
    parse = udf_pb2.Request.FromString
    best: dict[str, float] = {}
    for r in range(rounds + 1):
        spent = dict.fromkeys(("read columns", "check values", "group and time", "detector",
                               "annotate", "frame", "free", "mirror: parse", "mirror: serialise",
                               "mirror: free"), 0.0)
        for start in range(0, len(frames[min(r, 1)]), call):
            run = frames[min(r, 1)][start:start + call]
            stamps = [time.perf_counter()]
            points = Columns(run, handler.column)
            stamps.append(time.perf_counter())
            kept, groups, times, values = handler._read(points)
            stamps.append(time.perf_counter())
            slots = handler.groups.slots(groups, times)
            stamps.append(time.perf_counter())
            scored = handler.detector.score_and_learn(slots, times, values)
            stamps.append(time.perf_counter())
            out = handler._annotate(kept, scored)
            stamps.append(time.perf_counter())
            agent._emit(out, 0, (points, run))
            agent._out.pending.clear()
            stamps.append(time.perf_counter())
            del points, kept, groups, times, values, slots, out, scored
            stamps.append(time.perf_counter())
            mirror = [parse(message).point for message in run]
            stamps.append(time.perf_counter())
            mirrored = [framing.frame_point_response(p.SerializeToString()) for p in mirror]
            stamps.append(time.perf_counter())
            del mirrored, mirror
            stamps.append(time.perf_counter())
            for key, t0, t1 in zip(spent, stamps[:-1], stamps[1:], strict=True):
                spent[key] += t1 - t0
        if r:  # the first pass is the learning, not timed
            for key, seconds in spent.items():
                best[key] = min(best.get(key, np.inf), seconds / len(frames[1]) * 1e6)
    ads = sum(us for key, us in best.items() if not key.startswith("mirror"))
    print(f"{series:>10,}  " + "  ".join(f"{key} {us:.2f}" for key, us in best.items())
          + f"  (ads_model {ads:.2f}, mirror {sum(best.values()) - ads:.2f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default="10,1000,10000,100000")
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--full", type=int, default=1000,
                        help="series fed past history (0: skip)")
    parser.add_argument("--churn", type=int, default=1_000_000, help="0: skip")
    parser.add_argument("--kapacitor", type=int, default=10_000,
                        help="series through a real kapacitord (0: skip)")
    parser.add_argument("--split", default="10,10000",
                        help="series counts for the in-process split of a point's time ('' "
                             "to skip)")
    args = parser.parse_args()
    counts = [int(c) for c in args.series.split(",") if c]
    print(f"== ads_model for a fleet, over stdio: one point per series per tick; "
          f"{args.ticks} ticks timed after {64 + 2} of learning")
    print(f"{'series':>10}  {'ads pts/s':>9}  {'mirror':>9}  {'ratio':>6}  "
          f"{'KiB/series':>9}  {'restored':>8}  {'RSS MiB':>7}  {'snap s':>7}  {'restore':>7}  "
          f"{'snap MiB':>8}")
    for series in counts:
        ticks = max(args.ticks, 200_000 // series) if series < 1000 else args.ticks
        fleet_row(series, ticks, 64 + 2)
    if args.full:
        fleet_row(args.full, args.ticks, 4096 + 64, label=f"{args.full} full")
    if args.churn:
        churn_row(args.churn)
    if args.split:
        print("\n== where a point's time goes in ads_model's worker, then in the mirror's, "
              "µs per point, in-process (best of 5)")
        for series in map(int, args.split.split(",")):
            split_row(series, max(args.ticks, 300_000 // series))
    if args.kapacitor:
        kapacitor_rows(args.kapacitor, args.ticks)
        kapacitor_full_row(args.kapacitor)


if __name__ == "__main__":
    main()
