"""Loopback ports: a free one for a server of our own, and a clear error for a taken one."""

from __future__ import annotations

import errno
import socket


class PortInUse(RuntimeError):
    """A port we were told to use is taken; the message names it (and who wanted it)."""


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_free(bind: str, what: str) -> None:
    """Raise PortInUse unless `bind` (host:port, ':port' for every address) can be bound.

    Checked before a server starts, so the cause is not buried under its banner, and before
    anything is written to a server someone else started on that port.
    """
    host, _, port = bind.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(port)))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUse(f"{what}: port {port} is already in use ({bind}); stop what "
                            "listens there or choose another port") from None
