"""SPSC ring operations in one process (no fork), for the C module and its
twin, plus the Ring, Segment and Doorbell wrappers."""
import array
import collections
import mmap
import os
import random
import select
import struct

import pytest

from mpgearman.ipc import layout as L
from mpgearman.ipc.doorbell import Doorbell
from mpgearman.ipc.ring import Ring
from mpgearman.ipc.shm import Segment, SegmentError
from mpgearman.native import ring_py

try:
    from mpgearman.native import _ring
except ImportError:
    if os.environ.get("MPGEARMAN_REQUIRE_NATIVE") == "1":
        raise
    _ring = None

IMPLS = [
    pytest.param(ring_py, id="py"),
    pytest.param(_ring, id="c", marks=pytest.mark.skipif(
        _ring is None, reason="C extension not built")),
]
OFF = 128          # not at the start of the buffer, on purpose
U64 = struct.Struct("@Q")


@pytest.fixture(params=IMPLS)
def impl(request):
    return request.param


def make_ring(impl, capacity=1024):
    mem = mmap.mmap(-1, OFF + L.RING_CTRL_SIZE + capacity + 64)
    impl.init(mem, OFF, capacity)
    return Ring(mem, OFF, impl)


def field(ring, offset, fmt="@Q"):
    return struct.unpack_from(fmt, ring._mem, OFF + offset)[0]


def test_roundtrip_of_any_bytes_like(impl):
    ring = make_ring(impl)
    items = [b"", b"a", bytearray(b"bc"), memoryview(b"xyz"),
             array.array("i", [1, 2]), b"\0" * 100]
    for item in items:
        assert ring.push(item) is True
    assert ring.pop_batch() == [bytes(item) for item in items]
    assert ring.used() == 0


def test_empty_pop_does_not_write(impl):
    ring = make_ring(impl)
    assert ring.pop_batch() == []
    assert ring.used() == 0 and field(ring, L.RING_HEAD_OFF) == 0


def test_record_framing(impl):
    ring = make_ring(impl)
    ring.push(b"hello")
    data = OFF + L.RING_DATA_OFF
    assert struct.unpack_from("@I5s", ring._mem, data) == (5, b"hello")
    assert ring.used() == 16 and field(ring, L.RING_TAIL_OFF) == 16


def test_wrap_around_with_varied_sizes(impl):
    rng = random.Random(7)
    ring = make_ring(impl, capacity=512)
    model = collections.deque()
    pushed = popped = 0
    for _ in range(3000):
        if rng.random() < 0.55:
            item = rng.randbytes(rng.randrange(L.max_payload(512) + 1))
            if ring.push(item):
                model.append(item)
                pushed += 1
        else:
            batch = ring.pop_batch(rng.randrange(1, 5))
            assert batch == [model.popleft() for _ in batch]
            popped += len(batch)
        assert ring.used() <= 512
    assert ring.pop_batch(10_000) == list(model)
    assert ring.used() == 0
    assert field(ring, L.RING_TAIL_OFF) > 20 * 512   # wrapped many times
    assert pushed > 1000 and popped > 500


def test_full_ring_refuses_then_accepts(impl):
    ring = make_ring(impl, capacity=256)
    count = 0
    while ring.push(b"x" * 60):    # 64-byte records fill exactly
        count += 1
    assert count == 4 and ring.used() == 256
    assert ring.push(b"") is False
    assert ring.pop_batch(1) == [b"x" * 60]
    assert ring.push(b"y" * 60) is True
    assert ring.pop_batch() == [b"x" * 60] * 3 + [b"y" * 60]


def test_wrap_marker_is_written_and_skipped(impl):
    ring = make_ring(impl, capacity=256)
    assert ring.push_many([b"a" * 60] * 3) == 3        # tail at 192
    assert len(ring.pop_batch()) == 3                  # head at 192
    assert ring.push(b"b" * 60 + b"cc") is True        # 72 bytes: wraps
    data = OFF + L.RING_DATA_OFF
    assert struct.unpack_from("@I", ring._mem, data + 192)[0] == L.REC_WRAP
    assert ring.used() == 64 + 72
    assert ring.pop_batch() == [b"b" * 60 + b"cc"]
    assert field(ring, L.RING_HEAD_OFF) == 256 + 72


