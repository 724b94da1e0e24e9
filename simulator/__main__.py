"""Command line: `python -m simulator [options]`.

Examples:
  python -m simulator --mqtt-host mosquitto                 # compose: endless, 1 point/s/series
  python -m simulator --fast --duration 600 \\
      --http-write 'http://localhost:8086/write?db=telemetry' \\
      --http-write 'http://localhost:9092/kapacitor/v1/write?db=telemetry&rp=autogen'
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence

from simulator import generate
from simulator.publish import HttpSink, MqttSink, Sink, StdoutSink, run_fast, run_realtime


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the options; see the module docstring for examples."""
    p = argparse.ArgumentParser(prog="python -m simulator", description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same data)")
    p.add_argument("--sensors", type=int, default=3, help="environment sensors sensor-1..N")
    p.add_argument("--machines", type=int, default=2, help="machines mill-1..N")
    p.add_argument("--rate", type=float, default=1.0, help="points/s per series (real time)")
    p.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="seconds of data; 0 = endless (real time only)",
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help="send at once `duration` s of data, 1 s apart, ending now",
    )
    p.add_argument("--period", type=float, default=generate.DAY_S, help="temperature cycle [s]")
    p.add_argument("--anomaly-rate", type=float, default=generate.ANOMALY_RATE)
    p.add_argument("--failure-rate", type=float, default=generate.FAILURE_RATE)
    p.add_argument("--mqtt-host", help="publish to this MQTT broker")
    p.add_argument("--mqtt-port", type=int, default=1883)
    p.add_argument("--mqtt-qos", type=int, choices=(0, 1), default=0)
    p.add_argument(
        "--http-write",
        action="append",
        default=[],
        metavar="URL",
        help="POST line protocol to this write URL (repeatable)",
    )
    p.add_argument("--stdout", action="store_true", help="print line protocol")
    args = p.parse_args(argv)
    if args.rate <= 0 or args.duration < 0:
        p.error("--rate must be > 0 and --duration >= 0")
    if args.fast and args.duration <= 0:
        p.error("--fast needs --duration > 0")
    if not (args.mqtt_host or args.http_write or args.stdout):
        p.error("give at least one sink: --mqtt-host, --http-write or --stdout")
    return args


def make_sinks(args: argparse.Namespace) -> list[Sink]:
    """Build the sinks the options ask for."""
    sinks: list[Sink] = []
    if args.http_write:
        sinks.append(HttpSink(args.http_write))
    if args.mqtt_host:
        sinks.append(MqttSink(args.mqtt_host, args.mqtt_port, qos=args.mqtt_qos))
    if args.stdout:
        sinks.append(StdoutSink())
    return sinks


def main(argv: Sequence[str] | None = None) -> int:
    """Generate and send; exit 1 if any write failed."""
    args = parse_args(argv)
    now = time.time()
    step_s = 1.0 if args.fast else 1.0 / args.rate
    start_s = now - args.duration if args.fast else now
    steps = generate.iter_all(
        args.seed,
        generate.sensor_names(args.sensors),
        generate.sensor_names(args.machines, prefix="mill"),
        start_ns=int(start_s * 1e9),
        step_s=step_s,
        anomaly_rate=args.anomaly_rate,
        failure_rate=args.failure_rate,
        period_s=args.period,
    )
    count = round(args.duration / step_s) if args.duration else None
    limited = itertools.islice(steps, count)
    sinks = make_sinks(args)
    try:
        if args.fast:
            failures = run_fast(sinks, limited)
        else:
            failures = run_realtime(sinks, limited, step_s, start_s)
    except KeyboardInterrupt:
        failures = 0
    finally:
        for sink in sinks:
            sink.close()
    if failures:
        print(f"simulator: {failures} write(s) failed", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
