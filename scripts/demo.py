"""The local demo without Docker: `make demo`.

Starts influxd and, through the image's own entrypoint and config/config.json,
kapacitord with every default task, on free loopback ports of its own; feeds an hour of
simulated sensor and machine data (with injected anomalies and failures) to both; then
prints what the tasks detected, from InfluxDB, beside what was injected, and saves a plot
to out/demo.png (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kapacitorkit.api import KapacitorApi
from kapacitorkit.ports import free_port
from localstack import ROOT
from localstack.influxd import LocalInfluxd
from localstack.kapacitord import kapacitor_bin_dir
from mlkit.ads import AdsConfig
from simulator import generate
from simulator.evaluate import evaluate
from simulator.publish import HttpSink, run_fast
from simulator.truth import GroundTruth, labelled_run

DB = "telemetry"


def start_entrypoint(work: Path, influx: LocalInfluxd, bin_dir: Path) -> tuple[subprocess.Popen,
                                                                          KapacitorApi]:
    port = free_port()
    env = {**os.environ, "KAPACITOR_CONF_DIR": str(work / "conf"),
           "KAPACITOR_DATA_DIR": str(work / "kapacitor"), "KAPACITORD": str(bin_dir / "kapacitord"),
           "KAPACITOR_HTTP_BIND": f"127.0.0.1:{port}", "INFLUXDB_URL": influx.url}
    log = (work / "entrypoint.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "entrypoint"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    return proc, KapacitorApi(f"http://127.0.0.1:{port}")


def wait_for_tasks(api: KapacitorApi, proc: subprocess.Popen, timeout: float = 90) -> float:
    """Seconds until every enabled task of config/config.json executes; raises if the
    entrypoint dies first or a task does not start."""
    start = time.monotonic()
    api.wait_ready(timeout, alive=lambda: proc.poll() is None)
    config = json.loads((ROOT / "config" / "config.json").read_text())
    stuck = api.not_executing(t["name"] for t in config["tasks"] if t["enabled"])
    if stuck:
        raise RuntimeError(f"task(s) {', '.join(stuck)} did not start")
    return time.monotonic() - start


SEED, SENSORS, MACHINES = 1, generate.sensor_names(3), generate.sensor_names(2, prefix="mill")


def simulate(influx: LocalInfluxd, api: KapacitorApi, minutes: int) -> GroundTruth:
    """Send `minutes` of simulated data (1 point/s per series, ending now) to InfluxDB and
    Kapacitor, as `python -m simulator --fast` does; return what was injected."""
    steps = minutes * 60
    start_ns = time.time_ns() - steps * 10**9
    data, truth = labelled_run(SEED, SENSORS, MACHINES, start_ns, steps)
    sink = HttpSink([f"{influx.url}/write?db={DB}",
                     f"{api.base}/kapacitor/v1/write?db={DB}&rp=autogen"])
    try:
        if run_fast([sink], data):
            raise RuntimeError("writing the simulated data failed (see above)")
    finally:
        sink.close()
    return truth


def wait_for_outputs(influx: LocalInfluxd, points: int, timeout: float = 60) -> float:
    """Poll until every point is scored and predicted in InfluxDB; return seconds waited.

    The tasks' influxDBOut nodes buffer their writes, so the counts lag the input a little.
    """
    started = time.monotonic()
    wanted = {"anomaly_scores": ("anomaly_score", points * len(SENSORS)),
              "machine_predictions": ("prediction", points * len(MACHINES))}
    while True:
        counts = {m: _count(influx, m, f) for m, (f, _) in wanted.items()}
        if all(counts[m] >= n for m, (_, n) in wanted.items()):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"after {timeout:.0f} s InfluxDB holds {counts}, expected "
                               f"{ {m: n for m, (_, n) in wanted.items()} }")
        time.sleep(0.5)


def _count(influx: LocalInfluxd, measurement: str, field: str) -> int:
    rows = influx.query(f'SELECT count("{field}") FROM {measurement}', DB)
    return int(rows[0]["count"]) if rows else 0


def _clock(ns: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ns / 1e9))


def _lasting(seconds: float) -> str:
    return "a single reading" if seconds < 1 else f"{seconds:.0f} s"


VIEW_WORDS = {"spike_up": ("a spike", "above"), "spike_down": ("a dip", "below"),
              "level_up": ("a level shift up", "above"),
              "level_down": ("a level shift down", "below"),
              "volatility": ("a burst of volatility", "above"),
              "stuck": ("a stuck reading", "above")}


def _seen(period: dict) -> str:
    """What ads_model saw at the period's highest point, as its alert message says it."""
    what, side = VIEW_WORDS.get(period.get("anomaly_view") or "", ("an anomaly", "outside"))
    return (f"{what} {period['anomaly_sigma']:.1f} deviations {side} its normal range "
            f"{period['normal_low']:.1f}\u2013{period['normal_high']:.1f}")


