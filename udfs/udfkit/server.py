"""Socket mode: one Unix socket, one agent (and handler) per connection.

Kapacitor opens one connection per task node that uses a socket UDF, so
several connections are served at once, each in its own thread. The socket
file is created 0660 (owner and group: Kapacitor's user or group), whatever the
umask. A connection is closed only once its reader thread has stopped, so its
descriptor number cannot be reused under a reader still reading it.
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

SOCKET_MODE = 0o660
READER_STOP_TIMEOUT = 10.0


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
        old_umask = os.umask(0o117)  # the file is born 0660: no moment it is wider
        try:
            self._sock.bind(self.path)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, SOCKET_MODE)
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
        def hang_up() -> None:  # a hung handler: end this connection, not the server
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

        agent = Agent(self._factory, conn.fileno(), conn.fileno(), on_hang=hang_up,
                      **self._agent_args)
        try:
            agent.run()
        finally:
            hang_up()  # wakes the reader out of its read
            if agent.reader is not None:
                agent.reader.join(READER_STOP_TIMEOUT)
            if agent.reader is None or not agent.reader.is_alive():
                conn.close()
            # else: leave the descriptor open rather than let a live reader see another
            # connection under the same number

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
