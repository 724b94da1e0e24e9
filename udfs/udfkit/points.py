"""Helpers to read fields from and build Kapacitor points.

Output points must carry the input's name, database, retentionPolicy, tags,
dimensions and byName: Kapacitor recomputes the group from them.
"""

from __future__ import annotations

import math
from typing import Any

from udfkit import udf_pb2

Point = udf_pb2.Point


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
