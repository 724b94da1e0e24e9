"""Socket mode: one Unix socket, one agent (and handler) per connection.

Kapacitor opens one connection per task node that uses a socket UDF, so
several connections are served at once, each in its own thread.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable

from udfkit.agent import Agent
from udfkit.handler import Handler


class SocketServer:
    """Accepts connections on a Unix socket path and runs an Agent for each."""

    def __init__(self, path: str, handler_factory: Callable[[], Handler], **agent_args) -> None:
        self.path = path
        self._factory = handler_factory
        self._agent_args = agent_args
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._stopping = threading.Event()

    def serve_forever(self) -> None:
        """Listen until stop() (or SIGTERM/SIGINT when run from the main thread)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._sock.bind(self.path)
        self._sock.listen(16)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop())
        try:
            while not self._stopping.is_set():
                try:
                    conn, _ = self._sock.accept()
                except OSError:
                    break
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()
        finally:
            self.stop()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            Agent(self._factory, conn.fileno(), conn.fileno(), **self._agent_args).run()

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
