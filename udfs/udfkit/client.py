"""Kapacitor's side of the UDF protocol: spawn a UDF, send requests, read responses.

Used by the replay tool and the tests. It is a client of the real protocol,
not a replacement for kapacitord: the integration tests use the real one.
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import subprocess
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from udfkit import framing, udf_pb2
from udfkit.options import BOOL, DOUBLE, DURATION, INT, STRING
from udfkit.udf_pb2 import Request, Response


def option_values(value: Any) -> list[udf_pb2.OptionValue]:
    """Typed like a TICKscript: True BOOL, 3 INT, 3.0 DOUBLE, 'x' STRING, timedelta DURATION."""
    values = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in values:
        if isinstance(v, bool):
            out.append(udf_pb2.OptionValue(type=BOOL, boolValue=v))
        elif isinstance(v, int):
            out.append(udf_pb2.OptionValue(type=INT, intValue=v))
        elif isinstance(v, float):
            out.append(udf_pb2.OptionValue(type=DOUBLE, doubleValue=v))
        elif isinstance(v, dt.timedelta):
            nanos = int(v.total_seconds() * 1e9)
            out.append(udf_pb2.OptionValue(type=DURATION, durationValue=nanos))
        else:
            out.append(udf_pb2.OptionValue(type=STRING, stringValue=str(v)))
    return out


def init_request(options: Mapping[str, Any], task: str = "replay", node: str = "udf1") -> Request:
    init = udf_pb2.InitRequest(taskID=task, nodeID=node)
    for name, value in options.items():
        init.options.add(name=name).values.extend(option_values(value))
    return Request(init=init)


class UdfClient:
    """Talks to one UDF over a pair of file descriptors (a child's pipes or a socket)."""

    def __init__(self, write_fd: int, read_fd: int, proc: subprocess.Popen | None = None) -> None:
        self._write_fd = write_fd
        self._read_fd = read_fd
        self.proc = proc
        self.stderr: list[str] = []
        self._responses: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._read_loop, daemon=True).start()
        if proc is not None and proc.stderr is not None:
            threading.Thread(target=self._drain_stderr, daemon=True).start()

    @classmethod
    def spawn(cls, cmd: list[str], env: Mapping[str, str] | None = None,
              cwd: str | None = None) -> UdfClient:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=dict(env) if env else None, cwd=cwd)
        assert proc.stdin is not None and proc.stdout is not None  # both are PIPEs
        return cls(proc.stdin.fileno(), proc.stdout.fileno(), proc)

    # -- sending ---------------------------------------------------------------
    def send(self, requests: Iterable[Request]) -> None:
        self.send_raw(b"".join(framing.frame(r.SerializeToString()) for r in requests))

    def send_raw(self, data: bytes) -> None:
        framing.write_all(self._write_fd, data)

    def close_input(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()
        else:
            os.close(self._write_fd)

    # -- receiving -------------------------------------------------------------
    def recv(self, timeout: float = 10.0) -> Response:
        """The next response; TimeoutError if none comes, EOFError once the UDF closed output."""
        try:
            item = self._responses.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(
                f"no response within {timeout}s; stderr: {self.stderr[-5:]}") from None
        if item is None:
            self._responses.put(None)
            raise EOFError(f"the UDF closed its output; stderr: {self.stderr[-5:]}")
        return item

    def request(self, req: Request, timeout: float = 10.0) -> Response:
        """Send one management request and return the response of the same kind."""
        kind = req.WhichOneof("message")
        self.send([req])
        while True:
            resp = self.recv(timeout)
            if resp.WhichOneof("message") in (kind, "error"):
                return resp

    def info(self) -> udf_pb2.InfoResponse:
        return self.request(Request(info=udf_pb2.InfoRequest())).info

    def init(self, options: Mapping[str, Any], task: str = "replay",
             node: str = "udf1", timeout: float = 10.0) -> udf_pb2.InitResponse:
        return self.request(init_request(options, task, node), timeout).init

    def wait(self, timeout: float = 10.0) -> int | None:
        return self.proc.wait(timeout=timeout) if self.proc is not None else None

    def _read_loop(self) -> None:
        decoder = framing.FrameDecoder()
        try:
            while chunk := os.read(self._read_fd, 1 << 16):
                for message in decoder.feed(chunk):
                    self._responses.put(Response.FromString(message))
        except OSError:
            pass
        self._responses.put(None)

    def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None  # started only then
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace").rstrip())
