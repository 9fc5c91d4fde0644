"""_ring (ring.c) and ring_py are twins: the same operations on the same
segment give the same results, the same exceptions and the same bytes."""
import mmap
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpgearman.ipc import layout as L
from mpgearman.native import ring_py

try:
    from mpgearman.native import _ring
except ImportError:
    if os.environ.get("MPGEARMAN_REQUIRE_NATIVE") == "1":
        raise
    _ring = None

pytestmark = pytest.mark.skipif(_ring is None, reason="C extension not built")

OFF = 64
FUNCTIONS = ["init", "push", "push_many", "pop_batch", "reader_idle",
             "reader_awake", "writer_should_ring", "used", "reset"]


def outcome(call):
    try:
        return "ok", call()
    except Exception as exc:  # noqa: BLE001 - the type and text are compared
        return type(exc).__name__, str(exc)


def op_strategy(capacity):
    # Sizes spread over the whole range (up to just over the limit) and more
    # pushes than pops, so scripts fill the ring and wrap it often.
    payload = st.builds(lambda n, b: bytes([b]) * n,
                        st.integers(0, L.max_payload(capacity) + 2),
                        st.integers(0, 255))
    push = st.tuples(st.just("push"), payload)
    return st.one_of(
        push, push, push,
        st.tuples(st.just("push_many"), st.lists(payload, max_size=6)),
        st.tuples(st.just("pop_batch"), st.integers(0, 4)),
        st.tuples(st.just("pop_batch"), st.just(1000)),
        st.tuples(st.sampled_from(["reader_idle", "reader_awake",
                                   "writer_should_ring", "used", "reset"])),
    )


@st.composite
def scripts(draw):
    capacity = draw(st.sampled_from([64, 64, 128, 256, 1024]))
    start = draw(st.sampled_from([0, 0, (1 << 64) - 3 * capacity]))
    ops = draw(st.lists(op_strategy(capacity), min_size=10, max_size=120))
    return capacity, start, ops


def fresh(impl, capacity, start):
    mem = mmap.mmap(-1, OFF + L.RING_CTRL_SIZE + capacity + 64)
    impl.init(mem, OFF, capacity)
    for field in (L.RING_HEAD_OFF, L.RING_TAIL_OFF, L.RING_HEAD_CACHE_OFF):
        struct.pack_into("@Q", mem, OFF + field, start)
    return mem


def test_same_functions():
    for name in FUNCTIONS:
        assert callable(getattr(_ring, name)) and callable(getattr(ring_py, name))
    assert _ring.LAYOUT_VERSION == ring_py.LAYOUT_VERSION == L.LAYOUT_VERSION


@settings(max_examples=300, deadline=None)
@given(scripts())
def test_same_results_and_bytes(script):
    capacity, start, ops = script
    mem_c, mem_py = fresh(_ring, capacity, start), fresh(ring_py, capacity, start)
    assert mem_c[:] == mem_py[:]
    for step, (name, *args) in enumerate(ops):
        got_c = outcome(lambda: getattr(_ring, name)(mem_c, OFF, *args))
        got_py = outcome(lambda: getattr(ring_py, name)(mem_py, OFF, *args))
        assert got_c == got_py, (step, name)
        assert mem_c[:] == mem_py[:], (step, name)


BAD_CALLS = [
    ("init", (bytearray(4096), 8, 1024)),
    ("init", (bytearray(4096), -64, 1024)),
    ("init", (bytearray(4096), 0, 1000)),
    ("init", (bytearray(4096), 0, 0)),
    ("init", (bytearray(4096), 0, -1)),
    ("init", (bytearray(4096), 0, 1 << 40)),
    ("init", (bytearray(4096), 0, 4096)),
    ("init", (bytearray(100), 0, 64)),
    ("init", (bytearray(4096), 0, 1 << 70)),
    ("init", (bytearray(4096), 1.0, 64)),
    ("push", (bytearray(4096), 64, b"no ring here")),
    ("used", (bytearray(4096), 4096 - 64)),
    ("pop_batch", (bytearray(4096), 0, -1)),
    ("pop_batch", (bytearray(4096), 0, "3")),
    ("push_many", (bytearray(4096), 0, 5)),
    ("reader_idle", (bytes(4096), 0)),
]


@pytest.mark.parametrize("name, args", BAD_CALLS)
def test_same_errors(name, args):
    got_c = outcome(lambda: getattr(_ring, name)(*args))
    got_py = outcome(lambda: getattr(ring_py, name)(*args))
    assert got_c[0] == got_py[0] != "ok"
    if got_c[0] == "ValueError":
        assert got_c == got_py


def test_buffers_other_than_mmap():
    for make in (bytearray, lambda n: memoryview(bytearray(n))):
        mem_c, mem_py = make(1024), make(1024)
        for impl, mem in ((_ring, mem_c), (ring_py, mem_py)):
            impl.init(mem, 0, 256)
            assert impl.push_many(mem, 0, [b"a" * 50, bytearray(b"b")]) == 2
            assert impl.pop_batch(mem, 0, 1) == [b"a" * 50]
        assert bytes(mem_c) == bytes(mem_py)
