"""The fault table: each fault case with counts, against real kapacitord and the entrypoint,
and whether its target holds (the cases are faultkit's).

    python bench/faults.py [--points 10000] [--good 20000] [--garbage 1000] [--kills 5]
                           [--hangs 3] [--kapacitord-kills 3] [--soak 0] [--only ROW ...]

Rows: malformed points into rfc_classifier and ads_model (one write, one point a write:
each output compared with a clean run's); NaN/inf at the protocol level (line protocol
cannot carry them); garbage frames; a 256 MB frame; kill -9 of a UDF; a hung handler;
kapacitord killed; a foreign or tampered model by every route; and, with --soak SECONDS,
points in = points out at 5,000 points/s through two ML tasks with the UDFs' RSS growth.
tests/test_fault_table.py runs the same cases with small counts. Progress goes to stderr; the
table to stdout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from entrypoint.supervisor import HEALTHY_RESET
from faultkit import model_routes, runs
from faultkit import protocol as faults
from faultkit.collector import Collector
from faultkit.runs import Soak
from localstack.kapacitord import LocalKapacitord, kapacitor_bin_dir, udf_function

Row = tuple[str, str, str, bool]


def progress(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def points_rows(bin_dir: Path, work: Path, good: int, bad: int) -> list[Row]:
    functions = [udf_function("rfc_classifier", "rfc_classifier.py", timeout="20s"),
                 udf_function("ads_model", "ads_model.py", timeout="20s")]
    kap = LocalKapacitord(bin_dir, work / "points", functions)
    collector = Collector()
    rows = []
    try:
        for udf in ("rfc_classifier", "ads_model"):
            for per_write in (False, True):
                how = "a point a write" if per_write else "one write"
                progress(f"{good:,} good + {bad:,} malformed points into {udf}, {how}")
                started = time.monotonic()
                run = runs.run_points(kap, collector, udf, good, bad, per_write)
                rows.append((
                    f"{bad:,} malformed points among {good:,} into {udf}, {how}",
                    "0 deaths; every bad point counted; 0 good points lost or changed",
                    f"{run.deaths} deaths; {run.refused_writes}/{run.refusable} unparsable "
                    f"(NaN, inf, 100 KB tag) refused by Kapacitor with HTTP 400; "
                    f"{run.bad_counted:,}/{run.bad:,} bad counted by the UDF, "
                    f"{run.bad_scored} scored; {run.good_out:,}/{good:,} good out, "
                    f"{run.changed} lost or changed ({time.monotonic() - started:.0f} s)",
                    run.ok))
    finally:
        collector.close()
        kap.stop()
    return rows


def protocol_values_row(count: int) -> Row:
    """NaN and infinities straight over the protocol, as a Kapacitor that let them through
    would send them (tests/test_bad_values.py does the same with the clean comparison)."""
    import random

    from localstack.udf_process import point_requests, read_points, spawn

    rng = random.Random(3)
    good = [faults.telemetry(rng, t) for t in range(count)]
    mixed = faults.mixed_stream(good, "torque", bad_count=count // 10)
    client = spawn("rfc_classifier.py")
    client.init({})
    client.send(point_requests(mixed.stream))
    out = read_points(client, len(mixed.stream), timeout=120)
    client.close_input()
    client.wait()
    scored_bad = sum(1 for p in out if "fault" in p.fieldsString and "prediction" in p.fieldsInt)
    rejected = sum(1 for p in out if "fault" in p.fieldsString and "error" in p.fieldsString)
    kinds = Counter(kind for _, kind in mixed.bad)
    return (f"{len(mixed.bad):,} NaN/±inf/huge/missing/string values at the protocol "
            f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}), rfc_classifier",
            "rejected with their own reason, never scored",
            f"{rejected:,}/{len(mixed.bad):,} rejected, {scored_bad} scored",
            rejected == len(mixed.bad) and scored_bad == 0)


def garbage_row(count: int) -> Row:
    progress(f"{count:,} garbage or truncated frames (one UDF process each)")
    results = [faults.run_garbage(kind, data) for kind, data in faults.garbage_cases(count)]
    hangs = sum(r.returncode is None for r in results)
    silent = sum(r.returncode not in (0, None) and not r.error for r in results)
    errors = sum(bool(r.error) for r in results)
    slowest = max(r.exit_s for r in results)
    peak = max(r.peak_rss_mb for r in results)
    return (f"{count:,} garbage or truncated frames, huge length prefixes, broken keepalives",
            f"0 hangs; exit within {faults.EXIT_DEADLINE:g} s of EOF with an ErrorResponse; "
            "memory bounded",
            f"{hangs} hangs, {silent} failures without an ErrorResponse ({errors:,} with one, "
            f"{count - errors - hangs:,} clean exits); slowest exit {slowest:.2f} s; "
            f"peak RSS {peak:.0f} MB",
            hangs == 0 and silent == 0 and slowest <= faults.EXIT_DEADLINE)


def big_frame_row() -> Row:
    from udfkit import framing, udf_pb2

    size = 256 << 20
    progress("a 256 MB frame")
    udf = faults.MeasuredUdf("mirror.py")
    client = udf.client
    client.init({})
    frame = framing.frame(udf_pb2.Request(restore=udf_pb2.RestoreRequest(
        snapshot=bytes(size - 16))).SerializeToString())
    start = time.monotonic()
    client.send_raw(frame)
    answer = client.recv(timeout=120)
    elapsed = time.monotonic() - start
    del frame
    client.close_input()
    ended = udf.wait(30)
    ok = answer.WhichOneof("message") == "restore" and elapsed <= 5 \
        and ended.peak_rss_mb <= 3 * 256
    return ("a 256 MB frame", "read in ≤ 5 s, peak memory ≤ 3x the frame",
            f"{elapsed:.1f} s wall ({ended.cpu_s:.1f} s CPU), peak RSS {ended.peak_rss_mb:.0f} MB "
            f"({ended.peak_rss_mb / 256:.1f}x)", ok)


def model_row(work: Path) -> Row:
    """The evil pickle by every route, into the real rfc_classifier's Init."""
    progress("a foreign or tampered model, by every route")
    base = work / "model"
    base.mkdir()
    evil, marker = model_routes.evil_pickle(base)
    models = model_routes.models_copy(base)
    results = [model_routes.try_route("rfc_classifier.py", route, name, models, marker)
               for route, name in model_routes.routes(evil, models).items()]
    refused = sum(r.refused and r.names_the_option for r in results)
    written = marker.exists()
    names = ", ".join(r.route for r in results)
    return (f"tampered or foreign model, {len(results)} routes ({names})",
            "refused before unpickling; marker never written",
            f"{refused}/{len(results)} refused at Init naming the option; marker "
            f"{'WRITTEN' if written else 'never written'}",
            refused == len(results) and not written)


