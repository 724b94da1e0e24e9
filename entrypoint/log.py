"""Short, prefixed log lines on stdout, interleaved with kapacitord's own output."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    print(f"entrypoint: {message}", file=sys.stdout, flush=True)
