"""Building requests and spawning UDF scripts for the agent's tests."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from localstack.udf_process import Request, point_requests, read_points, spawn
from tests.conftest import ROOT
from udfkit import udf_pb2

__all__ = ["Request", "point", "point_requests", "read_points", "spawn", "udf_module"]


def udf_module(script: str) -> ModuleType:
    """A UDF script of udfs/ imported in-process (scripts are not packages: loaded by path)."""
    spec = importlib.util.spec_from_file_location(script.removesuffix(".py"),
                                                  ROOT / "udfs" / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def point(t: int, group: str = "", **fields) -> udf_pb2.Point:
    p = udf_pb2.Point(time=t, name="m", database="db", retentionPolicy="autogen", group=group)
    p.tags["host"] = group or "a"
    for key, value in fields.items():
        if isinstance(value, float):
            p.fieldsDouble[key] = value
        elif isinstance(value, int):
            p.fieldsInt[key] = value
        else:
            p.fieldsString[key] = value
    return p
