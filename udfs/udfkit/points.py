"""Helpers to read fields from and build Kapacitor points.

Output points must carry the input's name, database, retentionPolicy, tags,
dimensions and byName: Kapacitor recomputes the group from them.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any, NamedTuple

from udfkit import framing, udf_pb2

Point = udf_pb2.Point
_DOUBLE = struct.Struct("<d")


class Encoded(NamedTuple):
    """An input point to send on as it came, with fields to add, already encoded.

    The agent sends the bytes the point came in (a Request{point}: Response.point is the
    same field), then `fields`, a Response{point} holding just the added fields
    (FieldEncoder, or as_fields for any). A parser merges a message field given twice, and
    for a map key given twice the last entry wins, in every protobuf runtime: Kapacitor reads
    the point with the fields added, and the point is never serialised again. So changes
    made to `point` itself are not sent: add them as fields. A point that is not an input of
    the call (a new one) is serialised. A handler may return these in place of points."""

    point: Point
    fields: bytes


def as_fields(point: Point) -> bytes:
    """The fields set on `point` (a Point holding just them), encoded to follow a point."""
    return framing.point_field(point.SerializeToString())


class FieldEncoder:
    """Encodes a double and a bool field to add to many points (Encoded.fields).

    Every point's fields have one size: the encoding of two fixed keys, the double's 8 bytes
    and the bool's one. They are built for a whole call as rows of one numpy record array
    and cut per point; the layout is taken from protobuf's own encoding and checked."""

    def __init__(self, double_field: str, bool_field: str) -> None:
        import numpy as np  # here, not at import: a UDF's Info must not wait for it

        probe = 0.1234567890123  # its 8 bytes occur once in the encoding
        encoded = as_fields(Point(fieldsDouble={double_field: probe},
                                  fieldsBool={bool_field: True}))
        at = encoded.find(_DOUBLE.pack(probe))
        if encoded.count(_DOUBLE.pack(probe)) != 1 or not encoded.endswith(b"\x01"):
            raise RuntimeError("unexpected encoding of a double and a bool map entry")
        self.record = np.dtype([("head", f"V{at}"), ("value", "<f8"),
                                ("mark", f"V{len(encoded) - at - 9}"), ("flag", "u1")])
        self._head = np.frombuffer(encoded[:at], dtype=self.record["head"])[0]
        self._mark = np.frombuffer(encoded[at + 8:-1], dtype=self.record["mark"])[0]

    def __call__(self, value: float, flag: bool) -> bytes:
        return self.records([value], [flag]).tobytes()

    def records(self, values: Any, flags: Any) -> Any:
        """The encoded fields of each value and flag, one record each."""
        import numpy as np

        out = np.empty(len(values), dtype=self.record)
        out["head"], out["mark"] = self._head, self._mark
        out["value"], out["flag"] = values, flags
        return out

    def annotate(self, points: Sequence[Point], values: Any, flags: Any) -> Annotated:
        """Each point with its value and flag (`values`, `flags`: arrays or sequences)."""
        return Annotated(points, self.records(values, flags).tobytes(), self.record.itemsize)


@dataclass(frozen=True, slots=True)
class Annotated:
    """A vectorised handler's output that adds fields to each of its input points.

    Point k (an input of the call, in order) is sent as it came (see Encoded), followed by
    its own `size` bytes of `fields` and any `extra[k]` (more encoded fields), then the new
    points `after[k]`. One object for the call, so the agent frames it without a Python
    object per point; items() gives the same as Encoded items and points."""

    points: Sequence[Point]
    fields: bytes
    size: int
    extra: dict[int, bytes] = default(default_factory=dict)
    after: dict[int, list[Point]] = default(default_factory=dict)

    def fields_of(self, k: int) -> bytes:
        return self.fields[k * self.size:(k + 1) * self.size] + self.extra.get(k, b"")

    def items(self) -> list[Point | Encoded]:
        out: list[Point | Encoded] = []
        for k, point in enumerate(self.points):
            out.append(Encoded(point, self.fields_of(k)))
            out.extend(self.after.get(k, ()))
        return out


def decoded(out: Sequence[Point | Encoded] | Annotated) -> list[Point]:
    """The points the agent sends for a handler's output (for tools and tests)."""
    items = out.items() if isinstance(out, Annotated) else out
    return [udf_pb2.Response.FromString(as_fields(item.point) + item.fields).point
            if isinstance(item, Encoded) else item for item in items]


class PointError(ValueError):
    """A point lacks a field a UDF needs, or carries the wrong type."""


def like(src: Point, time: int | None = None) -> Point:
    """A new point with src's series identity (name, db, rp, group, tags, dimensions, byName)."""
    out = Point(
        time=src.time if time is None else time,
        name=src.name,
        database=src.database,
        retentionPolicy=src.retentionPolicy,
        group=src.group,
        byName=src.byName,
    )
    out.tags.update(src.tags)
    out.dimensions.extend(src.dimensions)
    return out


def number(point: Point, field: str, limit: float = math.inf) -> float:
    """A finite numeric field as float, from the double or int map; PointError names the field.

    NaN and +-inf are never a measurement; `limit` bounds the magnitude a UDF can use
    (e.g. what its model's arithmetic survives).
    """
    values = point.fieldsDouble
    if field in values:
        value = values[field]
    elif field in point.fieldsInt:
        value = float(point.fieldsInt[field])
    elif field in point.fieldsString or field in point.fieldsBool:
        raise PointError(f"field {field!r} is not a number")
    else:
        raise PointError(f"field {field!r} is missing")
    if not math.isfinite(value):
        raise PointError(f"field {field!r} is {value}, not a finite number")
    if abs(value) > limit:
        raise PointError(f"field {field!r} is {value:g}, out of range (|value| <= {limit:g})")
    return value


def set_field(point: Point, field: str, value: Any) -> None:
    """Store value in the field map that matches its Python type (bool before int)."""
    if isinstance(value, bool):
        point.fieldsBool[field] = value
    elif isinstance(value, int):
        point.fieldsInt[field] = value
    elif isinstance(value, float):
        point.fieldsDouble[field] = value
    elif isinstance(value, str):
        point.fieldsString[field] = value
    else:
        point.fieldsDouble[field] = float(value)


def fields(point: Point) -> dict[str, Any]:
    """All fields of a point in one dict (for tools and tests, not hot paths)."""
    out: dict[str, Any] = {}
    out.update(point.fieldsDouble)
    out.update(point.fieldsInt)
    out.update(point.fieldsString)
    out.update(point.fieldsBool)
    return out
