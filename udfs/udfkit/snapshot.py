"""Versioned snapshots of handler state.

Kapacitor stores whatever bytes a UDF returns and hands them back at the next
start of the task. A snapshot that cannot be read (another UDF version, a
corrupt store) must not fail the task, so decoding raises SnapshotError and
the agent starts the handler fresh.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

MAGIC = b"KUDF1"


class SnapshotError(ValueError):
    """The snapshot is not ours, is corrupt, or has another format version."""


def encode(handler: str, version: int, state: Any) -> bytes:
    """JSON state, compressed, behind a magic prefix that names the format."""
    body = json.dumps({"handler": handler, "version": version, "state": state},
                      separators=(",", ":"), allow_nan=True)
    return MAGIC + zlib.compress(body.encode(), 6)


def decode(data: bytes, handler: str, version: int) -> Any:
    """Return the state saved by encode() for this handler and version."""
    if not data.startswith(MAGIC):
        raise SnapshotError("not a udfkit snapshot (unknown prefix)")
    try:
        envelope = json.loads(zlib.decompress(data[len(MAGIC):]))
    except (zlib.error, ValueError) as exc:
        raise SnapshotError(f"corrupt snapshot: {exc}") from exc
    if not isinstance(envelope, dict) or "state" not in envelope:
        raise SnapshotError("corrupt snapshot: no state")
    if envelope.get("handler") != handler:
        raise SnapshotError(f"snapshot of handler {envelope.get('handler')!r}, not {handler!r}")
    if envelope.get("version") != version:
        raise SnapshotError(
            f"snapshot format version {envelope.get('version')}, this UDF reads version {version}"
        )
    return envelope["state"]
