"""udfkit.columns: the group, time and value columns of a call are what protobuf reads, for
any point and any encoding; what the reader does not take is protobuf's, errors included."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from google.protobuf.message import DecodeError

from udfkit import udf_pb2
from udfkit.columns import MIN_READ, Columns
from udfkit.framing import encode_varint, point_field

Point = udf_pb2.Point


def as_protobuf_reads(messages: list[bytes], field: str = "value"
                      ) -> tuple[list[str], list[int], list[float | None]]:
    points = [udf_pb2.Request.FromString(m).point for m in messages]
    return ([p.group for p in points], [p.time for p in points],
            [p.fieldsDouble.get(field) for p in points])


def assert_reads_as_protobuf(messages: list[bytes], field: str = "value") -> Columns:
    columns = Columns(messages, field)
    groups, times, values = as_protobuf_reads(messages, field)
    assert columns.groups == groups
    assert columns.times == times
    assert columns.has_value.tolist() == [v is not None for v in values]
    found = [v for v in values if v is not None]
    assert columns.values[columns.has_value].tobytes() == np.array(found).tobytes()  # bits
    for i, message in enumerate(messages):
        assert columns[i] == udf_pb2.Request.FromString(message).point
    return columns


def random_point(rng: random.Random) -> Point:
    """Any point Kapacitor could send: some of each field, or none, and the watched field as
    a double, an int, a string or not at all."""
    p = Point(name=rng.choice(["", "cpu", "environment"]), database=rng.choice(["", "telemetry"]),
              retentionPolicy=rng.choice(["", "autogen"]), byName=rng.random() < 0.2)
    p.time = rng.choice([0, 1, -1, 2**63 - 1, -(2**63), rng.randrange(1 << 14),
                         1_700_000_000 * 10**9 + rng.randrange(10**12)])
    host = rng.choice(["h1", "hôte-7", "x" * 200, "", "a=b,c=d", "\u00e9" * 70])
    if rng.random() < 0.9:
        p.group = f"host={host}" if host else ""
        p.tags["host"] = host
        p.dimensions.append("host")
    for k in range(rng.randrange(4)):
        p.tags[f"t{k}"] = "v" * rng.randrange(300)
    kind = rng.choice(["double", "double", "double", "int", "string", "bool", "none"])
    value = rng.choice([0.0, -0.0, 21.5, float("nan"), float("inf"), 1e300, -3.25e-310])
    {"double": p.fieldsDouble, "int": p.fieldsInt, "string": p.fieldsString,
     "bool": p.fieldsBool}.get(kind, {})["value"] = {"int": 7, "string": "s", "bool": True}.get(
        kind, value)
    for k in range(rng.randrange(3)):
        p.fieldsDouble[f"value{k}"] = rng.random()  # a longer key that starts the same
        p.fieldsDouble[f"v{k}"] = rng.random()
        p.fieldsInt[f"n{k}"] = rng.randrange(-5, 5)
    if rng.random() < 0.05:
        p.fieldsString["big"] = "z" * 17000  # a Point of 16 KiB or more: protobuf's
    return p


@pytest.mark.parametrize("seed", range(6))
def test_random_points_read_as_protobuf_reads_them(seed: int) -> None:
    rng = random.Random(seed)
    messages = [udf_pb2.Request(point=random_point(rng)).SerializeToString()
                for _ in range(MIN_READ * 3)]
    columns = assert_reads_as_protobuf(messages)
    assert columns.direct >= 0.8 * len(messages), "most points are read without protobuf"


def field_bytes(number: int, payload: bytes | int) -> bytes:
    """One field as the wire has it: a varint for an int, length-delimited for bytes."""
    if isinstance(payload, int):
        return encode_varint(number << 3) + encode_varint(payload)
    return encode_varint(number << 3 | 2) + encode_varint(len(payload)) + payload


def double_entry(key: bytes, value: float) -> bytes:
    return field_bytes(1, key) + b"\x11" + struct.pack("<d", value)


ODD_ENCODINGS = {  # name: (a Point's bytes, read directly)
    "fields in reverse order": (field_bytes(8, double_entry(b"value", 3.5))
                                + field_bytes(5, b"host=a") + field_bytes(1, 5), True),
    "map entry with its value first": (field_bytes(8, b"\x11" + struct.pack("<d", 2.0)
                                                   + field_bytes(1, b"value")), False),
    "map entry without its value (0.0)": (field_bytes(8, field_bytes(1, b"value")), False),
    "map entry without its key (the key \"\")": (field_bytes(8, b"\x11" + bytes(8)), False),
    "the key given twice, the last wins": (field_bytes(8, double_entry(b"value", 1.0))
                                           + field_bytes(8, double_entry(b"value", 2.0)), True),
    "time and group given twice, the last wins": (field_bytes(1, 3) + field_bytes(5, b"g1")
                                                  + field_bytes(1, 4) + field_bytes(5, b"g2"),
                                                  True),
    "an unknown field": (field_bytes(1, 9) + field_bytes(13, b"new"), False),
    "a time of a 10-byte varint": (field_bytes(1, 2**64 - 5), True),
    "a varint with bits past 64 (dropped)": (b"\x08" + b"\xff" * 9 + b"\x7f", False),
    "an empty point": (b"", True),
}


@pytest.mark.parametrize("name", ODD_ENCODINGS)
def test_any_valid_encoding_reads_as_protobuf_reads_it(name: str) -> None:
    plain = udf_pb2.Request(point=Point(time=1, group="host=b", fieldsDouble={"value": 1.5}))
    odd, direct = ODD_ENCODINGS[name]
    messages = [plain.SerializeToString(), point_field(odd)] * MIN_READ
    messages.append(point_field(odd) + point_field(field_bytes(5, b"merged")))  # given twice
    columns = assert_reads_as_protobuf(messages)
    assert columns.direct == MIN_READ * (1 + direct)


@pytest.mark.parametrize("cut", [1, 5, 12, 20])
def test_a_malformed_message_raises_protobufs_error(cut: int) -> None:
    good = udf_pb2.Request(point=Point(time=1, group="host=b", fieldsDouble={"value": 1.5}))
    message = good.SerializeToString()
    broken = message[:2] + encode_varint(len(message) - 3) + message[3:-cut]  # claims no more
    with pytest.raises(DecodeError):
        Columns([message] * MIN_READ + [broken], "value")


def test_a_varint_of_eleven_bytes_is_protobufs_error() -> None:
    good = udf_pb2.Request(point=Point(time=1)).SerializeToString()
    with pytest.raises(DecodeError):
        Columns([good] * MIN_READ + [point_field(b"\x08" + b"\xff" * 10 + b"\x01")], "value")


def test_a_group_that_is_not_utf8_is_protobufs_error() -> None:
    message = point_field(field_bytes(5, b"host=\xff"))
    with pytest.raises(DecodeError):
        Columns([udf_pb2.Request(point=Point(time=1)).SerializeToString()] * MIN_READ
                + [message], "value")


def test_small_calls_and_other_fields_read_the_same() -> None:
    rng = random.Random(9)
    messages = [udf_pb2.Request(point=random_point(rng)).SerializeToString()
                for _ in range(MIN_READ + 5)]
    for count in (0, 1, MIN_READ - 1, MIN_READ):
        assert_reads_as_protobuf(messages[:count])
    for field in ("v0", "", "value1", "n0"):
        assert_reads_as_protobuf(messages, field)


def test_a_point_is_parsed_once_and_only_when_asked_for() -> None:
    messages = [udf_pb2.Request(point=Point(time=t, group="g", fieldsDouble={"value": 1.0}))
                .SerializeToString() for t in range(MIN_READ)]
    columns = Columns(messages, "value")
    first = columns[3]
    assert columns[3] is first and list(columns)[3] is first
    assert columns[-1].time == MIN_READ - 1 and [p.time for p in columns[1:3]] == [1, 2]
