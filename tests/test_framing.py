"""Framing round-trips for arbitrary message sequences and chunk splits."""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from udfkit import framing, udf_pb2

payloads = st.lists(st.binary(min_size=0, max_size=600), max_size=30)


@given(payloads, st.lists(st.integers(min_value=1, max_value=997), max_size=40))
def test_any_split_gives_back_the_messages(messages, cuts):
    stream = b"".join(framing.frame(m) for m in messages)
    decoder = framing.FrameDecoder()
    got: list[bytes] = []
    pos = 0
    for cut in cuts:
        got += decoder.feed(stream[pos:pos + cut])
        pos += cut
    got += decoder.feed(stream[pos:])
    assert got == messages
    assert decoder.pending == 0


@given(st.lists(st.sampled_from([0, 5, 70_000, 200_000]), min_size=1, max_size=6),
       st.lists(st.integers(min_value=1, max_value=150_000), max_size=12))
def test_big_frames_come_back_whole_whatever_the_split(sizes, cuts):
    messages = [bytes([0x8A if i % 2 else 0x12]) + bytes([i]) * max(0, n - 1)
                for i, n in enumerate(sizes)]
    stream = b"".join(framing.frame(m) for m in messages)
    decoder = framing.FrameDecoder()
    got, others, pos = [], 0, 0
    for cut in [*cuts, len(stream)]:
        got += decoder.feed(stream[pos:pos + cut])
        others += decoder.others
        pos += cut
    assert [bytes(m) for m in got] == messages
    assert others == sum(1 for m in messages if m[:1] != b"\x8a")
    assert decoder.pending == 0


def test_a_big_frame_in_small_chunks_is_read_in_linear_time():
    frame = framing.frame(b"\x2a" + bytes(64 << 20))
    decoder = framing.FrameDecoder()
    start = time.process_time()
    got = []
    for pos in range(0, len(frame), 1 << 16):
        got += decoder.feed(frame[pos:pos + (1 << 16)])
    cpu = time.process_time() - start
    assert len(got) == 1 and len(got[0]) == (64 << 20) + 1
    assert cpu < 2.0, f"{cpu:.1f} s CPU for a 64 MB frame in 64 KB reads"  # quadratic: ~20 s


@given(st.integers(min_value=0, max_value=2**63))
def test_varint_matches_protobuf(value):
    msg = udf_pb2.KeepaliveResponse(time=value if value < 2**63 else 2**63 - 1)
    data = msg.SerializeToString()
    n = msg.time
    assert (data[1:] if n else b"") == (framing.encode_varint(n) if n else b"")


@given(st.integers(min_value=0, max_value=2**62), st.text(max_size=300))
def test_point_response_fast_path_equals_protobuf(t, name):
    point = udf_pb2.Point(time=t, name=name)
    point.fieldsDouble["v"] = 1.5
    expected = framing.frame(udf_pb2.Response(point=point).SerializeToString())
    assert framing.frame_point_response(point.SerializeToString()) == expected


def test_frame_kind_reads_the_oneof_field():
    for field, req in [
        (framing.INFO, udf_pb2.Request(info=udf_pb2.InfoRequest())),
        (framing.KEEPALIVE, udf_pb2.Request(keepalive=udf_pb2.KeepaliveRequest(time=1))),
        (framing.BEGIN, udf_pb2.Request(begin=udf_pb2.BeginBatch(name="x"))),
        (framing.POINT, udf_pb2.Request(point=udf_pb2.Point(time=5))),
        (framing.END, udf_pb2.Request(end=udf_pb2.EndBatch(name="x"))),
    ]:
        assert framing.frame_kind(req.SerializeToString()) == field


def test_counts_messages_that_are_not_points():
    point = framing.frame(udf_pb2.Request(point=udf_pb2.Point(time=1)).SerializeToString())
    info = framing.frame(udf_pb2.Request(info=udf_pb2.InfoRequest()).SerializeToString())
    decoder = framing.FrameDecoder()
    assert len(decoder.feed(point * 3 + info)) == 4
    assert decoder.others == 1


def test_garbage_length_is_an_error_not_a_hang():
    with pytest.raises(framing.FramingError, match="varint"):
        framing.FrameDecoder().feed(b"\xff" * 11)
    with pytest.raises(framing.FramingError, match="exceeds"):
        framing.FrameDecoder(max_frame=1000).feed(framing.encode_varint(5000))
