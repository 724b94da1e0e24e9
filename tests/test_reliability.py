"""Nothing lost when a restart, DEV_MODE edits, InfluxDB or the disk misbehave, and every
loss visible in the health check: the entrypoint against real kapacitord and influxd."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localstack.entrypoint import LocalEntrypoint, make_home
from tests.testbed import wait_for

pytestmark = pytest.mark.kapacitor

DBRPS = [{"db": "telemetry", "rp": "autogen"}]
ADS_TICK = """
stream
    |from()
        .measurement('environment')
        .groupBy('sensor')
    @ads_model()
        .field('temperature')
    |httpOut('out')
"""
AVG_TICK = """
stream
    |from()
        .measurement('environment')
    @moving_average()
        .field('temperature')
        .size(2)
    |httpOut('out')
"""
UDFS = {
    "ads_model": {"name": "ads_model", "script": "ads_model.py", "mode": "stream",
                  "timeout": "20s"},
    "moving_average": {"name": "moving_average", "script": "moving_average.py",
                       "mode": "stream", "timeout": "10s"},
}


def config(tasks: dict[str, str], **extra) -> dict:
    """config.json for tasks {name: udf}, each task's TICKscript being NAME.tick."""
    return {"udfs": [UDFS[u] for u in sorted(set(tasks.values()))],
            "tasks": [{"name": n, "tick_script": f"{n}.tick", "type": "stream",
                       "dbrps": DBRPS, "udfs": [u], "enabled": True} for n, u in tasks.items()],
            **extra}


class Stack:
    """A home (image layout) and a work dir that outlive one entrypoint run."""

    def __init__(self, root: Path, kapacitor_bin: Path, ticks: dict[str, str]) -> None:
        self.root, self.kapacitor_bin = root, kapacitor_bin
        self.home = make_home(root)
        for name, text in ticks.items():
            (self.home / "tick_scripts" / f"{name}.tick").write_text(text)
        self.runs: list[LocalEntrypoint] = []

    def start(self, cfg: dict, influxdb_url: str = "", **env: str) -> LocalEntrypoint:
        (self.home / "config" / "config.json").write_text(json.dumps(cfg, indent=1))
        run = LocalEntrypoint(self.home, self.root, self.kapacitor_bin, influxdb_url,
                              LOG_LEVEL="INFO", **env)
        self.runs.append(run)
        return run


@pytest.fixture
def stack(kapacitor_bin, tmp_path):
    made: list[Stack] = []

    def make(ticks: dict[str, str]) -> Stack:
        made.append(Stack(tmp_path, kapacitor_bin, ticks))
        return made[-1]

    yield make
    for each in made:
        for run in each.runs:
            run.stop()


def write_env(run: LocalEntrypoint, points: list[tuple[str, float]], start: int) -> None:
    run.api.write("".join(f"environment,sensor={s} temperature={v} {start + i}\n"
                          for i, (s, v) in enumerate(points)), db="telemetry", precision="s")


# -- DEV_MODE ---------------------------------------------------------------------------------

def test_dev_mode_deleted_files_leave_the_task_running_and_it_comes_back(stack):
    st = stack({"avg": AVG_TICK, "other": AVG_TICK})
    run = st.start(config({"avg": "moving_average", "other": "moving_average"}),
                   DEV_MODE="true", SUPERVISE_INTERVAL="0.2")
    run.wait_tasks(["avg", "other"])
    run.wait_log("DEV_MODE: watching")
    tick = st.home / "tick_scripts" / "avg.tick"
    enabled_at = run.api.task("avg")["last-enabled"]

    tick.unlink()
    run.wait_log(r"task avg: refused: cannot read .*avg\.tick: No such file or directory")
    run.wait_log(r"task avg: the running definition stays, supervised")
    write_env(run, [("s1", 21.0), ("s1", 23.0)], int(time.time()) - 10)
    for name in ("avg", "other"):  # both tasks still run and compute
        assert wait_for(lambda n=name: [r.get("avg") for r in
                                        run.api.http_out_rows(n, "out")] == [22.0]), name
    assert run.alive() and "giving up" not in run.log_text()

    tick.write_text(AVG_TICK.replace(".size(2)", ".size(3)"))
    run.wait_log(r"dev: task avg: redefining")
    assert wait_for(lambda: run.api.task("avg")["last-enabled"] != enabled_at, 15)
    assert wait_for(lambda: run.api.task("avg")["executing"])
    assert ".size(3)" in run.api.task("avg")["script"]

    script = st.home / "udfs" / "moving_average.py"
    saved = script.read_bytes()
    script.unlink()
    run.wait_log(r"dev: task avg: UDF script moving_average\.py is missing: the running task "
                 r"stays as it is")
    assert run.api.task("avg")["executing"] and run.api.task("other")["executing"]
    enabled_at = run.api.task("avg")["last-enabled"]
    script.write_bytes(saved)
    run.wait_log(r"dev: task avg: UDF code changed, restarting")
    assert wait_for(lambda: run.api.task("avg")["last-enabled"] != enabled_at, 15)
    assert wait_for(lambda: run.api.task("avg")["executing"] and run.api.task("other")[
        "executing"])
    assert run.alive()

    # a task removed from config.json takes its saved UDF state with it, as Kapacitor does
    # with its snapshot: a later task of that name starts fresh
    saved = st.root / "data" / "udf-state" / "avg"
    assert list(saved.glob("*.state")), "moving_average saved no state when it stopped"
    (st.home / "config" / "config.json").write_text(json.dumps(
        config({"other": "moving_average"}), indent=1))
    run.wait_log(r"dev: task avg: removed from config.json, deleting it")
    assert wait_for(lambda: not saved.exists(), 10)


