"""Kapacitor's framing: each protobuf message is preceded by its uvarint length.

The decoder works on whole chunks read from a pipe or socket, never byte by
byte, and classifies a frame by its first tag without parsing it, so the
reader thread can answer keepalives while the worker is busy.
"""

from __future__ import annotations

import os
from typing import cast

MAX_FRAME_BYTES = 1 << 31
"""A length above this is taken as garbage rather than a message (Kapacitor has no limit).
The largest real message is a Restore of a fleet's state: ads_model holds about 10.5 KiB per
series with `history` full, so 100,000 such series restore about 1 GiB."""

# Field numbers of the Request/Response oneof: the first tag of a frame.
INFO, INIT, KEEPALIVE, SNAPSHOT, RESTORE, ERROR = 1, 2, 3, 4, 5, 6
BEGIN, POINT, END = 16, 17, 18

_SMALL_VARINTS = [bytes([i]) for i in range(128)]


class FramingError(Exception):
    """The byte stream is not a sequence of length-prefixed messages."""


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, as protobuf and Kapacitor's framing use it."""
    if value < 128:
        return _SMALL_VARINTS[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is out (a pipe or socket may take less per call)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def frame(payload: bytes) -> bytes:
    """One message ready for the wire."""
    return length_prefix(len(payload)) + payload


_POINT_TAG = encode_varint(POINT << 3 | 2)
_PREFIX_TABLE = 8192


def _point_prefix(n: int) -> bytes:
    inner = _POINT_TAG + encode_varint(n)
    return encode_varint(len(inner) + n) + inner


POINT_PREFIXES = [_point_prefix(n) for n in range(_PREFIX_TABLE)]
"""POINT_PREFIXES[n]: frame length, tag and length of a Response{point} whose point has n bytes."""

LENGTHS = [encode_varint(n) for n in range(_PREFIX_TABLE)]
"""LENGTHS[n]: the frame header of an n-byte message (hot loops index it; else length_prefix)."""


def length_prefix(n: int) -> bytes:
    """The frame header of an n-byte message."""
    return LENGTHS[n] if n < _PREFIX_TABLE else encode_varint(n)


def point_field(point_bytes: bytes) -> bytes:
    """Request{point} or Response{point} (the same field in both) of a serialised Point."""
    return _POINT_TAG + encode_varint(len(point_bytes)) + point_bytes


def frame_point_response(point_bytes: bytes) -> bytes:
    """A framed Response{point} built from a serialised Point, without a Response object.

    Response is a oneof, so its encoding is just the field tag, the length and
    the point's bytes: building it by hand saves a message copy per point.
    """
    n = len(point_bytes)
    if n < _PREFIX_TABLE:
        return POINT_PREFIXES[n] + point_bytes
    return _point_prefix(n) + point_bytes


_SNAPSHOT_TAG = encode_varint(4 << 3 | 2)  # Response.snapshot
_SNAPSHOT_BYTES_TAG = encode_varint(1 << 3 | 2)  # SnapshotResponse.snapshot


def snapshot_response_prefix(n: int) -> bytes:
    """Frame length and tags of a Response{snapshot} carrying n bytes of state: the state
    follows as it is, so a large snapshot is written without being copied into a message."""
    inner = _SNAPSHOT_BYTES_TAG + encode_varint(n)
    outer = _SNAPSHOT_TAG + encode_varint(len(inner) + n) + inner
    return encode_varint(len(outer) + n) + outer


def frame_kind(message: bytes) -> int:
    """The oneof field number of a Request or Response, read from its first tag (0 if empty)."""
    if not message:
        return 0
    first = message[0]
    if first < 0x80:
        return first >> 3
    if len(message) < 2:
        return 0
    return ((first & 0x7F) | (message[1] << 7)) >> 3


_BIG_FRAME = 1 << 16
"""An incomplete frame at least this long is gathered in a bytearray, not re-joined per read."""


class FrameDecoder:
    """Splits a byte stream into message payloads, whatever the chunk boundaries.

    Reading stays linear in the input whatever the frame sizes: a small incomplete
    tail is joined with the next chunk, a big one grows in place in a bytearray
    (amortised appends, the header cut off without a copy) until it is complete.
    A big frame is handed out as that bytearray, so memory stays about one frame.
    """

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self._rest = b""
        self._big: bytearray | None = None
        self._big_size = 0  # header + payload bytes of the frame being gathered
        self._big_header = 0
        self._max_frame = max_frame
        self.others = 0

    def wanted(self) -> int:
        """Bytes still missing from the big frame being gathered (0 if none): a read size hint."""
        return self._big_size - len(self._big) if self._big is not None else 0

    def feed(self, data: bytes) -> list[bytes]:
        """Return every complete message in rest + data; keep the incomplete tail.

        ``self.others`` is then the number of those messages that are not points,
        so the common all-points chunk needs no per-message look.
        """
        out: list[bytes] = []
        others = 0
        if self._big is not None:
            big = self._big
            missing = self._big_size - len(big)
            if len(data) < missing:
                big += data
                self.others = 0
                return out
            big += memoryview(data)[:missing]
            del big[:self._big_header]  # O(1): bytearray drops a prefix by moving its start
            self._big = None
            out.append(cast(bytes, big))  # no copy: protobuf parses any buffer
            others += 0 if big[:1] == b"\x8a" else 1
            data = data[missing:]
        buf = self._rest + data if self._rest else data
        end = len(buf)
        pos = 0
        while pos < end:
            length = buf[pos]
            start = pos + 1
            if length >= 0x80:
                decoded = self._long_varint(buf, pos)
                if decoded is None:
                    break
                length, start = decoded
            stop = start + length
            if stop > end:
                if stop - pos >= _BIG_FRAME:
                    self._big = bytearray(buf[pos:])
                    self._big_size, self._big_header = stop - pos, start - pos
                    pos = end
                break
            if stop == start or buf[start] != 0x8A:  # 0x8A: first byte of the point tag
                others += 1
            out.append(buf[start:stop])
            pos = stop
        self._rest = buf[pos:]
        self.others = others
        return out

    def _long_varint(self, buf: bytes, pos: int) -> tuple[int, int] | None:
        value = 0
        shift = 0
        for i in range(pos, min(pos + 10, len(buf))):
            byte = buf[i]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if value > self._max_frame:
                    raise FramingError(
                        f"frame length {value} exceeds the {self._max_frame}-byte limit"
                    )
                return value, i + 1
            shift += 7
        if len(buf) - pos >= 10:
            raise FramingError("frame length is not a valid varint (more than 10 bytes)")
        return None

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back; non-zero at end of input means truncation."""
        return len(self._rest) + (len(self._big) if self._big is not None else 0)
