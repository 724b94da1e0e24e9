"""Run any UDF over the real protocol on a CSV or line-protocol file, without Kapacitor.

    python -m udfkit.replay ads_model --csv training_data_sets/nab/art_daily_jumpsup.csv \\
        --option learn=600 --out scored.csv

The UDF runs as a child process exactly as Kapacitor runs it (Info, Init with
the options typed by what Info declares, then points, or batches of
--batch-size points for a batch UDF). Each CSV column but the time column
becomes a field; what comes out is written as CSV.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from udfkit import framing, udf_pb2
from udfkit.client import UdfClient
from udfkit.options import BOOL, DOUBLE, DURATION, INT, TYPE_NAMES
from udfkit.points import fields, set_field

UDFS_DIR = Path(__file__).resolve().parent.parent
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w)$")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
            "h": 3600 * 10**9, "d": 86400 * 10**9, "w": 7 * 86400 * 10**9}


class ReplayError(ValueError):
    """The input file or an option cannot be turned into what the UDF expects."""


# -- input ---------------------------------------------------------------------------
def parse_time(text: str) -> int:
    """Nanoseconds since the epoch from an ISO date-time (UTC if naive) or an epoch number."""
    text = text.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text)
        value = float(digits)
        scale = 1 if value > 1e17 else 10**3 if value > 1e14 else 10**6 if value > 1e11 else 10**9
        whole, _, fraction = digits.partition(".")  # exact for integers: no float rounding
        return sign * (int(whole) * scale + round(float(f"0.{fraction or 0}") * scale))
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def typed(text: str) -> Any:
    """A CSV cell as int, float or string (empty cells are left out)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def csv_points(stream: TextIO, measurement: str, tags: dict[str, str],
               time_column: str | None = None) -> Iterator[udf_pb2.Point]:
    reader = csv.DictReader(stream)
    columns = reader.fieldnames or []
    time_column = time_column or next((c for c in columns if c.lower() in ("timestamp", "time")),
                                      None)
    if time_column not in columns:
        raise ReplayError(f"no time column (looked for {time_column or 'timestamp/time'} "
                          f"in {columns})")
    for line, row in enumerate(reader, start=2):
        try:
            t = parse_time(row[time_column])
        except ValueError as exc:
            raise ReplayError(f"line {line}: bad time {row[time_column]!r}: {exc}") from None
        point = _point(measurement, tags, t)
        for name, cell in row.items():
            if name != time_column and cell not in ("", None):
                set_field(point, name, typed(cell))
        yield point


