"""Decoder: framing, argument splitting, streaming, errors, at every split.

Each test runs with the C scan, its Python twin, and a scan that never takes
a frame (so the slow path alone must give the same events)."""
import os
import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpgearman.native import scan_py
from mpgearman.protocol import decoder as decoder_module
from mpgearman.protocol import errors
from mpgearman.protocol.decoder import Decoder
from mpgearman.protocol.errors import ProtocolError
from mpgearman.protocol.events import (NEED_DATA, AdminLine, BodyChunk, Packet,
                                       PacketEnd, PacketHead, Rejected)

try:
    from mpgearman.native import _scan
except ImportError:
    if os.environ.get("MPGEARMAN_REQUIRE_NATIVE") == "1":
        raise
    _scan = None


class _NoScan:
    """Takes no frame: everything goes through the slow path."""

    @staticmethod
    def scan_packets(buf, pos, max_small):
        return [], pos


IMPLS = [
    pytest.param(scan_py, id="py"),
    pytest.param(_scan, id="c", marks=pytest.mark.skipif(
        _scan is None, reason="C extension not built")),
    pytest.param(_NoScan, id="slow"),
]

GIB = 1 << 30
MAX = 4 * GIB - 1
THRESHOLD = 64


@pytest.fixture(autouse=True, params=IMPLS)
def impl(request, monkeypatch):
    monkeypatch.setattr(decoder_module, "scan", request.param)
    return request.param


def req(ptype, *args, magic=b"\0REQ", size=None):
    body = b"\0".join(args)
    return struct.pack(">4sII", magic, ptype, len(body) if size is None else size) + body


def drain(dec):
    out = []
    while (event := dec.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def merged(events):
    """Adjacent BodyChunks joined: chunking depends on how bytes were fed."""
    out = []
    for event in events:
        if isinstance(event, BodyChunk) and out and isinstance(out[-1], BodyChunk):
            out[-1] = BodyChunk(out[-1].data + event.data)
        elif not (isinstance(event, BodyChunk) and not event.data):
            out.append(event)
    return out


def run(pieces, max_payload=MAX, threshold=THRESHOLD):
    """Feed pieces one by one, draining after each: (events, error or None)."""
    dec = Decoder(max_payload, threshold)
    events = []
    try:
        for piece in pieces:
            dec.feed(piece)
            while (event := dec.next_event()) is not NEED_DATA:
                events.append(event)
    except ProtocolError as exc:
        return merged(events), (exc.code, exc.text)
    return merged(events), None


def splits(data):
    yield [data]
    yield [data[i:i + 1] for i in range(len(data))]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]


# -- a stream with every kind of input ----------------------------------------

BIG_DATA = bytes(range(256)) * 2              # holds NULs; > THRESHOLD
MIXED = [
    (req(7, b"reverse", b"", b"test"), [Packet(7, (b"reverse", b"", b"test"))]),
    (b"version\r\n", [AdminLine(b"version", True)]),
    (req(1, b"fn\0x"), [Packet(1, (b"fn\0x",))]),
    (b"status\n", [AdminLine(b"status", False)]),
    (req(9, b"abc"), [Packet(9, ())]),
    (req(12, b"H:1", b"3", b"1\0x"), [Packet(12, (b"H:1", b"3", b"1\0x"))]),
    (req(13, b"H:1", b""), [Packet(13, (b"H:1", b""))]),
    (req(16, BIG_DATA), [PacketHead(16, (), len(BIG_DATA)), BodyChunk(BIG_DATA),
                         PacketEnd()]),
    (req(7, b"f" * 70, b"u", b""), [PacketHead(7, (b"f" * 70, b"u"), 0), PacketEnd()]),
    (req(18, b"fn", b"u", BIG_DATA), [PacketHead(18, (b"fn", b"u"), len(BIG_DATA)),
                                      BodyChunk(BIG_DATA), PacketEnd()]),
    (req(8, b"H:1", magic=b"\0RES"), [Rejected(8, *errors.INVALID_MAGIC)]),
    (req(7, b"f", b"", BIG_DATA, magic=b"\0RES"), [Rejected(7, *errors.INVALID_MAGIC)]),
    (req(8, b"H:1"), [Rejected(8, *errors.INVALID_COMMAND)]),
    (req(35, b"x" * 100), [Rejected(35, *errors.INVALID_COMMAND)]),
    (b"\n\r\n", [AdminLine(b"", False), AdminLine(b"", True)]),
    (req(1, b"n" * 100), [Packet(1, (b"n" * 100,))]),
    (req(16), [Packet(16, (b"",))]),
    (b"x\r\r\n", [AdminLine(b"x\r", True)]),
]
MIXED_BYTES = b"".join(data for data, _ in MIXED)
MIXED_EVENTS = [event for _, events in MIXED for event in events]


