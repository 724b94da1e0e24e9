"""A UDF script run as Kapacitor runs it (a child process on stdin/stdout), for the tools,
benches and tests that talk to one directly."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from localstack import ROOT
from udfkit import udf_pb2
from udfkit.client import UdfClient

Request = udf_pb2.Request


def command(script: str | Path, *args: str) -> list[str]:
    """How Kapacitor runs a UDF script: a name in udfs/ (``"mirror.py"``) or a path."""
    path = script if isinstance(script, Path) else ROOT / "udfs" / script
    return [sys.executable, "-u", str(path), *args]


def spawn(script: str | Path, *args: str, env: dict | None = None) -> UdfClient:
    """A UDF script as Kapacitor runs it (a child process on stdin/stdout)."""
    return UdfClient.spawn(command(script, *args), env=env)


def point_requests(points: Iterable[udf_pb2.Point]) -> list[Request]:
    return [Request(point=p) for p in points]


def read_points(client: UdfClient, n: int, timeout: float = 10.0) -> list[udf_pb2.Point]:
    """The next `n` points the UDF answers; an ErrorResponse instead raises AssertionError."""
    out: list[udf_pb2.Point] = []
    while len(out) < n:
        resp = client.recv(timeout)
        if resp.WhichOneof("message") == "point":
            out.append(resp.point)
        elif resp.WhichOneof("message") == "error":
            raise AssertionError(f"UDF error: {resp.error.error}")
    return out
