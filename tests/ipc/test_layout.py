"""layout.h and ipc/layout.py describe the same layout, value for value."""
import re
from pathlib import Path

import pytest

from mpgearman.ipc import layout

HEADER = Path(__file__).resolve().parents[2] / "mpgearman" / "native" / "layout.h"
DEFINE = re.compile(r"^\s*#\s*define\s+MPG_(\w+)\s+(.*?)\s*(?:/\*.*)?$")
LITERAL = re.compile(r"^(0[xX][0-9a-fA-F]+|\d+)[uUlL]*$")


def header_defines() -> dict:
    values = {}
    for line in HEADER.read_text().splitlines():
        match = DEFINE.match(line)
        if not match:
            continue
        name, text = match.groups()
        literal = LITERAL.match(text)
        assert literal, f"MPG_{name} is not a plain integer literal: {text!r}"
        values[name] = int(literal.group(1), 0)
    return values


def python_constants() -> dict:
    return {name: value for name, value in vars(layout).items()
            if name.isupper() and isinstance(value, int)}


def test_header_has_defines():
    assert len(header_defines()) >= 20


@pytest.mark.parametrize("name", sorted(header_defines()))
def test_every_define_is_mirrored(name):
    assert python_constants().get(name) == header_defines()[name], name


def test_nothing_extra_in_python():
    assert set(python_constants()) == set(header_defines())


def test_cache_lines_are_not_shared():
    # One writer per line: head (consumer), tail + head cache (producer),
    # the sleeping flag (both, rarely), capacity (nobody after init).
    lines = [layout.RING_HEAD_OFF, layout.RING_TAIL_OFF,
             layout.RING_SLEEPING_OFF, layout.RING_CAPACITY_OFF]
    assert len({off // layout.CACHE_LINE for off in lines}) == 4
    assert layout.RING_HEAD_CACHE_OFF // layout.CACHE_LINE == \
        layout.RING_TAIL_OFF // layout.CACHE_LINE
    assert layout.RING_CTRL_SIZE % layout.CACHE_LINE == 0
    assert layout.RING_DATA_OFF == layout.RING_CTRL_SIZE


def test_segment_arithmetic():
    cap = 1 << 12
    assert layout.ring_offset(0, cap) == layout.SEG_HEADER_SIZE
    assert layout.ring_offset(3, cap) - layout.ring_offset(2, cap) == \
        layout.ring_stride(cap)
    assert layout.segment_size(4, cap) == layout.ring_offset(4, cap)
    assert [layout.inbound_index(i) for i in range(3)] == [0, 2, 4]
    assert [layout.outbound_index(i) for i in range(3)] == [1, 3, 5]
    assert layout.SEG_MAGIC.to_bytes(8, "little") == b"MPGRINGS"


def test_record_size_and_limits():
    assert [layout.record_size(n) for n in (0, 4, 5, 12, 13)] == [8, 8, 16, 16, 24]
    assert layout.valid_capacity(64) and layout.valid_capacity(1 << 32)
    assert not layout.valid_capacity(32) and not layout.valid_capacity(96)
    # A largest record fits in an empty ring wherever head stands.
    cap = layout.RING_MIN_CAPACITY
    assert 2 * layout.record_size(layout.max_payload(cap)) <= cap