def test_mixed_stream_whole():
    assert run([MIXED_BYTES]) == (MIXED_EVENTS, None)


def test_mixed_stream_at_every_split():
    for pieces in splits(MIXED_BYTES):
        assert run(pieces) == (MIXED_EVENTS, None), [len(p) for p in pieces]


def test_feeding_everything_before_draining():
    dec = Decoder(MAX, THRESHOLD)
    for i in range(len(MIXED_BYTES)):
        dec.feed(MIXED_BYTES[i:i + 1])
    assert merged(drain(dec)) == MIXED_EVENTS
    assert dec.buffered == 0


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_bytes_like_input(kind):
    assert run([kind(MIXED_BYTES[:100]), kind(MIXED_BYTES[100:])]) == (MIXED_EVENTS, None)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, len(MIXED_BYTES)), max_size=20))
def test_mixed_stream_at_random_splits(cuts):
    cuts = [0] + sorted(cuts) + [len(MIXED_BYTES)]
    pieces = [MIXED_BYTES[a:b] for a, b in zip(cuts, cuts[1:])]
    assert run(pieces) == (MIXED_EVENTS, None)


def test_threshold_decides_whole_or_streamed():
    data = req(7, b"fn", b"u", b"d" * 100)
    assert run([data], threshold=len(data) - 12) == \
        ([Packet(7, (b"fn", b"u", b"d" * 100))], None)
    assert run([data], threshold=len(data) - 13) == \
        ([PacketHead(7, (b"fn", b"u"), 100), BodyChunk(b"d" * 100), PacketEnd()], None)


# -- fatal input ----------------------------------------------------------------

ARGS_TOO_LONG = errors.ARGS_TOO_LONG
MISSING_ARG = errors.MISSING_ARG
FATAL = {
    "bad magic": (b"\0REX" + req(9)[4:], errors.BAD_MAGIC),
    "type 0": (req(0), errors.BAD_TYPE),
    "type 43": (req(43), errors.BAD_TYPE),
    "type 2**31": (req(0x80000000 | 7), errors.BAD_TYPE),
    "type 2**32-1": (req(0xFFFFFFFF), errors.BAD_TYPE),
    "size above max_payload": (req(16, size=1001), errors.TOO_BIG),
    "rejected above max_payload": (req(8, size=1001, magic=b"\0RES"),
                                   errors.TOO_BIG),
    "no-data args above 8192": (req(1, size=8193), ARGS_TOO_LONG),
    "missing NUL (data)": (req(7, b"fn"), MISSING_ARG),
    "missing 2nd NUL (data)": (req(7, b"fn", b"u"), MISSING_ARG),
    "missing NUL (no data)": (req(12, b"H:1", b"3"), MISSING_ARG),
    "missing NUL (streamed)": (req(18, b"f" * 100), MISSING_ARG),
    "streamed args beyond 8192": (req(18, b"f" * 9000, b"", b"d"), ARGS_TOO_LONG),
    "text line too long": (b"x" * 8192, errors.LINE_TOO_LONG),
    "long text line after a packet": (req(9) + b"x" * 9000 + b"\n",
                                      errors.LINE_TOO_LONG),
}


@pytest.mark.parametrize("name", FATAL)
def test_fatal_input(name):
    data, error = FATAL[name]
    for pieces in [[data], [data[i:i + 1] for i in range(len(data))]]:
        events, got = run(pieces, max_payload=1000 if "max_payload" in name else MAX)
        assert got == error, name
        assert all(isinstance(e, (Packet, PacketHead, BodyChunk)) for e in events)


def test_max_payload_error_comes_right_after_the_header():
    dec = Decoder(1000, THRESHOLD)
    dec.feed(req(7, size=1001)[:11])
    assert dec.next_event() is NEED_DATA
    dec.feed(b"\xe9")
    with pytest.raises(ProtocolError) as exc:
        dec.next_event()
    assert (exc.value.code, exc.value.text) == errors.TOO_BIG
    with pytest.raises(ProtocolError):      # it stays broken
        dec.next_event()


def test_args_up_to_8192_bytes_are_fine():
    name = b"f" * 8190            # + 2 NULs = 8192
    assert run([req(1, b"f" * 8192)]) == ([Packet(1, (b"f" * 8192,))], None)
    assert run([req(18, name, b"", b"d")]) == \
        ([PacketHead(18, (name, b""), 1), BodyChunk(b"d"), PacketEnd()], None)
    assert run([req(18, name, b"x", b"d")]) == ([], ARGS_TOO_LONG)
    big = 20000   # small packets obey the same limit as streamed ones
    assert run([req(18, name, b"", b"d")], threshold=big) == \
        ([Packet(18, (name, b"", b"d"))], None)
    assert run([req(18, name, b"x", b"d")], threshold=big) == ([], ARGS_TOO_LONG)
    assert run([req(18, b"f" * 9000)], threshold=big) == ([], ARGS_TOO_LONG)