def test_head_cache_is_only_a_hint(impl):
    ring = make_ring(impl, capacity=256)
    assert ring.push_many([b"a" * 60] * 3) == 3
    U64.pack_into(ring._mem, OFF + L.RING_HEAD_CACHE_OFF, 1 << 20)
    assert ring.push(b"b" * 60) is True                 # exactly full
    assert field(ring, L.RING_HEAD_CACHE_OFF) == 0      # re-read from head
    assert ring.push(b"c") is False
    assert ring.pop_batch() == [b"a" * 60] * 3 + [b"b" * 60]


def test_push_many_stops_at_first_that_does_not_fit(impl):
    ring = make_ring(impl, capacity=256)
    items = [b"1" * 60, b"2" * 60, b"3" * 60, b"4" * 60, b"5", b"6"]
    assert ring.push_many(items[:2]) == 2
    assert ring.push_many(items[2:]) == 2               # "5" does not fit
    assert ring.push_many([]) == 0
    assert ring.pop_batch() == items[:4]
    assert ring.push_many((b"5", b"6")) == 2
    assert ring.pop_batch() == [b"5", b"6"]


def test_push_many_publishes_once(impl):
    ring = make_ring(impl)
    assert ring.push_many([b"a", b"b", b"c"]) == 3
    assert field(ring, L.RING_TAIL_OFF) == 24


def test_oversized_records_raise_and_publish_nothing(impl):
    ring = make_ring(impl, capacity=1024)
    assert ring.push(b"m" * 256) is True               # exactly the limit
    with pytest.raises(ValueError, match="exceeds"):
        ring.push(b"m" * 257)
    with pytest.raises(ValueError, match="exceeds"):
        ring.push_many([b"ok", b"m" * 257])
    with pytest.raises(TypeError):
        ring.push_many([b"ok", 5])
    with pytest.raises(TypeError):
        ring.push("text")
    assert ring.pop_batch() == [b"m" * 256]


def test_pop_batch_limits(impl):
    ring = make_ring(impl)
    ring.push_many([bytes([i]) for i in range(10)])
    assert ring.pop_batch(0) == []
    assert ring.pop_batch(3) == [b"\0", b"\1", b"\2"]
    with pytest.raises(ValueError):
        ring.pop_batch(-1)
    assert len(ring.pop_batch()) == 7


def test_reset_empties_and_restarts(impl):
    ring = make_ring(impl, capacity=256)
    ring.push_many([b"z" * 40] * 3)
    ring.pop_batch(1)
    ring.reader_idle()
    ring.reset()
    assert ring.used() == 0 and ring.pop_batch() == []
    for name in ("RING_HEAD_OFF", "RING_TAIL_OFF", "RING_HEAD_CACHE_OFF"):
        assert field(ring, getattr(L, name)) == 0
    assert field(ring, L.RING_SLEEPING_OFF, "@I") == 0
    assert ring.push(b"again") and ring.pop_batch() == [b"again"]


def test_counters_wrap_at_2_to_the_64(impl):
    ring = make_ring(impl, capacity=256)
    start = (1 << 64) - 100
    for name in ("RING_HEAD_OFF", "RING_TAIL_OFF", "RING_HEAD_CACHE_OFF"):
        U64.pack_into(ring._mem, OFF + getattr(L, name), start)
    for round_ in range(10):
        items = [bytes([round_]) * n for n in (10, 50, 3)]
        assert ring.push_many(items) == 3
        assert ring.pop_batch() == items
    assert ring.used() == 0 and field(ring, L.RING_TAIL_OFF) < 10_000


def test_sleeping_flag_protocol(impl):
    ring = make_ring(impl)
    flag = lambda: field(ring, L.RING_SLEEPING_OFF, "@I")  # noqa: E731
    assert ring.writer_should_ring() is False          # reader awake
    assert ring.reader_idle() is True and flag() == 1  # empty: may block
    ring.push(b"job")
    assert ring.writer_should_ring() is True and flag() == 0
    assert ring.writer_should_ring() is False          # rung once only
    assert ring.reader_idle() is False and flag() == 0  # data: run on
    assert ring.pop_batch() == [b"job"]
    assert ring.reader_idle() is True
    ring.reader_awake()
    assert flag() == 0 and ring.writer_should_ring() is False


