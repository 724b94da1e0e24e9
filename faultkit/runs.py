"""The fault table's runs against real kapacitord and the entrypoint (bench/faults.py prints
them; the tests run them with small counts).

Malformed points go in by line protocol through /write, in one write and one point a
write, into a task per UDF ending in httpPost() to a loopback collector; a clean task
gets the same good points alone, and the two outputs are compared point by point. The
recovery runs kill or hang a UDF (faultkit/udfs/probe.py) or kill kapacitord under the
entrypoint and time how long it takes to come back; the soak counts points in and out.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from faultkit import PROBE
from faultkit.collector import Collector
from faultkit.protocol import ai4i_values
from kapacitorkit.api import ApiError
from localstack.entrypoint import LocalEntrypoint, make_home
from localstack.kapacitord import LocalKapacitord, udf_function
from localstack.polling import wait_for

RFC_FIELDS = ("air_temperature", "process_temperature", "rotational_speed", "torque",
              "tool_wear")
BAD_LP = {
    "missing": None,
    "string": '"12.5"',
    "bool": "true",
    "huge": "1e308",
    "-huge": "-1e308",
}
"""Bad values line protocol can carry (it has no NaN or infinity: the protocol-level
cases in faultkit.protocol cover those)."""
REFUSED_LP = {"NaN": "NaN", "+inf": "+Inf", "-inf": "-Inf", "100 KB tag": None}
"""What Kapacitor's parser refuses (HTTP 400, the whole write): each is sent on its own."""

UDF_TASKS = {
    "rfc_classifier": ("telemetry", "machine", "torque", "@rfc_classifier()"),
    "ads_model": ("sensors", "sensor", "value", "@ads_model().field('value').learn(150)"),
}


def tick(udf: str, url: str) -> str:
    measurement, tag, _, call = UDF_TASKS[udf]
    return (f"stream\n    |from()\n        .measurement('{measurement}')\n"
            f"        .groupBy('{tag}')\n    {call}\n    |httpPost('{url}')\n")


def _good_line(udf: str, rng: random.Random, i: int, base_ns: int) -> str:
    if udf == "rfc_classifier":
        product_type, values = ai4i_values(rng)
        fields = ",".join(f"{n}={v!r}" for n, v in values.items())
        return f"telemetry,machine=m{i % 5} product_type={product_type}i,{fields}"
    value = 20.0 + 5.0 * math.sin(i / 50.0) + rng.gauss(0.0, 0.3)
    return f"sensors,sensor=s{i % 3} value={value!r}"


def _with_tag(line: str, size: int) -> str:
    name, rest = line.split(",", 1)
    return f"{name},note={'x' * size},{rest}"


def _odd(line: str, rng: random.Random, t: int) -> tuple[str, int]:
    """A good line made odd where no UDF looks: an 8 KB tag or a time before 1970."""
    if rng.random() < 0.5:
        return _with_tag(line, 8192), t
    return line, -t


def _spoil(line: str, field_name: str, value: str | None) -> str:
    head, fields = line.split(" ", 1)
    kept = [f for f in fields.split(",") if not f.startswith(field_name + "=")]
    if value is not None:
        kept.append(f"{field_name}={value}")
    if not kept:
        kept = ["filler=1"]
    return f"{head} {','.join(kept)} "


@dataclass
class PointsRun:
    udf: str
    per_write: bool
    good: int
    bad: int
    good_out: int = 0
    changed: int = 0  # good points missing from the output or scored differently
    bad_counted: int = 0  # bad points the UDF counted as failed (dropped or passed on)
    bad_scored: int = 0  # bad points that came out with a score: never allowed
    refusable: int = 0  # lines Kapacitor's parser cannot take, each in its own write
    refused_writes: int = 0  # writes Kapacitor refused (HTTP 400)
    deaths: int = 0
    reasons: dict[str, str] = field(default_factory=dict)  # a reason per bad kind (rfc)

    @property
    def ok(self) -> bool:
        return (self.changed == 0 and self.bad_counted == self.bad and self.bad_scored == 0
                and self.deaths == 0 and self.good_out == self.good
                and self.refused_writes == self.refusable)


