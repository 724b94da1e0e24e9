"""A UDF's state on the data volume, saved when it stops and at every snapshot.

Kapacitor snapshots a task only every `snapshot-interval` and never on shutdown,
so a restart loses up to an interval of learning. The agent therefore writes the
same bytes it answers a SnapshotRequest with to a file of its own, keyed by task
and node: at every snapshot Kapacitor takes and when the UDF stops. The file is
thus never older than the snapshot Kapacitor holds; when a write fails at a
snapshot the file is removed so that this stays true.

The file is a small verified envelope around those bytes: a magic with a format
version, when it was saved, a digest of the Init options it was saved under, and
a SHA-256 of the payload. Anything that does not check out raises StateFileError;
the agent logs it and carries on without the file.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

MAGIC = b"KUDFSTATE"
VERSION = 1
_HEADER = struct.Struct(">9sBQ16s32s")  # magic, version, saved ns, options digest, sha256
ENV = "UDF_STATE_DIR"


class StateFileError(ValueError):
    """The state file is missing, foreign, corrupt, or was saved under other options."""


def path_for(root: Path, task: str, node: str) -> Path:
    """One file per task and node; names are quoted so any task id is a safe file name."""
    return root / _safe(task) / f"{_safe(node)}.state"


def _safe(name: str) -> str:
    quoted = quote(name, safe="-_") or "_"
    return quoted.replace(".", "%2E")  # no '.', '..' or hidden names


def options_digest(options: Iterable[bytes]) -> bytes:
    """16 bytes naming the Init options (serialised, in order): another setting, no reuse."""
    digest = hashlib.blake2b(digest_size=16)
    for option in options:
        digest.update(struct.pack(">I", len(option)) + option)
    return digest.digest()


def encode(payload: bytes, digest: bytes, saved_ns: int | None = None) -> bytes:
    saved = time.time_ns() if saved_ns is None else saved_ns
    return _HEADER.pack(MAGIC, VERSION, saved, digest,
                        hashlib.sha256(payload).digest()) + payload


def decode(data: bytes, digest: bytes) -> tuple[bytes, int]:
    """(payload, saved ns) of a file saved by encode() under the same options."""
    if len(data) < _HEADER.size or not data.startswith(MAGIC):
        raise StateFileError("not a udfkit state file")
    _, version, saved_ns, saved_digest, sha = _HEADER.unpack_from(data)
    if version != VERSION:
        raise StateFileError(f"state file format version {version}, this agent reads {VERSION}")
    payload = data[_HEADER.size:]
    if hashlib.sha256(payload).digest() != sha:
        raise StateFileError("corrupt state file (checksum mismatch)")
    if saved_digest != digest:
        raise StateFileError("saved under other options")
    return payload, saved_ns


def save(path: Path, payload: bytes, digest: bytes) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(encode(payload, digest))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: Path, digest: bytes) -> tuple[bytes, int]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StateFileError(f"cannot read: {exc.strerror or exc}") from exc
    return decode(data, digest)
