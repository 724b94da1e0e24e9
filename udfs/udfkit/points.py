"""Helpers to read fields from and build Kapacitor points.

Output points must carry the input's name, database, retentionPolicy, tags,
dimensions and byName: Kapacitor recomputes the group from them.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

from udfkit import udf_pb2

Point = udf_pb2.Point
_DOUBLE = struct.Struct("<d")


class Encoded(NamedTuple):
    """An output point with fields to add already encoded (FieldEncoder): the agent sends
    the point's bytes followed by them. A handler may return these in place of points."""

    point: Point
    fields: bytes


class FieldEncoder:
    """Encodes a double and a bool field to append to many serialised points.

    A map entry after a message's own bytes is merged into it (for a key given twice the
    last entry wins, in every protobuf runtime), so adding two fields to a point costs a
    bytes join instead of two map writes, which in Python's protobuf cost more than
    parsing and serialising the point. The encodings come from protobuf itself."""

    def __init__(self, double_field: str, bool_field: str) -> None:
        probe = Point()
        probe.fieldsDouble[double_field] = 1.0
        data = probe.SerializeToString()
        if not data.endswith(_DOUBLE.pack(1.0)):
            raise RuntimeError("unexpected encoding of a double map entry")
        self._prefix = data[:-_DOUBLE.size]
        self._flags = {flag: Point(fieldsBool={bool_field: flag}).SerializeToString()
                       for flag in (False, True)}

    def __call__(self, value: float, flag: bool) -> bytes:
        return self._prefix + _DOUBLE.pack(value) + self._flags[flag]

    def encode_all(self, points: Sequence[Point], values: Any, flags: Sequence[bool]
                   ) -> list[Encoded]:
        """Each point with its value and flag (`values`: a float64 array or sequence): the
        doubles are packed at once and cut per point."""
        import numpy as np  # here, not at import: a UDF's Info must not wait for it

        raw = np.asarray(values, dtype="<f8").tobytes()
        prefix, marks, new = self._prefix, self._flags, tuple.__new__
        return [new(Encoded, (point, prefix + raw[i:i + 8] + marks[flag]))
                for point, i, flag in zip(points, range(0, 8 * len(points), 8), flags,
                                          strict=True)]


def decoded(item: Point | Encoded) -> Point:
    """The point the agent sends for a handler's output item (for tools and tests)."""
    if isinstance(item, Encoded):
        return Point.FromString(item.point.SerializeToString() + item.fields)
    return item


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
