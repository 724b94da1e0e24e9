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
