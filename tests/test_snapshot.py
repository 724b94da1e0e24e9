"""Snapshot envelopes: versioned, and unreadable ones are refused with a reason."""

import pytest

from udfkit import snapshot


def test_round_trip():
    data = snapshot.encode("ads", 2, {"groups": {"a": [1.0, 2.5]}})
    assert snapshot.decode(data, "ads", 2) == {"groups": {"a": [1.0, 2.5]}}


@pytest.mark.parametrize(("data", "handler", "version", "reason"), [
    (b"garbage", "ads", 2, "unknown prefix"),
    (snapshot.MAGIC + b"\x00\x01", "ads", 2, "corrupt"),
    (snapshot.encode("ads", 1, {}), "ads", 2, "format version 1"),
    (snapshot.encode("mavg", 2, {}), "ads", 2, "handler 'mavg'"),
])
def test_unreadable_snapshots_are_refused(data, handler, version, reason):
    with pytest.raises(snapshot.SnapshotError, match=reason):
        snapshot.decode(data, handler, version)


def test_binary_state_round_trip_and_older_formats_by_choice():
    data = snapshot.encode("ads", 4, b"\x00raw arrays")
    assert bytes(snapshot.decode(data, "ads", 4)) == b"\x00raw arrays"
    old = snapshot.encode("ads", 3, {"groups": {}})
    assert snapshot.decode(old, "ads", 4, oldest=3) == {"groups": {}}
    with pytest.raises(snapshot.SnapshotError, match="reads version 4"):
        snapshot.decode(old, "ads", 4)


def test_a_damaged_binary_state_is_refused():
    data = bytearray(snapshot.encode("ads", 4, b"\x00raw arrays"))
    data[-1] ^= 1
    with pytest.raises(snapshot.SnapshotError, match="checksum"):
        snapshot.decode(bytes(data), "ads", 4)


def test_arrays_pack_and_unpack():
    import numpy as np

    arrays = {"a": np.arange(6.0).reshape(2, 3), "b": np.array([1, 2], dtype=np.int64)}
    header, back = snapshot.unpack_arrays(snapshot.pack_arrays({"n": 2}, arrays))
    assert header == {"n": 2}
    assert all(np.array_equal(back[k], arrays[k]) and back[k].dtype == arrays[k].dtype
               for k in arrays)
    with pytest.raises(snapshot.SnapshotError, match="left over"):
        snapshot.unpack_arrays(snapshot.pack_arrays({}, arrays) + b"x")
