"""The local demo without Docker: `make demo`.

Starts influxd and, through the image's own entrypoint and config/config.json,
kapacitord with every default task; feeds an hour of simulated sensor and
machine data (with injected anomalies and failures) to both; then prints what
the tasks detected, from InfluxDB, and saves a plot to out/demo.png.
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
from localstack.influxd import Influxd
from localstack.kapacitord import kapacitor_bin_dir

ROOT = Path(__file__).resolve().parent.parent

DB = "telemetry"


def start_entrypoint(work: Path, influx: Influxd, bin_dir: Path) -> tuple[subprocess.Popen,
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


def simulate(influx: Influxd, api: KapacitorApi, minutes: int) -> None:
    subprocess.run([sys.executable, "-m", "simulator", "--fast", "--duration", str(minutes * 60),
                    "--http-write", f"{influx.url}/write?db={DB}",
                    "--http-write", f"{api.base}/kapacitor/v1/write?db={DB}&rp=autogen"],
                   cwd=ROOT, check=True)


def report(influx: Influxd) -> dict[str, list[dict]]:
    """Print what the tasks wrote to InfluxDB; return the rows used by the plot."""
    q = influx.query
    periods = q("SELECT period_start, period_end, duration_s, max_score FROM anomaly_periods "
                "GROUP BY sensor", DB)
    failures = q("SELECT failure_probability, prediction FROM machine_predictions "
                 "WHERE prediction = 1 GROUP BY machine", DB)
    alerts = q("SELECT count(temperature) FROM environment_alerts GROUP BY alert", DB)
    scored = q("SELECT count(anomaly_score) FROM anomaly_scores", DB)
    print("\n== what the tasks found (from InfluxDB)")
    print(f"points scored for anomalies: {scored[0]['count'] if scored else 0}")
    print(f"anomalous periods: {len(periods)}")
    for p in periods[:15]:
        start = time.strftime("%H:%M:%S", time.gmtime(p["period_start"] / 1e9))
        print(f"  {p['sensor']:10} from {start} for {p['duration_s']:5.0f} s, "
              f"max score {p['max_score']:.2f}")
    by_machine: dict[str, int] = {}
    for row in failures:
        by_machine[row["machine"]] = by_machine.get(row["machine"], 0) + 1
    print(f"predicted failures: {len(failures)} points "
          f"({', '.join(f'{m}: {n}' for m, n in sorted(by_machine.items())) or 'none'})")
    for row in alerts:
        print(f"{row.get('alert', '?')} alerts: {row['count']}")
    temps = q("SELECT temperature, anomaly_score, is_anomaly FROM anomaly_scores GROUP BY sensor",
              DB)
    probs = q("SELECT failure_probability FROM machine_predictions GROUP BY machine", DB)
    return {"temps": temps, "periods": periods, "probs": probs}


def report_alerts(api: KapacitorApi, alerts_dir: Path) -> None:
    """The alert events the tasks raised (config.json logs each topic under alerts/), and the
    state Kapacitor holds for each alert now."""
    for topic in ("anomalies", "machine_failures"):
        log = alerts_dir / f"{topic}.log"
        logged = log.read_text().splitlines() if log.exists() else []
        events = api.alert_events(topic)
        print(f"topic {topic}: {len(logged)} alert events logged; now:")
        for state in list(events.values())[:10]:
            print(f"  {state['message']}")


def _when(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)


def plot(rows: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    for sensor in sorted({r["sensor"] for r in rows["temps"]}):
        mine = [r for r in rows["temps"] if r["sensor"] == sensor]
        top.plot([_when(r["time"]) for r in mine], [r["temperature"] for r in mine],
                 lw=0.8, label=sensor)
    for p in rows["periods"]:
        top.axvspan(_when(p["period_start"]), _when(p["period_end"] + 10**9), color="red",
                    alpha=0.25)
    top.set_ylabel("temperature [°C]")
    top.set_title("ads_model: anomalous periods (red)")
    top.legend(loc="upper right")
    for machine in sorted({r["machine"] for r in rows["probs"]}):
        mine = [r for r in rows["probs"] if r["machine"] == machine]
        bottom.plot([_when(r["time"]) for r in mine], [r["failure_probability"] for r in mine],
                    lw=0.8, label=machine)
    bottom.axhline(0.5, color="grey", ls="--", lw=0.8)
    bottom.set_ylabel("failure probability")
    bottom.set_xlabel("time (UTC)")
    bottom.set_title("rfc_classifier: predicted machine failures")
    bottom.legend(loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60, help="minutes of simulated data")
    parser.add_argument("--png", type=Path, default=ROOT / "out" / "demo.png")
    args = parser.parse_args()
    bin_dir = kapacitor_bin_dir()
    with tempfile.TemporaryDirectory(prefix="kapacitor-demo-") as tmp:
        work = Path(tmp)
        influx = Influxd(work)
        influx.query(f'CREATE DATABASE "{DB}"')
        proc, api = start_entrypoint(work, influx, bin_dir)
        try:
            print(f"all tasks executing after {wait_for_tasks(api, proc):.1f} s")
            simulate(influx, api, args.minutes)
            print("waiting 12 s for the tasks' InfluxDB writes to flush ...")
            time.sleep(12)
            plot(report(influx), args.png)
            report_alerts(api, work / "kapacitor" / "alerts")
            print(f"\nplot saved to {args.png}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            influx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
