"""Building requests and spawning UDF scripts for the agent's tests."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from types import ModuleType

from tests.conftest import ROOT
from udfkit import udf_pb2
from udfkit.client import UdfClient

Request = udf_pb2.Request


def spawn(script: str, *args: str, env: dict | None = None) -> UdfClient:
    """A UDF script from udfs/ (or tests/udfs/ with a 'tests/' prefix), as Kapacitor runs it."""
    path = ROOT / script if script.startswith("tests/") else ROOT / "udfs" / script
    return UdfClient.spawn([sys.executable, "-u", str(path), *args], env=env)


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


def point_requests(points: Iterable[udf_pb2.Point]) -> list[Request]:
    return [Request(point=p) for p in points]


def read_points(client: UdfClient, n: int, timeout: float = 10.0) -> list[udf_pb2.Point]:
    out = []
    while len(out) < n:
        resp = client.recv(timeout)
        if resp.WhichOneof("message") == "point":
            out.append(resp.point)
        elif resp.WhichOneof("message") == "error":
            raise AssertionError(f"UDF error: {resp.error.error}")
    return out
