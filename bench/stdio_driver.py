"""Drive a process UDF over stdio as fast as it will go, counting responses without parsing.

Shared by the benchmarks: it measures the UDF, not a Python protobuf parser
on the driver side.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localstack import ROOT
from udfkit import framing, udf_pb2
from udfkit.client import init_request


@dataclass
class Run:
    points: int
    seconds: float
    rss_kib: int
    gc_ms: float | None = None
    """Time in the garbage collector, from the agent's stop line (None for other UDFs)."""

    @property
    def rate(self) -> float:
        return self.points / self.seconds


def framed_points(points: list[udf_pb2.Point]) -> bytes:
    return b"".join(framing.frame(udf_pb2.Request(point=p).SerializeToString()) for p in points)


def handshake(options: Mapping[str, Any] | None = None) -> bytes:
    """A framed InitRequest of task "bench" with these option values."""
    return framing.frame(init_request(options or {}, "bench").SerializeToString())


def drive(cmd: list[str], payload: bytes, expected: int, env: dict | None = None,
          init: bytes = b"") -> Run:
    """Write points, read until `expected` point responses have come back.

    `init` (a framed InitRequest) is answered before the clock starts, so model
    loading is not counted as throughput.
    """
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=log, env=env, cwd=ROOT)
        seen, seconds, rss = _count_responses(proc, payload, expected, init)
        log.seek(0)
        gc = re.search(rb"stopped: .*; gc (\d+) ms", log.read())
    return Run(seen, seconds, rss, float(gc.group(1)) if gc else None)


def _count_responses(proc: subprocess.Popen, payload: bytes, expected: int,
                     init: bytes) -> tuple[int, float, int]:
    decoder = framing.FrameDecoder()
    fd = proc.stdout.fileno()
    if init:
        proc.stdin.write(init)
        proc.stdin.flush()
        while not decoder.feed(os.read(fd, 1 << 16)):
            pass
    writer = threading.Thread(target=_write, args=(proc, payload), daemon=True)
    seen = 0
    start = time.perf_counter()
    writer.start()
    while seen < expected:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            raise RuntimeError(f"UDF closed its output after {seen} of {expected} points")
        seen += sum(1 for f in decoder.feed(chunk) if framing.frame_kind(f) == framing.POINT)
    seconds = time.perf_counter() - start
    rss = _rss_kib(proc.pid)
    writer.join()
    proc.stdin.close()
    while os.read(fd, 1 << 20):  # drain whatever else it emits, so it can exit
        pass
    proc.wait(timeout=30)
    return seen, seconds, rss


def _write(proc: subprocess.Popen, payload: bytes) -> None:
    try:
        proc.stdin.write(payload)
        proc.stdin.flush()
    except BrokenPipeError:
        pass


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