def refused_lines(udf: str, count: int, seed: int = 12) -> list[str]:
    """Lines Kapacitor's parser refuses: NaN, infinities, a 100 KB tag."""
    rng = random.Random(seed)
    field_name, kinds = UDF_TASKS[udf][2], list(REFUSED_LP)
    lines = []
    for i in range(count):
        line, kind = _good_line(udf, rng, i, 0), kinds[i % len(kinds)]
        line = _with_tag(line, 100_000) if REFUSED_LP[kind] is None \
            else _spoil(line, field_name, REFUSED_LP[kind]).rstrip()
        lines.append(f"{line} {time.time_ns()}")
    return lines


def lines_for(udf: str, good: int, bad: int, seed: int = 11) -> tuple[list[str], list[str]]:
    """(faulty stream, its good lines alone); each line ends in its time (ns)."""
    rng = random.Random(seed)
    base = time.time_ns() - (good + bad) * 10**6
    field_name = UDF_TASKS[udf][2]
    good_lines, bad_at = [], sorted(rng.sample(range(good + bad), bad))
    stream, kinds = [], list(BAD_LP)
    bad_set = set(bad_at)
    g = b = 0
    for i in range(good + bad):
        t = base + i * 10**6
        if i in bad_set:
            template = _good_line(udf, rng, g, base)
            kind = kinds[b % len(kinds)]
            spoilt = _spoil(template, field_name, BAD_LP[kind]).rstrip()
            stream.append(f'{spoilt},fault="{kind}" {t}')
            b += 1
            continue
        line = _good_line(udf, rng, g, base)
        if rng.random() < 0.05:
            line, t = _odd(line, rng, t)
        good_lines.append(f"{line} {t}")
        stream.append(f"{line} {t}")
        g += 1
    return stream, good_lines


def _write(kap: LocalKapacitord, db: str, lines: list[str], per_write: bool) -> int:
    refused = 0
    batches = [[line] for line in lines] if per_write else [lines]
    for batch in batches:
        try:
            kap.api.write("\n".join(batch) + "\n", db=db)
        except ApiError as exc:
            if exc.status != 400:
                raise
            refused += 1
    return refused


def _key(point: dict) -> tuple:
    tags = {k: v for k, v in point["tags"].items() if k != "note"}
    return tuple(sorted(tags.items())), point["time"]


SCORE_FIELDS = {"rfc_classifier": ("prediction", "failure_probability"),
                "ads_model": ("anomaly_score", "is_anomaly")}


