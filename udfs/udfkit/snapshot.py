"""Versioned snapshots of handler state.

Kapacitor stores whatever bytes a UDF returns and hands them back at the next
start of the task. A snapshot that cannot be read (another UDF version, a
corrupt store) must not fail the task, so decoding raises SnapshotError and
the agent starts the handler fresh.

Two envelopes: a handler whose state() returns JSON-able data gets it compressed
as JSON (``KUDF1``); one whose state() returns bytes (large state, e.g. arrays of
many series) gets them as they are, behind a small header and a CRC-32 (``KUDF2``),
so writing and reading cost time in proportion to the bytes. ``pack_arrays`` and
``unpack_arrays`` make such bytes from named numpy arrays.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MAGIC = b"KUDF1"
MAGIC_BINARY = b"KUDF2"
_LENGTH = struct.Struct("<I")


class SnapshotError(ValueError):
    """The snapshot is not ours, is corrupt, or has another format version."""


def encode(handler: str, version: int, state: Any) -> bytes:
    """The state behind a magic prefix that names the format: bytes as they are, anything
    else as compressed JSON."""
    if isinstance(state, bytes | bytearray | memoryview):
        header = json.dumps({"handler": handler, "version": version,
                             "crc32": zlib.crc32(state)}).encode()
        return b"".join([MAGIC_BINARY, _LENGTH.pack(len(header)), header, state])
    body = json.dumps({"handler": handler, "version": version, "state": state},
                      separators=(",", ":"), allow_nan=True)
    return MAGIC + zlib.compress(body.encode(), 6)


def decode(data: bytes, handler: str, version: int, oldest: int | None = None) -> Any:
    """Return the state saved by encode() for this handler, of a format version from
    `oldest` (default: only `version`) to `version`."""
    if data.startswith(MAGIC_BINARY):
        envelope, state = _binary(data)
    elif data.startswith(MAGIC):
        envelope = _json(data)
        state = envelope["state"]
    else:
        raise SnapshotError("not a udfkit snapshot (unknown prefix)")
    if envelope.get("handler") != handler:
        raise SnapshotError(f"snapshot of handler {envelope.get('handler')!r}, not {handler!r}")
    saved = envelope.get("version")
    low = version if oldest is None else oldest
    if not isinstance(saved, int) or not low <= saved <= version:
        reads = f"version {version}" if low == version else f"versions {low} to {version}"
        raise SnapshotError(f"snapshot format version {saved}, this UDF reads {reads}")
    return state


def _json(data: bytes) -> dict[str, Any]:
    try:
        envelope = json.loads(zlib.decompress(data[len(MAGIC):]))
    except (zlib.error, ValueError) as exc:
        raise SnapshotError(f"corrupt snapshot: {exc}") from exc
    if not isinstance(envelope, dict) or "state" not in envelope:
        raise SnapshotError("corrupt snapshot: no state")
    return envelope


def _binary(data: bytes) -> tuple[dict[str, Any], memoryview]:
    view = memoryview(data)[len(MAGIC_BINARY):]
    try:
        (size,) = _LENGTH.unpack_from(view)
        envelope = json.loads(bytes(view[_LENGTH.size:_LENGTH.size + size]))
        state = view[_LENGTH.size + size:]
    except (struct.error, ValueError) as exc:
        raise SnapshotError(f"corrupt snapshot: {exc}") from exc
    if not isinstance(envelope, dict) or zlib.crc32(state) != envelope.get("crc32"):
        raise SnapshotError("corrupt snapshot: the checksum does not match")
    return envelope, state


def pack_arrays(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytearray:
    """A JSON header and named arrays, each as its raw bytes (dtype and shape in the
    header), in one buffer (each array copied once)."""
    import numpy as np

    specs = [[name, a.dtype.str, list(a.shape)] for name, a in arrays.items()]
    head = json.dumps({"header": header, "arrays": specs}, separators=(",", ":")).encode()
    start = _LENGTH.size + len(head)
    out = bytearray(start + sum(a.nbytes for a in arrays.values()))
    out[:start] = _LENGTH.pack(len(head)) + head
    offset = start
    for a in arrays.values():
        target = np.frombuffer(out, dtype=a.dtype, count=a.size, offset=offset)
        np.copyto(target.reshape(a.shape), a)
        offset += a.nbytes
    return out


def unpack_arrays(data: bytes | memoryview) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """What pack_arrays() packed; arrays are read-only views of `data`."""
    import numpy as np

    view = memoryview(data)
    try:
        (size,) = _LENGTH.unpack_from(view)
        head = json.loads(bytes(view[_LENGTH.size:_LENGTH.size + size]))
        offset = _LENGTH.size + size
        arrays = {}
        for name, dtype, shape in head["arrays"]:
            count = int(np.prod(shape))
            arrays[name] = np.frombuffer(view, dtype=np.dtype(dtype), count=count,
                                         offset=offset).reshape(shape)
            offset += arrays[name].nbytes
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"corrupt state: {exc}") from exc
    if offset != len(view):
        raise SnapshotError(f"corrupt state: {len(view) - offset} bytes left over")
    return head["header"], arrays
