"""Does ads_model keep its learning across a `docker stop`/start at a given uptime?

    .venv/bin/python bench/restart_learning.py [--uptimes 30 300]

For each uptime: the entrypoint (real kapacitord, config.json's default snapshot interval)
learns 20 series of noise until that long after its start, gets SIGTERM (what `docker stop`
sends), starts again on the same data directory, and one spike per series is scored. Prints
how many spikes were flagged by the first point after the restart, and whether Kapacitor's
own snapshot was also restored (and found older or the same).
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from pathlib import Path

from localstack.entrypoint import LocalEntrypoint
from localstack.kapacitord import kapacitor_bin_dir
from tests.test_reliability import (
    ADS_TICK,
    SENSORS,
    Stack,
    config,
    learning_points,
    spikes_flagged,
    write_env,
)


def learn_until(run: LocalEntrypoint, uptime: float, start: int) -> int:
    """Five points per series each second until `uptime` s after start; the next timestamp."""
    seed = 0
    while time.monotonic() - run.started < uptime:
        points = learning_points(5, seed=seed)
        write_env(run, points, start)
        start, seed = start + len(points), seed + 1
        time.sleep(1)
    return start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uptimes", type=float, nargs="+", default=[30, 300])
    args = parser.parse_args()
    stack = Stack(Path(tempfile.mkdtemp()), kapacitor_bin_dir(), {"anom": ADS_TICK})
    cfg = config({"anom": "ads_model"})
    stamp = int(time.time()) - 100_000
    for uptime in args.uptimes:
        run = stack.start(cfg)
        run.wait_tasks(["anom"])
        stamp = learn_until(run, uptime, stamp)
        ran = time.monotonic() - run.started
        run.proc.send_signal(signal.SIGTERM)
        run.proc.wait(timeout=60)
        again = stack.start(cfg)
        again.wait_tasks(["anom"])
        again.wait_log(r"state loaded from")
        flagged = spikes_flagged(again, stamp)
        stamp += len(SENSORS)
        time.sleep(3)
        kapacitor = "Kapacitor's" in again.log_text()
        print(f"restart after {ran:.0f} s: {flagged}/{len(SENSORS)} spikes flagged by the first "
              f"point; Kapacitor's snapshot also restored: {kapacitor}", flush=True)
        again.stop()


if __name__ == "__main__":
    main()
