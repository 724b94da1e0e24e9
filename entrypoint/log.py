"""Short, prefixed log lines on stdout, interleaved with kapacitord's own output."""

from __future__ import annotations

import sys

_debug = False


def set_debug(enabled: bool) -> None:
    global _debug
    _debug = enabled


def log(message: str) -> None:
    print(f"entrypoint: {message}", file=sys.stdout, flush=True)


def debug(message: str) -> None:
    if _debug:
        log(message)