def test_bad_geometry_is_refused(impl):
    mem = mmap.mmap(-1, 4096)
    with pytest.raises(ValueError, match="multiple of 64"):
        impl.init(mem, 8, 1024)
    with pytest.raises(ValueError, match="power of two"):
        impl.init(mem, 0, 1000)
    with pytest.raises(ValueError, match="does not fit"):
        impl.init(mem, 0, 4096)
    with pytest.raises(ValueError, match="power of two"):
        impl.push(mem, 64, b"never initialised")
    with pytest.raises(ValueError, match="does not fit"):
        impl.used(mem, 4096 - 64)
    with pytest.raises(BufferError):
        impl.used(bytes(4096), 0)


def test_corruption_is_detected_not_followed(impl):
    ring = make_ring(impl, capacity=256)
    ring.push(b"ok")
    struct.pack_into("@I", ring._mem, OFF + L.RING_DATA_OFF, 200)
    with pytest.raises(RuntimeError, match="corrupt"):
        ring.pop_batch()
    U64.pack_into(ring._mem, OFF + L.RING_TAIL_OFF, 10_000)
    with pytest.raises(RuntimeError, match="corrupt"):
        ring.pop_batch()


def test_segment_create_and_check():
    with Segment.create(3, 4096) as seg:
        assert seg.check() is seg
        assert (seg.pairs, seg.ring_count, seg.ring_capacity) == (3, 6, 4096)
        assert seg.size == L.segment_size(6, 4096) == len(seg.buffer)
        offsets = {seg.inbound(i).offset for i in range(3)} | \
            {seg.outbound(i).offset for i in range(3)}
        assert offsets == {L.ring_offset(k, 4096) for k in range(6)}
        seg.inbound(2).push(b"to coordinator")
        assert seg.outbound(2).pop_batch() == []
        assert seg.inbound(2).pop_batch() == [b"to coordinator"]
        assert seg.outbound(0).capacity == 4096
        with pytest.raises(IndexError):
            seg.inbound(3)


@pytest.mark.parametrize("offset, fmt, value, message", [
    (L.SEG_MAGIC_OFF, "@Q", 0x1234, "magic"),
    (L.SEG_VERSION_OFF, "@I", L.LAYOUT_VERSION + 1, "layout version"),
    (L.SEG_RING_COUNT_OFF, "@I", 3, "ring count"),
    (L.SEG_RING_CAPACITY_OFF, "@Q", 3000, "capacity"),
    (L.SEG_RING_STRIDE_OFF, "@Q", 4096, "ring stride"),
    (L.SEG_SIZE_OFF, "@Q", 1 << 40, "segment size"),
    (L.ring_offset(1, 4096) + L.RING_CAPACITY_OFF, "@Q", 2048, "ring 1"),
])
def test_segment_check_names_the_mismatch(offset, fmt, value, message):
    with Segment.create(1, 4096) as seg:
        struct.pack_into(fmt, seg.buffer, offset, value)
        with pytest.raises(SegmentError, match=message):
            seg.check()


def test_segment_create_validates():
    with pytest.raises(ValueError):
        Segment.create(0, 4096)
    with pytest.raises(ValueError):
        Segment.create(1, 5000)


def test_segment_over_a_plain_buffer_is_checked():
    with pytest.raises(SegmentError, match="magic"):
        Segment(bytearray(4096)).check()
    with pytest.raises(SegmentError, match="no room"):
        Segment(bytearray(10)).check()


def test_doorbell_is_sticky_and_drains():
    with Doorbell() as bell:
        readable = lambda: select.select([bell], [], [], 0)[0] != []  # noqa: E731
        assert bell.drain() == 0 and not readable()
        bell.ring()
        bell.ring()
        assert readable()
        assert bell.drain() == 2 and not readable()
    with pytest.raises(ValueError):
        bell.fileno()
    bell.close()                                         # idempotent