def run_points(kap: LocalKapacitord, collector: Collector, udf: str, good: int, bad: int,
               per_write: bool, timeout: float = 300.0) -> PointsRun:
    """One clean and one faulty task for `udf`; compare their outputs."""
    tag = f"{udf}_{'each' if per_write else 'one'}_{time.monotonic_ns()}"
    kap.api.timeout = max(kap.api.timeout, timeout)  # a write returns once the tasks took it
    refusable = refused_lines(udf, max(4, bad // 20))
    stream, good_lines = lines_for(udf, good, bad - len(refusable))
    run = PointsRun(udf, per_write, good, bad - len(refusable), refusable=len(refusable))
    for kind, db in (("clean", f"{tag}_clean"), ("faulty", f"{tag}_faulty")):
        kap.api.define_task(f"{tag}_{kind}", tick(udf, collector.url(f"/{tag}/{kind}")),
                            [{"db": db, "rp": "autogen"}], enabled=True)
        info = kap.api.wait_task(f"{tag}_{kind}", 60)
        if not info.get("executing"):
            raise RuntimeError(f"task {tag}_{kind} did not start: {info.get('error')}")
    _write(kap, f"{tag}_clean", good_lines, per_write=False)
    run.refused_writes = _write(kap, f"{tag}_faulty", refusable, per_write=True)
    run.refused_writes += _write(kap, f"{tag}_faulty", stream, per_write)
    expected_faulty = good + (run.bad if udf == "rfc_classifier" else 0)  # rfc passes them on
    wait_for(lambda: _scored(collector, f"/{tag}/clean", udf) >= good
             and _scored(collector, f"/{tag}/faulty", udf)
             + _errored(collector, f"/{tag}/faulty") >= expected_faulty, timeout, 0.2)
    time.sleep(0.5)  # anything late (a duplicate) would show in the comparison below
    for kind in ("clean", "faulty"):
        kap.api.set_status(f"{tag}_{kind}", False)  # the UDF logs its counts as it stops
    wait_for(lambda: len(_stop_counts(kap.log_text(), udf)) >= 2, 20, 0.2)
    _compare(run, collector.points[f"/{tag}/clean"], collector.points[f"/{tag}/faulty"], udf)
    run.deaths = len(re.findall(rf"encountered error[^\n]*task={tag}_",
                                kap.log_text()))
    faulty_stop = _stop_counts(kap.log_text(), udf).get(f"{tag}_faulty")
    run.bad_counted = faulty_stop[0] if faulty_stop else -1
    for kind in ("clean", "faulty"):
        kap.api.delete_task(f"{tag}_{kind}")
    return run


def _scored(collector: Collector, path: str, udf: str) -> int:
    score = SCORE_FIELDS[udf][0]
    return sum(1 for p in list(collector.points[path]) if p.get(score) is not None)


def _errored(collector: Collector, path: str) -> int:
    return sum(1 for p in list(collector.points[path]) if p.get("error") is not None)


_STOP = re.compile(r"(?P<udf>\w+) (?P<task>[\w.-]+)/\S+: stopped: (?P<in>\d+) points in, "
                   r"(?P<out>\d+) out, (?P<failed>\d+) failed")


def _stop_counts(log: str, udf: str) -> dict[str, tuple[int, int, int]]:
    """The UDF's own counts from its stop lines: (failed, in, out) by task."""
    found = {}
    for match in _STOP.finditer(log):
        if match["udf"] == udf:
            found[match["task"]] = (int(match["failed"]), int(match["in"]), int(match["out"]))
    return found


def _compare(run: PointsRun, clean: list[dict], faulty: list[dict], udf: str) -> None:
    fields = SCORE_FIELDS[udf]
    expected = {_key(p): tuple(p.get(f) for f in fields) for p in clean
                if p.get(fields[0]) is not None}
    got: dict[tuple, tuple] = {}
    for point in faulty:
        if point.get("fault") is not None:
            if point.get(fields[0]) is not None:
                run.bad_scored += 1
            if point.get("error"):
                run.reasons.setdefault(point["fault"], point["error"])
            continue
        if point.get(fields[0]) is not None:
            got[_key(point)] = tuple(point.get(f) for f in fields)
    run.good_out = len(got)
    run.changed = sum(1 for key, value in expected.items() if got.get(key) != value)


# -- recovery, through the entrypoint ------------------------------------------------------
RELAY_TICK = """
stream
    |from()
        .measurement('probe')
    @{udf}()
    |httpOut('out')
"""


@dataclass
class Recovery:
    """Seconds per trial; `target` is the table's bound for each."""

    case: str
    target: float
    samples: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # what went wrong in a trial

    @property
    def ok(self) -> bool:
        return not self.failures and all(s <= self.target for s in self.samples)


def _entrypoint(kapacitor_bin: Path, work: Path, udf: str, script: str, timeout: str,
                **env: str) -> tuple[LocalEntrypoint, Path]:
    work.mkdir(parents=True, exist_ok=True)
    home = make_home(work, [PROBE])
    (home / "tick_scripts" / "relay.tick").write_text(RELAY_TICK.format(udf=udf))
    config = {"udfs": [{"name": udf, "script": script, "mode": "stream", "timeout": timeout}],
              "tasks": [{"name": "relay", "tick_script": "relay.tick", "type": "stream",
                         "dbrps": [{"db": "telemetry", "rp": "autogen"}], "udfs": [udf],
                         "enabled": True}]}
    (home / "config" / "config.json").write_text(json.dumps(config))
    entry = LocalEntrypoint(home, work, kapacitor_bin, SUPERVISE_INTERVAL="0.5", **env)
    entry.wait_tasks(["relay"], timeout=60)
    return entry, home


def _pid_of(pattern: str) -> int | None:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    pids = found.stdout.split()
    return int(pids[0]) if pids else None


def _wait_restarted(entry: LocalEntrypoint, since: str, timeout: float) -> bool:
    def restarted() -> bool:
        try:
            info = entry.api.task("relay")
        except (ApiError, OSError):
            return False
        return info.get("last-enabled") != since and bool(info.get("executing"))

    return wait_for(restarted, timeout, 0.05)


def run_udf_kills(kapacitor_bin: Path, work: Path, count: int, gap: float) -> Recovery:
    """kill -9 the UDF while points flow: seconds from Kapacitor's error report (the
    entrypoint logging the failure) to the task executing again. Trials are `gap` seconds
    apart, so that each is a first failure to the entrypoint's supervisor, not a task that
    keeps failing (entrypoint.supervisor.HEALTHY_RESET)."""
    result = Recovery("kill -9 a UDF mid-stream", 5.0)
    entry, home = _entrypoint(kapacitor_bin, work, "probe", "probe.py", "10s")
    try:
        for trial in range(count):
            enabled = entry.api.task("relay")["last-enabled"]
            entry.api.write(f"probe v={trial} {time.time_ns()}\n", db="telemetry")
            pid = _pid_of(f"{home}/udfs/probe.py")
            if pid is None:
                result.failures.append(f"trial {trial}: no UDF process")
                continue
            failures_before = entry.log_text().count("task relay: failed:")
            os.kill(pid, signal.SIGKILL)

            def reported_failure(trial: int = trial, before: int = failures_before) -> bool:
                entry.api.write(f"probe v={trial} {time.time_ns()}\n", db="telemetry")
                return entry.log_text().count("task relay: failed:") > before

            wait_for(reported_failure, 30, 0.05)
            reported = time.monotonic()
            if not _wait_restarted(entry, enabled, 30):
                result.failures.append(f"trial {trial}: not executing again within 30 s")
                continue
            result.samples.append(time.monotonic() - reported)
            if trial + 1 < count:
                time.sleep(gap)
    finally:
        entry.stop()
    return result


def run_hangs(kapacitor_bin: Path, work: Path, count: int, timeout_s: float = 2.0) -> Recovery:
    """A point that makes the handler block for ever: seconds from sending it to the task
    executing again; the entrypoint must log which handler hung."""
    result = Recovery("a handler that hangs", timeout_s + 15.0)
    entry, _ = _entrypoint(kapacitor_bin, work, "probe", "probe.py", f"{timeout_s:g}s")
    try:
        for trial in range(count):
            enabled = entry.api.task("relay")["last-enabled"]
            entry.api.write(f"probe hang=1 {time.time_ns()}\n", db="telemetry")
            sent = time.monotonic()
            if not _wait_restarted(entry, enabled, timeout_s + 60):
                result.failures.append(f"trial {trial}: not restarted within {timeout_s + 60} s")
                continue
            result.samples.append(time.monotonic() - sent)
        if count and "handler probe.point() has been running" not in entry.log_text():
            result.failures.append("the entrypoint's log does not name the hung handler")
    finally:
        entry.stop()
    return result


def run_kapacitord_kills(kapacitor_bin: Path, work: Path, count: int) -> Recovery:
    """kill -9 kapacitord under the entrypoint: seconds until the entrypoint exits non-zero."""
    result = Recovery("kapacitord killed", 5.0)
    for trial in range(count):
        entry, _ = _entrypoint(kapacitor_bin, work / f"k{trial}", "probe", "probe.py", "10s")
        try:
            pid = _pid_of(f"kapacitord -config {work / f'k{trial}' / 'conf'}")
            if pid is None:
                result.failures.append(f"trial {trial}: no kapacitord process")
                continue
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            try:
                status = entry.proc.wait(timeout=30)
            except Exception:
                result.failures.append(f"trial {trial}: still running 30 s later")
                continue
            result.samples.append(time.monotonic() - killed)
            if status == 0:
                result.failures.append(f"trial {trial}: exit status 0")
        finally:
            entry.stop()
    return result


# -- soak ---------------------------------------------------------------------------------
SOAK_TICK = """
stream
    |from()
        .measurement('{measurement}')
        .groupBy('{tag}')
    {call}
    |where(lambda: isPresent("{score}"))
    |httpOut('out')
"""


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _emitted(kap: LocalKapacitord, task: str, prefix: str) -> int:
    stats = kap.api.task(task)["stats"]["node-stats"]
    return next(v["emitted"] for k, v in stats.items() if k.startswith(prefix))


@dataclass
class Soak:
    """What a soak measured: points written per UDF task, points each scored, and each UDF's
    RSS after the warm-up and at the end (MB)."""

    seconds: float
    rate: float  # points/s written, over both tasks
    sent: int
    scored: dict[str, int]
    warm_rss: dict[str, float]
    end_rss: dict[str, float]

    def growth(self, udf: str) -> float:
        """RSS growth after the warm-up, in percent (nan if not measured)."""
        warm = self.warm_rss.get(udf)
        return (self.end_rss[udf] - warm) / warm * 100 if warm else math.nan

    @property
    def ok(self) -> bool:
        """Points in = points out, and under 5 % RSS growth for each UDF."""
        growth = [self.growth(u) for u in self.end_rss]
        return (all(n == self.sent for n in self.scored.values()) and bool(growth)
                and all(g < 5.0 for g in growth))


def soak(bin_dir: Path, work: Path, seconds: float, rate: int) -> Soak:
    """`rate` points/s, half to rfc_classifier and half to ads_model, for `seconds`:
    points written against points scored, and each UDF's RSS after a warm-up and at the end."""
    functions = [udf_function("rfc_classifier", "rfc_classifier.py", timeout="20s"),
                 udf_function("ads_model", "ads_model.py", timeout="20s")]
    kap = LocalKapacitord(bin_dir, work, functions)
    try:
        for udf in UDF_TASKS:
            measurement, tag, _, call = UDF_TASKS[udf]
            score = SCORE_FIELDS[udf][0]
            kap.api.define_task(f"soak_{udf}", SOAK_TICK.format(
                measurement=measurement, tag=tag, call=call, score=score),
                [{"db": "soak", "rp": "autogen"}], enabled=True)
            kap.api.wait_task(f"soak_{udf}", 60)
        pids = {udf: _pid_of(f"udfs/{udf}.py") for udf in UDF_TASKS}
        rng = random.Random(1)
        sent = 0
        start = time.monotonic()
        warm_rss: dict[str, float] = {}
        step = 0.1
        per_step = max(2, int(rate * step)) // 2
        while time.monotonic() - start < seconds:
            t0 = time.time_ns()
            lines = [f"{_good_line(udf, rng, sent + i, 0)} {t0 + i}"
                     for udf in UDF_TASKS for i in range(per_step)]
            kap.api.write("\n".join(lines) + "\n", db="soak")
            sent += per_step
            if not warm_rss and time.monotonic() - start >= min(60.0, seconds / 5):
                warm_rss = {u: _rss_mb(p) for u, p in pids.items() if p}
            next_at = start + (sent / per_step) * step
            time.sleep(max(0.0, next_at - time.monotonic()))
        elapsed = time.monotonic() - start
        end_rss = {u: _rss_mb(p) for u, p in pids.items() if p}

        def scored() -> dict[str, int]:
            return {u: _emitted(kap, f"soak_{u}", "where") for u in UDF_TASKS}

        wait_for(lambda: all(n >= sent for n in scored().values()), 60, 0.5)
        return Soak(elapsed, 2 * per_step / step, sent, scored(), warm_rss, end_rss)
    finally:
        kap.stop()