def recovery_row(run: runs.Recovery, what: str) -> Row:
    samples = run.samples
    figures = (f"{len(samples)} trials: median {statistics.median(samples):.1f} s, "
               f"max {max(samples):.1f} s" if samples else "no trial completed")
    if run.failures:
        figures += "; " + "; ".join(run.failures[:3])
    return (run.case, f"{what} ≤ {run.target:g} s", figures, run.ok)


def soak_row(soak: Soak) -> Row:
    figures = "; ".join(
        f"{u}: {soak.sent:,} in, {n:,} scored, RSS {soak.warm_rss.get(u, 0):.0f} → "
        f"{soak.end_rss.get(u, 0):.0f} MB ({soak.growth(u):+.1f} %)"
        for u, n in soak.scored.items())
    return (f"{soak.seconds / 60:.1f} minutes at {soak.rate:,.0f} points/s "
            "(half to each of two ML tasks)",
            "points in = points out; UDF RSS growth < 5 %", figures, soak.ok)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=10_000, help="malformed points per run")
    parser.add_argument("--good", type=int, default=20_000, help="good points per run")
    parser.add_argument("--garbage", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--hangs", type=int, default=3)
    parser.add_argument("--kapacitord-kills", type=int, default=3)
    parser.add_argument("--soak", type=float, default=0.0,
                        help="seconds of the 5,000 points/s soak (0: not run)")
    parser.add_argument("--only", nargs="*", default=[],
                        choices=["points", "protocol", "garbage", "frame", "kills", "hangs",
                                 "kapacitord", "model", "soak"])
    args = parser.parse_args()
    want = set(args.only) or {"points", "protocol", "garbage", "frame", "kills", "hangs",
                              "kapacitord", "model", "soak"}
    bin_dir = kapacitor_bin_dir()
    work = Path(tempfile.mkdtemp(prefix="faults-"))
    rows: list[Row] = []
    if "points" in want:
        rows += points_rows(bin_dir, work, args.good, args.points)
    if "protocol" in want:
        rows.append(protocol_values_row(args.good // 4))
    if "garbage" in want:
        rows.append(garbage_row(args.garbage))
    if "frame" in want:
        rows.append(big_frame_row())
    if "model" in want:
        rows.append(model_row(work))
    if "kills" in want:
        progress(f"kill -9 of a UDF, {args.kills} times")
        # trials apart by more than the supervisor's reset: each is a first failure
        kills = runs.run_udf_kills(bin_dir, work / "kills", args.kills, HEALTHY_RESET + 1.5)
        rows.append(recovery_row(kills, "executing again after Kapacitor reports the error"))
    if "hangs" in want:
        progress(f"a hung handler, {args.hangs} times (UDF timeout 2 s)")
        rows.append(recovery_row(runs.run_hangs(bin_dir, work / "hangs", args.hangs),
                                 "restarted after the hang"))
    if "kapacitord" in want:
        progress(f"kapacitord killed, {args.kapacitord_kills} times")
        rows.append(recovery_row(
            runs.run_kapacitord_kills(bin_dir, work / "kapacitord", args.kapacitord_kills),
            "the entrypoint exits non-zero"))
    if "soak" in want and args.soak > 0:
        progress(f"soak: {args.soak:g} s at 5,000 points/s through two ML tasks")
        rows.append(soak_row(runs.soak(bin_dir, work / "soak", args.soak, 5000)))
    print("| case | target | measured | holds |\n|---|---|---|---|")
    for case, target, measured, ok in rows:
        print(f"| {case} | {target} | {measured} | {'yes' if ok else '**no**'} |")
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