# -- state across a restart ------------------------------------------------------------------

SENSORS = [f"s{i:02d}" for i in range(20)]


def learning_points(count: int, seed: int) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    return [(s, round(20.0 + rng.gauss(0.0, 0.3), 3)) for _ in range(count) for s in SENSORS]


def emitted(run: LocalEntrypoint) -> int:
    """Points the UDF node has emitted (anomalous periods add one each: at least the input)."""
    stats = run.api.task("anom")["stats"]["node-stats"]
    return sum(v.get("emitted", 0) for k, v in stats.items() if k.startswith("ads_model"))


def spikes_flagged(run: LocalEntrypoint, at: int) -> int:
    """Write one spike per sensor; count those scored anomalous (0.5 and above)."""
    write_env(run, [(s, 30.0) for s in SENSORS], at)

    def scores() -> dict[str, float] | None:
        rows = {r["sensor"]: r for r in run.api.http_out_rows("anom", "out")}
        done = all(rows.get(s, {}).get("temperature") == 30.0 for s in SENSORS)
        return {s: rows[s]["anomaly_score"] for s in SENSORS} if done else None
    found = wait_for(scores, 20)
    assert found, run.log_text()[-3000:]
    return sum(score >= 0.5 for score in found.values())


def sigterm(run: LocalEntrypoint) -> None:
    """What `docker stop` does to the container's first process."""
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(timeout=30) == 0, run.log_text()[-3000:]


def test_a_restart_before_any_kapacitor_snapshot_keeps_ads_model_learning(stack):
    st = stack({"anom": ADS_TICK})
    cfg = config({"anom": "ads_model"}, snapshot_interval="1h")  # Kapacitor never snapshots
    run = st.start(cfg)
    run.wait_tasks(["anom"])
    start = int(time.time()) - 10_000
    points = learning_points(200, seed=1)
    write_env(run, points, start)
    assert wait_for(lambda: emitted(run) >= len(points), 30)
    uptime = time.monotonic() - run.started
    sigterm(run)
    assert run.log_text().count("state saved to") == 1, run.log_text()[-3000:]

    again = st.start(cfg)
    again.wait_tasks(["anom"])
    again.wait_log(r"state loaded from .*anom/ads_model\d+\.state")
    flagged = spikes_flagged(again, start + len(points))
    assert flagged == len(SENSORS), f"{flagged}/{len(SENSORS)} spikes flagged after a restart " \
                                    f"{uptime:.0f} s after start"
    assert uptime < 30


def test_a_restart_after_kapacitor_snapshots_keeps_what_was_learnt_since(stack):
    st = stack({"anom": ADS_TICK})
    cfg = config({"anom": "ads_model"}, snapshot_interval="5s")
    run = st.start(cfg)
    run.wait_tasks(["anom"])
    state_dir = st.root / "data" / "udf-state" / "anom"
    start = int(time.time()) - 10_000
    early = learning_points(30, seed=2)  # under `learn` (64): not yet scoring
    write_env(run, early, start)
    assert wait_for(lambda: emitted(run) >= len(early), 30)
    # Kapacitor's first snapshot comes 5-10 s after the task starts; the agent writes the
    # same bytes to its state file then, so the file appearing means Kapacitor has one.
    assert wait_for(lambda: any(state_dir.glob("*.state")), 20), run.log_text()[-3000:]
    later = learning_points(200, seed=3)
    write_env(run, later, start + len(early))
    assert wait_for(lambda: emitted(run) >= len(early) + len(later), 30), \
        run.api.task("anom")["stats"]
    sigterm(run)

    again = st.start(cfg)
    again.wait_tasks(["anom"])
    # Kapacitor restores its snapshot after Init: the older (or the same) state, not taken
    again.wait_log(r"Kapacitor's \d+-byte snapshot is (an older|the same) state: kept the "
                   r"state loaded from")
    assert spikes_flagged(again, start + len(early) + len(later)) == len(SENSORS)


# -- a full data volume ---------------------------------------------------------------------

ALERT_TICK = """
stream
    |from()
        .measurement('environment')
    |alert()
        .id('hot:{{ index .Tags "sensor" }}')
        .crit(lambda: "temperature" > 25.0)
        .topic('hot')
"""