def line_protocol_points(stream: TextIO, tags: dict[str, str]) -> Iterator[udf_pb2.Point]:
    """InfluxDB line protocol: measurement[,tag=v...] field=v[,field=v...] [time_ns]."""
    for line_no, line in enumerate(stream, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = _split_unescaped(line, " ")
        if len(parts) not in (2, 3):
            raise ReplayError(f"line {line_no}: expected 'series fields [time]', got {line!r}")
        series = _split_unescaped(parts[0], ",")
        point = _point(_unescape(series[0]), tags, int(parts[2]) if len(parts) == 3 else 0)
        for pair in series[1:]:
            key, _, value = pair.partition("=")
            point.tags[_unescape(key)] = _unescape(value)
        for pair in _split_unescaped(parts[1], ","):
            key, _, value = pair.partition("=")
            set_field(point, _unescape(key), _lp_value(value, line_no))
        yield point


def _lp_value(value: str, line_no: int) -> Any:
    if value.startswith('"'):
        return value[1:-1].replace('\\"', '"')
    if value in ("t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"):
        return value.lower().startswith("t")
    try:
        return int(value[:-1]) if value.endswith(("i", "u")) else float(value)
    except ValueError:
        raise ReplayError(f"line {line_no}: bad field value {value!r}") from None


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, quoted, i = [], [], False, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return [p for p in parts if p != ""] if sep == " " else parts


def _unescape(text: str) -> str:
    return re.sub(r"\\([ ,=\\])", r"\1", text)


def _point(measurement: str, tags: dict[str, str], t: int) -> udf_pb2.Point:
    point = udf_pb2.Point(time=t, name=measurement, database="replay",
                          retentionPolicy="autogen")
    point.tags.update(tags)
    return point


# -- options ---------------------------------------------------------------------------
def option_value(name: str, text: str, declared: udf_pb2.InfoResponse) -> Any:
    """Convert `--option name=text` to the type the UDF declared for `name`."""
    if name not in declared.options:
        known = ", ".join(sorted(declared.options)) or "none"
        raise ReplayError(f"{name}: unknown option (this UDF takes: {known})")
    kind = declared.options[name].valueTypes[0]
    try:
        if kind == BOOL:
            if text.lower() not in ("true", "false"):
                raise ValueError("expected true or false")
            return text.lower() == "true"
        if kind == INT:
            return int(text)
        if kind == DOUBLE:
            return float(text)
        if kind == DURATION:
            match = _DURATION.match(text)
            if not match:
                raise ValueError("expected a duration such as 10s or 5m")
            return dt.timedelta(microseconds=float(match[1]) * _UNIT_NS[match[2]] / 1000)
    except ValueError as exc:
        raise ReplayError(f"{name}: expected {TYPE_NAMES[kind]}, got {text!r} ({exc})") from None
    return text


# -- running ---------------------------------------------------------------------------
def udf_command(udf: str, mode: str | None) -> list[str]:
    path = Path(udf)
    if not path.suffix:
        path = UDFS_DIR / f"{udf}.py"
    if not path.is_file():
        raise ReplayError(f"UDF script not found: {path}")
    return [sys.executable, "-u", str(path), *(["--mode", mode] if mode else [])]


def replay(cmd: list[str], points: Iterable[udf_pb2.Point], options: dict[str, str],
           batch_size: int = 0) -> tuple[list[udf_pb2.Point], list[str]]:
    """Feed points to the UDF as Kapacitor would; return what it emitted and its log lines."""
    client = UdfClient.spawn(cmd)
    info = client.info()
    typed_options = {k: option_value(k, v, info) for k, v in options.items()}
    init = client.init(typed_options)
    if not init.success:
        client.close_input()
        raise ReplayError(f"the UDF refused its options: {init.error}")
    if info.wants == udf_pb2.BATCH:
        client.send_raw(b"".join(_batches(points, batch_size or 100)))
    else:
        client.send_raw(b"".join(framing.frame(udf_pb2.Request(point=p).SerializeToString())
                                 for p in points))
    client.close_input()
    out = []
    while True:
        try:
            response = client.recv(timeout=600)
        except EOFError:
            break
        kind = response.WhichOneof("message")
        if kind == "point":
            out.append(response.point)
        elif kind == "error":
            raise ReplayError(f"the UDF failed: {response.error.error}")
    client.wait()
    return out, client.stderr


def _batches(points: Iterable[udf_pb2.Point], size: int) -> Iterator[bytes]:
    window: list[udf_pb2.Point] = []
    for point in [*points, None]:
        if point is not None:
            window.append(point)
        if window and (point is None or len(window) == size):
            first = window[0]
            begin = udf_pb2.BeginBatch(name=first.name, size=len(window))
            end = udf_pb2.EndBatch(name=first.name, tmax=window[-1].time)
            yield framing.frame(udf_pb2.Request(begin=begin).SerializeToString())
            for p in window:
                batch_point = udf_pb2.Point(time=p.time)
                batch_point.tags.update(p.tags)
                for name in ("fieldsDouble", "fieldsInt", "fieldsString", "fieldsBool"):
                    getattr(batch_point, name).update(getattr(p, name))
                yield framing.frame(udf_pb2.Request(point=batch_point).SerializeToString())
            yield framing.frame(udf_pb2.Request(end=end).SerializeToString())
            window = []


def write_csv(points: list[udf_pb2.Point], stream: TextIO) -> None:
    """time (RFC 3339), name, then every tag and field that occurs, in first-seen order."""
    columns: dict[str, None] = {}
    rows = []
    for p in points:
        row: dict[str, Any] = {**p.tags, **fields(p)}
        columns.update(dict.fromkeys(row))
        rows.append((p, row))
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["time", "name", *columns])
    for p, row in rows:
        stamp = dt.datetime.fromtimestamp(p.time / 1e9, dt.UTC).isoformat()
        writer.writerow([stamp, p.name, *(row.get(c, "") for c in columns)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m udfkit.replay", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("udf", help="a UDF name from udfs/ (e.g. ads_model) or a script path")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", type=Path, help="CSV with a timestamp/time column")
    source.add_argument("--lp", type=Path, help="input: an InfluxDB line-protocol file "
                        "instead of a CSV (the output is CSV either way)")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--mode", choices=["stream", "batch"], help="the UDF script's variant")
    parser.add_argument("--measurement", default="replay", help="point name for CSV input")
    parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--time-column", help="CSV time column (default: timestamp or time)")
    parser.add_argument("--batch-size", type=int, default=100, help="points per batch")
    parser.add_argument("--out", type=Path, help="write the output CSV here (default: stdout; "
                        "out/ is git-ignored)")
    args = parser.parse_args(argv)
    try:
        options = dict(_pair(o, "--option") for o in args.option)
        tags = dict(_pair(t, "--tag") for t in args.tag)
        with open(args.csv or args.lp, newline="") as fh:
            points = list(csv_points(fh, args.measurement, tags, args.time_column) if args.csv
                          else line_protocol_points(fh, tags))
        out, log = replay(udf_command(args.udf, args.mode), points, options, args.batch_size)
    except (ReplayError, OSError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    for line in log:
        print(line, file=sys.stderr)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as fh:
            write_csv(out, fh)
    else:
        write_csv(out, sys.stdout)
    return 0


def _pair(text: str, flag: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ReplayError(f"{flag} {text!r}: expected NAME=VALUE")
    return key, value


if __name__ == "__main__":
    sys.exit(main())
