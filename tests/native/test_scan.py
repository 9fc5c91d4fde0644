"""The framing scan: C module _scan and its twin scan_py behave the same."""
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpgearman.native import scan_py

try:
    from mpgearman.native import _scan
except ImportError:
    if os.environ.get("MPGEARMAN_REQUIRE_NATIVE") == "1":
        raise
    _scan = None

IMPLS = [
    pytest.param(scan_py, id="py"),
    pytest.param(_scan, id="c", marks=pytest.mark.skipif(
        _scan is None, reason="C extension not built")),
]
needs_c = pytest.mark.skipif(_scan is None, reason="C extension not built")


def pkt(ptype, body=b"", magic=b"\0REQ", size=None):
    return struct.pack(">4sII", magic, ptype, len(body) if size is None else size) + body


@pytest.fixture(params=IMPLS)
def scan(request):
    return request.param.scan_packets


def test_consecutive_packets(scan):
    buf = pkt(7, b"f\0\0data") + pkt(9) + pkt(16, b"echo")
    assert scan(buf, 0, 100) == ([(7, 12, 19), (9, 31, 31), (16, 43, 47)], 47)


def test_starts_at_pos(scan):
    buf = b"junk" + pkt(1, b"fn")
    assert scan(buf, 4, 100) == ([(1, 16, 18)], 18)


@pytest.mark.parametrize("tail, why", [
    (b"status\n", "text line"),
    (pkt(7, b"abc")[:-1], "incomplete body"),
    (pkt(7)[:11], "incomplete header"),
    (pkt(7, b"abc", magic=b"\0RES"), "response magic"),
    (pkt(7, b"abc", magic=b"XREQ"), "bad magic"),
    (pkt(0), "type 0"),
    (pkt(43), "type 43"),
    (pkt(0x80000007), "type with the high bit"),
    (pkt(16, b"x" * 11), "size above max_small"),
    (pkt(16, b"", size=0xFFFFFFFF), "4 GiB size"),
])
def test_stops_where_the_slow_path_takes_over(scan, tail, why):
    head = pkt(9)
    assert scan(head + tail, 0, 10) == ([(9, 12, 12)], 12), why


def test_size_equal_to_max_small_is_taken(scan):
    assert scan(pkt(16, b"x" * 10), 0, 10) == ([(16, 12, 22)], 22)


def test_types_1_and_42_are_taken(scan):
    assert scan(pkt(1) + pkt(42), 0, 0) == ([(1, 12, 12), (42, 24, 24)], 24)


@pytest.mark.parametrize("pos", [0, 3, 12, 13, 100])
def test_nothing_to_scan_returns_pos(scan, pos):
    assert scan(b"", pos, 10) == ([], pos)
    assert scan(pkt(9) + pkt(9)[:11], pos, 10) == \
        (([(9, 12, 12)], 12) if pos == 0 else ([], pos))


def test_negative_max_small_takes_nothing(scan):
    assert scan(pkt(9), 0, -1) == ([], 0)


def test_negative_pos_is_an_error(scan):
    with pytest.raises(ValueError):
        scan(pkt(9), -1, 10)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_any_bytes_like(scan, kind):
    buf = pkt(7, b"a\0b\0c") + pkt(3)
    assert scan(kind(buf), 0, 100) == ([(7, 12, 17), (3, 29, 29)], 29)


def test_memoryview_slice(scan):
    buf = memoryview(b"xyz" + pkt(4) + b"tail")[3:]
    assert scan(buf, 0, 0) == ([(4, 12, 12)], 12)


def test_huge_max_small(scan):
    assert scan(pkt(9), 0, 1 << 62) == ([(9, 12, 12)], 12)


# -- the twins agree on anything ---------------------------------------------

fragments = st.one_of(
    st.builds(pkt, st.integers(0, 45), st.binary(max_size=20)),
    st.builds(pkt, st.sampled_from([0, 1, 42, 43, 0x80000000, 0xFFFFFFFF]),
              st.binary(max_size=4), st.sampled_from([b"\0REQ", b"\0RES", b"REQ\0"]),
              st.one_of(st.none(), st.integers(0, 30), st.just(0xFFFFFFFF))),
    st.binary(max_size=14),
)


@needs_c
@settings(max_examples=500, deadline=None)
@given(st.lists(fragments, max_size=12).map(b"".join),
       st.integers(0, 200), st.integers(-2, 40))
def test_c_and_python_agree(buf, pos, max_small):
    assert _scan.scan_packets(buf, pos, max_small) == \
        scan_py.scan_packets(buf, pos, max_small)
    assert _scan.scan_packets(bytearray(buf), pos, max_small) == \
        scan_py.scan_packets(memoryview(buf), pos, max_small)


@needs_c
@given(st.binary(max_size=64), st.integers(0, 70), st.integers(0, 1 << 40))
def test_c_and_python_agree_on_random_bytes(buf, pos, max_small):
    assert _scan.scan_packets(buf, pos, max_small) == \
        scan_py.scan_packets(buf, pos, max_small)
