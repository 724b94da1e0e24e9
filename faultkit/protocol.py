"""Faults at the UDF protocol, without a server: garbage frames and bad values.

A garbage case is a byte string a broken or hostile Kapacitor side might send after a
good Info and Init. The run of a case spawns the UDF as Kapacitor does, sends it,
closes the input and times the exit: a hang, a failure without an ErrorResponse
or unbounded memory is a fault. Bad values (NaN, infinities, strings, missing fields)
are mixed into synthetic streams of AI4I telemetry or sensor readings.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from localstack.udf_process import command
from udfkit import framing, udf_pb2
from udfkit.client import UdfClient
from udfkit.points import set_field

Request = udf_pb2.Request
LAUNCHER = Path(__file__).with_name("peak_rss.py")
EXIT_DEADLINE = 5.0
"""Seconds from the end of input by which the UDF must have exited."""


def _good_frames(rng: random.Random) -> bytes:
    """A few legal requests (points and keepalives) for the mutations to start from."""
    requests = []
    for i in range(rng.randint(1, 5)):
        point = udf_pb2.Point(time=i, name="m", group="g")
        point.fieldsDouble["v"] = rng.random()
        requests.append(Request(point=point))
        if rng.random() < 0.3:
            requests.append(Request(keepalive=udf_pb2.KeepaliveRequest(time=rng.getrandbits(40))))
    return b"".join(framing.frame(r.SerializeToString()) for r in requests)


def _random_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(1, 300))


def _random_payload(rng: random.Random) -> bytes:
    return framing.frame(rng.randbytes(rng.randint(1, 300)))


def _truncated(rng: random.Random) -> bytes:
    good = _good_frames(rng)
    return good[:rng.randint(1, len(good) - 1)]


def _huge_length(rng: random.Random) -> bytes:
    length = rng.choice([framing.MAX_FRAME_BYTES + 1, 1 << 40, (1 << 63) - 1])
    return framing.encode_varint(length) + rng.randbytes(rng.randint(0, 64))


def _long_length_then_eof(rng: random.Random) -> bytes:
    """A legal length prefix (up to the limit) followed by far fewer bytes."""
    return framing.encode_varint(rng.randint(1 << 16, framing.MAX_FRAME_BYTES)) + b"\x8a" * 100


def _broken_keepalive(rng: random.Random) -> bytes:
    """The Keepalive tag (field 3, length-delimited) with a body that does not parse."""
    body = bytes([3 << 3 | 2]) + rng.choice([b"\xff", b"\x05\x08", b"\x02\x08\xff", b"\x7f"])
    return _good_frames(rng) + framing.frame(body)


def _mutated(rng: random.Random) -> bytes:
    data = bytearray(_good_frames(rng))
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


CASE_KINDS = {
    "random bytes": _random_bytes,
    "random payload": _random_payload,
    "truncated": _truncated,
    "huge length": _huge_length,
    "long length, then EOF": _long_length_then_eof,
    "broken keepalive": _broken_keepalive,
    "mutated": _mutated,
}


def garbage_cases(count: int, seed: int = 11) -> list[tuple[str, bytes]]:
    """`count` cases, every kind in turn, reproducible from the seed."""
    rng = random.Random(seed)
    kinds = list(CASE_KINDS.items())
    return [(kinds[i % len(kinds)][0], kinds[i % len(kinds)][1](rng)) for i in range(count)]


@dataclass
class GarbageResult:
    kind: str
    returncode: int | None  # None: still running EXIT_DEADLINE after the end of input
    exit_s: float
    error: str  # the ErrorResponse, "" if none came
    peak_rss_mb: float


@dataclass
class ChildExit:
    returncode: int | None  # None: still running at the deadline
    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0  # user + system: what the work cost, however busy the machine


class MeasuredUdf:
    """A UDF started under faultkit/peak_rss.py, so that its peak RSS is its own and not
    the size of the (maybe large) process that started it."""

    def __init__(self, script: str | Path) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="peak-rss-")
        self._report = Path(self._dir.name) / "rusage.json"
        self.client = UdfClient.spawn(
            [sys.executable, str(LAUNCHER), str(self._report), *command(script)])

    def wait(self, timeout: float) -> ChildExit:
        """Wait for the UDF to exit; at the deadline kill it (returncode None)."""
        proc, timed_out = self.client.proc, False
        assert proc is not None  # spawned above
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.terminate()  # the launcher kills the UDF, then reports as for any exit
            proc.wait()
        with self._dir:
            usage = json.loads(self._report.read_text())
        return ChildExit(None if timed_out else proc.returncode, usage["maxrss_kb"] / 1024,
                         usage["cpu_s"])


def run_garbage(kind: str, data: bytes, script: str | Path = "mirror.py") -> GarbageResult:
    """Info, Init, the garbage, end of input: how the UDF ends."""
    udf = MeasuredUdf(script)
    client = udf.client
    try:
        client.info()
        client.init({})
        client.send_raw(data)
    except (OSError, EOFError, TimeoutError):
        pass  # the UDF may already have given up on the garbage
    with contextlib.suppress(OSError):
        client.close_input()
    start = time.monotonic()
    ended = udf.wait(EXIT_DEADLINE)
    exit_s = time.monotonic() - start
    return GarbageResult(kind, ended.returncode, exit_s, _error_response(client),
                         ended.peak_rss_mb)


def _error_response(client: UdfClient) -> str:
    while True:
        try:
            response = client.recv(timeout=1.0)
        except (EOFError, TimeoutError):
            return ""
        if response.WhichOneof("message") == "error":
            return response.error.error


# -- malformed points ----------------------------------------------------------------------
def _set(point: udf_pb2.Point, field: str, value) -> udf_pb2.Point:
    """The point with `field` holding `value` in the map of its type (None: no field)."""
    for values in (point.fieldsDouble, point.fieldsInt, point.fieldsString, point.fieldsBool):
        values.pop(field, None)
    if value is not None:
        set_field(point, field, value)
    return point


BAD_VALUES = {
    "missing": None,
    "NaN": math.nan,
    "+inf": math.inf,
    "-inf": -math.inf,
    "string": "12.5",
    "bool": True,
    "huge": 1e308,
}
"""A bad value for a numeric field; each must be rejected with a reason naming it."""


def spoil(point: udf_pb2.Point, field: str, kind: str) -> udf_pb2.Point:
    """A copy of point whose `field` holds the bad value `kind` (a BAD_VALUES key)."""
    bad = udf_pb2.Point()
    bad.CopyFrom(point)
    return _set(bad, field, BAD_VALUES[kind])


def odd_but_valid(point: udf_pb2.Point, rng: random.Random) -> udf_pb2.Point:
    """A good point made odd where no UDF looks: a 100 KB tag or a time before 1970."""
    odd = udf_pb2.Point()
    odd.CopyFrom(point)
    if rng.random() < 0.5:
        odd.tags["note"] = "x" * 100_000
    else:
        odd.time = -odd.time - 1
    return odd


def ai4i_values(rng: random.Random) -> tuple[int, dict[str, float]]:
    """One machine reading in AI4I's ranges: (product type 0-2, rfc_classifier's five fields).
    The one generator of such readings for the benches, the fault runs and the tests."""
    air = rng.gauss(300.0, 2.0)
    return rng.randrange(3), {
        "air_temperature": air, "process_temperature": air + rng.gauss(10.0, 1.0),
        "rotational_speed": rng.gauss(1540.0, 180.0), "torque": rng.gauss(40.0, 10.0),
        "tool_wear": rng.uniform(0.0, 250.0)}


def telemetry(rng: random.Random, t: int, machine: str = "m1") -> udf_pb2.Point:
    """A machine telemetry point (ai4i_values), as rfc_classifier reads it."""
    point = udf_pb2.Point(time=t, name="telemetry", database="db", retentionPolicy="autogen",
                          group=f"machine={machine}")
    point.tags["machine"] = machine
    point.fieldsInt["product_type"], values = ai4i_values(rng)
    point.fieldsDouble.update(values)
    return point


def sensor(rng: random.Random, t: int, group: str) -> udf_pb2.Point:
    """A sensor reading as ads_model reads it: a daily-ish wave with noise and rare spikes."""
    value = 20.0 + 5.0 * math.sin(t / 50.0) + rng.gauss(0.0, 0.3)
    if rng.random() < 0.005:
        value += 15.0
    point = udf_pb2.Point(time=t, name="sensors", database="db", retentionPolicy="autogen",
                          group=f"sensor={group}")
    point.tags["sensor"] = group
    point.fieldsDouble["value"] = value
    return point


@dataclass
class Mixed:
    """A stream with bad points among good ones; `good` in order, `bad` as (point, kind)."""

    stream: list[udf_pb2.Point]
    good: list[udf_pb2.Point]
    bad: list[tuple[udf_pb2.Point, str]]


def mixed_stream(good: list[udf_pb2.Point], field: str, bad_count: int,
                 seed: int = 11) -> Mixed:
    """Bad copies of random good points (every BAD_VALUES kind in turn) spliced in at random
    places; a tenth of the good points made odd but valid."""
    rng = random.Random(seed)
    good = [odd_but_valid(p, rng) if rng.random() < 0.1 else p for p in good]
    kinds = list(BAD_VALUES)
    bad = [(spoil(rng.choice(good), field, kinds[i % len(kinds)]), kinds[i % len(kinds)])
           for i in range(bad_count)]
    stream = list(good)
    for point, kind in bad:
        point.fieldsString["fault"] = kind  # to find it again in the output
        stream.insert(rng.randrange(len(stream) + 1), point)
    return Mixed(stream, good, bad)