def report(influx: LocalInfluxd, truth: GroundTruth, learn: int, end_ns: int
           ) -> dict[str, list[dict]]:
    """Print what the tasks wrote to InfluxDB beside what was injected; return plot rows."""
    q = influx.query
    periods = q("SELECT period_start, period_end, duration_s, max_score, anomaly_view, "
                "anomaly_sigma, normal_low, normal_high FROM anomaly_periods GROUP BY sensor", DB)
    predicted = q("SELECT failure_probability, prediction FROM machine_predictions "
                  "WHERE prediction = 1 GROUP BY machine", DB)
    alerts = q("SELECT count(temperature) FROM environment_alerts GROUP BY alert", DB)
    learnt_until = truth.start_ns + learn * truth.step_ns
    print("\n== anomalies in each sensor's temperature (ads_model)")
    print(f"ads_model learns each sensor's normal from its first {learn} points (here the "
          f"first {learn * truth.step_ns / 60e9:.1f} min, until {_clock(learnt_until)}) and "
          "scores only after that: an anomaly injected in that time is not looked for.")
    injected = sum(len(e) for e in truth.episodes.values())
    during = sum(e.start_ns < learnt_until for es in truth.episodes.values() for e in es)
    print(f"injected: {injected} anomaly episodes ({during} of them while learning); "
          f"detected: {len(periods)} anomalous periods")
    for p in periods[:15]:
        print(f"  {p['sensor']:10} from {_clock(p['period_start'])}, "
              f"{_lasting(p['duration_s'])}, highest score {p['max_score']:.2f}: {_seen(p)}")
    flags = q("SELECT is_anomaly FROM anomaly_scores WHERE is_anomaly = true GROUP BY sensor", DB)
    outcome = evaluate(
        truth,
        {s: [r["time"] for r in flags if r["sensor"] == s] for s in SENSORS},
        {s: [(p["period_start"], p["period_end"]) for p in periods if p["sensor"] == s]
         for s in SENSORS},
        learn, end_ns)
    for line in outcome.lines():
        print(line)
    print("\n== machine failures (rfc_classifier)")
    for machine in MACHINES:
        real = truth.failures[machine]
        modes = sorted({m for _, ms in real for m in ms})
        flagged = sum(r["machine"] == machine for r in predicted)
        print(f"  {machine}: {len(real)} readings met a failure condition "
              f"({', '.join(modes) or 'none'}); {flagged} predicted as failures")
    for row in alerts:
        print(f"{row.get('alert', '?')} alerts: {row['count']}")
    temps = q("SELECT temperature FROM anomaly_scores GROUP BY sensor", DB)
    return {"temps": temps, "periods": periods, "predicted": predicted}


def alert_events(alerts_dir: Path, topic: str) -> list[dict]:
    """The events Kapacitor logged for a topic (config.json's log handler), oldest first."""
    log = alerts_dir / f"{topic}.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line) for line in lines]


def report_alerts(api: KapacitorApi, events: dict[str, list[dict]]) -> None:
    """How many alerts each topic raised, and the state Kapacitor holds for each now."""
    print("\n== alerts")
    for topic, logged in events.items():
        raised = sum(e["level"] == "CRITICAL" for e in logged)
        print(f"topic {topic}: {raised} raised, {len(logged) - raised} cleared; now:")
        for state in list(api.alert_events(topic).values())[:10]:
            print(f"  {state['level']:8} {state['message']}")


def _when(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)


def _alert_spans(events: list[dict], key: str) -> dict[str, list[tuple[dt.datetime, dt.datetime]]]:
    """Per series, (from, to) of each CRITICAL state; an alert still open ends at its last event."""
    spans: dict[str, list] = {}
    opened: dict[str, dt.datetime] = {}
    last = None
    for event in events:
        series = event["id"].split(":", 1)[-1]
        when = dt.datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        last = when
        if event["level"] == "CRITICAL":
            opened.setdefault(series, when)
        elif series in opened:
            spans.setdefault(series, []).append((opened.pop(series), when))
    for series, since in opened.items():
        spans.setdefault(series, []).append((since, last or since))
    return spans