@pytest.fixture
def small_volume(tmp_path) -> Path:
    """A 24 MiB tmpfs as the data volume (mounting needs root, as .ci/run has)."""
    volume = tmp_path / "data"
    volume.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(volume)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs for the data volume: {done.stderr.strip()}")
    yield volume
    subprocess.run(["umount", "-l", str(volume)], check=False)


def fill(volume: Path) -> Path:
    """Take every free block of the volume (what a runaway log does)."""
    filler = volume / "filler"
    with filler.open("wb") as out:
        chunk = b"\0" * (1 << 20)
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError:
            pass
    return filler


def health(run: LocalEntrypoint) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "entrypoint.health"], env=run._env,
                          capture_output=True, text=True, timeout=30)
    return done.returncode, done.stdout


def test_a_full_data_volume_turns_health_unhealthy_naming_the_cause(stack, small_volume):
    st = stack({"anom": ADS_TICK, "hot": ALERT_TICK})
    cfg = config({"anom": "ads_model"}, snapshot_interval="1s")
    cfg["tasks"].append({"name": "hot", "tick_script": "hot.tick", "type": "stream",
                         "dbrps": DBRPS, "udfs": [], "enabled": True})
    cfg["alert_handlers"] = [{"id": "hot-log", "topic": "hot", "kind": "log",
                              "options": {"path": "alerts/hot.log"}}]
    run = st.start(cfg)
    run.wait_tasks(["anom", "hot"])
    start = int(time.time()) - 10_000
    write_env(run, learning_points(100, seed=4), start)
    assert wait_for(lambda: health(run)[0] == 0, 20), health(run)[1]

    filler = fill(small_volume)
    write_env(run, [("s01", 30.0), ("s02", 31.0)], start + 5000)  # two alerts to log
    assert wait_for(lambda: "alert handler hot-log" in health(run)[1], 20), health(run)[1]
    code, said = health(run)
    assert code == 1
    assert re.search(rf"unhealthy: data volume {re.escape(str(small_volume))} nearly full: "
                     r"0\.\d MiB free of 24 MiB \(since ", said), said
    assert re.search(r"unhealthy: alert handler hot-log \(topic hot\) failed: .*no space left "
                     r"on device", said), said
    assert wait_for(lambda: "task anom: UDF state not saved" in health(run)[1], 10), \
        health(run)[1]
    assert wait_for(lambda: re.search(r"task anom: snapshot failed: write .*kapacitor\.db: no "
                                      r"space left on device", health(run)[1]), 10), \
        health(run)[1]
    assert run.api.task("anom")["executing"] and run.api.task("hot")["executing"]
    assert re.search(r"entrypoint: health: \d problem\(s\): ", run.log_text())
    print(f"\nfigures: health with the volume full:\n{said}")

    filler.unlink()
    assert wait_for(lambda: "nearly full" not in health(run)[1], 10), health(run)[1]


# -- results InfluxDB refuses ---------------------------------------------------------------

MISSING_DB_TICK = """
stream
    |from()
        .measurement('environment')
    @moving_average()
        .field('temperature')
        .size(2)
    |influxDBOut()
        .database('nowhere')
        .retentionPolicy('autogen')
        .measurement('smoothed')
"""


@pytest.mark.influxdb
def test_results_influxdb_refuses_turn_health_unhealthy_naming_the_task(stack, influxdb):
    st = stack({"lost": MISSING_DB_TICK, "avg": AVG_TICK})
    run = st.start(config({"lost": "moving_average", "avg": "moving_average"}),
                   influxdb_url=influxdb.url)
    run.wait_tasks(["lost", "avg"])
    # named before anything is lost: the database the TICKscript writes to is missing
    assert wait_for(lambda: "task lost: writes its results to database 'nowhere'" in
                    health(run)[1], 20), health(run)[1]
    # 1,000 points fill influxDBOut's buffer: it writes at once rather than after 10 s
    write_env(run, [("s1", 20.0 + i % 5) for i in range(1000)], int(time.time()) - 5000)
    assert wait_for(lambda: health(run)[1].count("task lost:") == 2, 20), health(run)[1]
    said = health(run)[1]
    assert re.search(r"unhealthy: task lost: results not written to InfluxDB \(influxDBOut "
                     r"write_errors\): .*database not found.*\(since ", said), said
    assert re.search(r"unhealthy: task lost: writes its results to database 'nowhere', which "
                     r"InfluxDB at http://127\.0\.0\.1:\d+ does not have: they are refused until "
                     r"it exists", said)
    assert "task avg" not in said
    # the entrypoint's summary came at the first problem; the next waits out the minute
    run.wait_log(r"entrypoint: health: 1 problem\(s\): task lost: writes its results to "
                 r"database 'nowhere'")
    assert run.log_text().count("entrypoint: health:") == 1