def test_text_line_of_exactly_8192_bytes():
    line = b"y" * 8190
    assert run([line + b"\r\n", b"z" * 8191 + b"\n"]) == \
        ([AdminLine(line, True), AdminLine(b"z" * 8191, False)], None)


def test_events_before_an_error_come_first():
    data = req(9) + req(7, b"fn", b"", b"x") + req(7, b"broken") + req(9)
    assert run([data]) == (
        [Packet(9, ()), Packet(7, (b"fn", b"", b"x"))], MISSING_ARG)


# -- memory stays bounded -------------------------------------------------------

def test_1gib_header_buffers_nothing_big():
    tracemalloc.start()
    try:
        dec = Decoder(MAX, 1 << 20)
        dec.feed(req(7, size=GIB) + b"fn\0uniq\0" + b"0123456789")
        assert dec.next_event() == PacketHead(7, (b"fn", b"uniq"), GIB - 8)
        assert dec.next_event() == BodyChunk(b"0123456789")
        assert dec.next_event() is NEED_DATA
        assert dec.buffered == 0
        piece = b"p" * 65536
        for _ in range(64):
            dec.feed(piece)
            assert dec.buffered == len(piece)
            assert dec.next_event() == BodyChunk(piece)
            assert dec.next_event() is NEED_DATA
            assert dec.buffered == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_streamed_packet_ends_and_the_next_follows():
    dec = Decoder(MAX, 16)
    dec.feed(req(16, size=40) + b"a" * 30)
    assert drain(dec) == [PacketHead(16, (), 40), BodyChunk(b"a" * 30)]
    dec.feed(b"b" * 10 + req(9) + b"c")
    assert drain(dec) == [BodyChunk(b"b" * 10), PacketEnd(), Packet(9, ())]
    assert dec.buffered == 1


def test_rejected_body_is_counted_down_not_buffered():
    tracemalloc.start()
    try:
        dec = Decoder(MAX, 1 << 20)
        dec.feed(req(13, size=GIB, magic=b"\0RES") + b"H:1\0")
        assert dec.next_event() is NEED_DATA
        for _ in range(160):
            dec.feed(bytes(65536))
            assert dec.buffered == 0
            assert dec.next_event() is NEED_DATA
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_partial_text_line_is_searched_once():
    dec = Decoder(MAX, THRESHOLD)
    for _ in range(8000):
        dec.feed(b"w")
        assert dec.next_event() is NEED_DATA
    assert dec.buffered == 8000
    dec.feed(b"\n")
    assert dec.next_event() == AdminLine(b"w" * 8000, False)
    assert dec.buffered == 0


def test_many_small_packets_in_64k_pieces():
    one = req(7, b"reverse", b"", b"payload-%05d" % 0)
    stream = b"".join(req(7, b"reverse", b"", b"payload-%05d" % i) for i in range(5000))
    dec = Decoder(MAX, 1 << 16)
    got = []
    for i in range(0, len(stream), 65536):
        dec.feed(stream[i:i + 65536])
        got += drain(dec)
        assert dec.buffered < len(one)
    assert got == [Packet(7, (b"reverse", b"", b"payload-%05d" % i)) for i in range(5000)]
    assert len(dec._buf) < 2 * 65536     # compacted, not grown


# -- any input: events or ProtocolError ---------------------------------------

fragments = st.one_of(
    st.builds(req, st.integers(0, 44), st.binary(max_size=12),
              st.binary(max_size=90), magic=st.sampled_from([b"\0REQ", b"\0RES"])),
    st.builds(lambda t, n: req(t, size=n), st.integers(0, 44), st.integers(0, 120)),
    st.builds(lambda b: b.replace(b"\n", b"") + b"\n",
              st.binary(min_size=1, max_size=20).filter(lambda b: b[0] != 0)),
    st.binary(max_size=16),
)
EVENT_TYPES = (Packet, PacketHead, BodyChunk, PacketEnd, AdminLine, Rejected)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(fragments, max_size=10).map(b"".join), st.integers(1, 64),
       st.sampled_from([0, 16, 64, 1 << 20]), st.sampled_from([50, 1000, MAX]))
def test_any_input_gives_events_or_protocol_error(data, step, threshold, max_payload):
    whole = run([data], max_payload, threshold)
    pieces = [data[i:i + step] for i in range(0, len(data), step)]
    assert run(pieces, max_payload, threshold) == whole
    assert all(isinstance(e, EVENT_TYPES) for e in whole[0])


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_random_bytes_give_events_or_protocol_error(data):
    events, _ = run([data])
    assert all(isinstance(e, EVENT_TYPES) for e in events)
    assert run([data[i:i + 1] for i in range(len(data))]) == run([data])