def plot(rows: dict[str, list[dict]], truth: GroundTruth, learn: int,
         events: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 8), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    learnt_until = _when(truth.start_ns + learn * truth.step_ns)
    top.axvspan(_when(truth.start_ns), learnt_until, color="grey", alpha=0.15)
    for sensor in SENSORS:
        mine = [r for r in rows["temps"] if r["sensor"] == sensor]
        top.plot([_when(r["time"]) for r in mine], [r["temperature"] for r in mine],
                 lw=0.7, label=sensor)
    for episodes in truth.episodes.values():
        for e in episodes:
            top.axvspan(_when(e.start_ns), _when(e.end_ns + truth.step_ns), ymin=0, ymax=0.06,
                        color="black")
    for p in rows["periods"]:
        top.axvspan(_when(p["period_start"]), _when(p["period_end"] + truth.step_ns),
                    color="red", alpha=0.25)
    handles, _ = top.get_legend_handles_labels()
    handles += [Patch(color="grey", alpha=0.15, label=f"learning ({learn} points)"),
                Patch(color="black", label="injected anomaly (ground truth)"),
                Patch(color="red", alpha=0.25, label="detected anomalous period")]
    top.legend(handles=handles, loc="upper right", fontsize=8, ncol=2)
    top.set_ylabel("temperature [°C]")
    top.set_title("ads_model: detected periods (red) against injected anomalies (black)")

    spans = _alert_spans(events.get("machine_failures", []), "machine")
    for row, machine in enumerate(MACHINES):
        for since, until in spans.get(machine, []):
            bottom.broken_barh([(since, max(until - since, dt.timedelta(seconds=5)))],
                               (row + 0.05, 0.3), color="red", alpha=0.5)
        real = [_when(t) for t, _ in truth.failures[machine]]
        bottom.plot(real, [row - 0.2] * len(real), "kx", ms=5)
        flagged = [_when(r["time"]) for r in rows["predicted"] if r["machine"] == machine]
        bottom.plot(flagged, [row - 0.05] * len(flagged), "|", color="tab:blue", ms=8)
    bottom.set_yticks(range(len(MACHINES)), MACHINES)
    bottom.set_ylim(-0.6, len(MACHINES) + 0.2)  # room for the legend above the last row
    bottom.legend(handles=[
        plt.Line2D([], [], color="k", marker="x", ls="", label="real failure (ground truth)"),
        plt.Line2D([], [], color="tab:blue", marker="|", ls="", ms=8,
                   label="predicted failure"),
        Patch(color="red", alpha=0.5, label="machine_failures alert raised (until cleared)")],
        loc="upper right", fontsize=8)
    bottom.set_xlabel("time (UTC)")
    bottom.set_title("rfc_classifier: real failures, predictions and alerts per machine")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60, help="minutes of simulated data")
    parser.add_argument("--png", type=Path, default=ROOT / "out" / "demo.png")
    args = parser.parse_args()
    bin_dir = kapacitor_bin_dir()
    learn = AdsConfig.learn
    with tempfile.TemporaryDirectory(prefix="kapacitor-demo-") as tmp:
        work = Path(tmp)
        influx = LocalInfluxd(work)
        influx.query(f'CREATE DATABASE "{DB}"')
        proc, api = start_entrypoint(work, influx, bin_dir)
        try:
            print(f"all tasks executing after {wait_for_tasks(api, proc):.1f} s")
            print(f"sending {args.minutes} min of simulated data (1 point/s per series) ...")
            truth = simulate(influx, api, args.minutes)
            waited = wait_for_outputs(influx, args.minutes * 60)
            print(f"every point scored and stored {waited:.1f} s after the last was sent")
            rows = report(influx, truth, learn, truth.start_ns + args.minutes * 60 * 10**9)
            alerts_dir = work / "kapacitor" / "alerts"
            events = {t: alert_events(alerts_dir, t) for t in ("anomalies", "machine_failures")}
            report_alerts(api, events)
            plot(rows, truth, learn, events, args.png)
            print(f"\nplot saved to {args.png}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            influx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
