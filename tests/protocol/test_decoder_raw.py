"""Decoder(raw=True): the same events, checks and errors as the default
mode, except that a whole request comes out as (type, payload) instead of a
Packet. Compared against the default mode on the inputs of test_decoder.py
and on random input, with the C scan, its twin and the slow path alone."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpgearman.protocol.decoder import Decoder
from mpgearman.protocol.errors import ProtocolError
from mpgearman.protocol.events import NEED_DATA, Packet
from mpgearman.protocol.packets import ARGS

from test_decoder import (FATAL, IMPLS, MAX, MIXED_BYTES, THRESHOLD, fragments,
                           impl, req)  # noqa: F401 - impl is an autouse fixture


def events_of(pieces, raw, max_payload=MAX, threshold=THRESHOLD):
    dec = Decoder(max_payload, threshold, raw=raw)
    out = []
    try:
        for piece in pieces:
            dec.feed(piece)
            while (event := dec.next_event()) is not NEED_DATA:
                out.append(event)
    except ProtocolError as exc:
        return out, (exc.code, exc.text)
    return out, None


def as_raw(event):
    """What raw mode gives for a default-mode event: the payload as received
    (the arguments joined again), empty for types without arguments."""
    if type(event) is not Packet:
        return event
    argc, has_data = ARGS[event.type]
    return event.type, b"\0".join(event.args) if argc or has_data else b""


def same_in_both_modes(pieces, **kw):
    events, error = events_of(pieces, False, **kw)
    assert events_of(pieces, True, **kw) == ([as_raw(e) for e in events], error)


def test_mixed_stream():
    same_in_both_modes([MIXED_BYTES])
    same_in_both_modes([MIXED_BYTES[i:i + 7] for i in range(0, len(MIXED_BYTES), 7)])


def test_payload_comes_as_received():
    data = req(7, b"fn", b"u", b"d\0a\0ta") + req(9, b"ignored") + req(12, b"H:1", b"1", b"2")
    assert events_of([data], True) == (
        [(7, b"fn\0u\0d\0a\0ta"), (9, b""), (12, b"H:1\x001\x002")], None)


@pytest.mark.parametrize("name", FATAL)
def test_fatal_input(name):
    data = FATAL[name][0]
    max_payload = 1000 if "max_payload" in name else MAX
    same_in_both_modes([data], max_payload=max_payload)
    same_in_both_modes([data[i:i + 1] for i in range(len(data))], max_payload=max_payload)


def test_args_limit_of_8192_bytes():
    name = b"f" * 8190
    for threshold in (THRESHOLD, 20000):
        for data in (req(1, b"f" * 8192), req(1, b"f" * 8193), req(18, name, b"", b"d"),
                     req(18, name, b"x", b"d"), req(18, b"f" * 9000),
                     req(12, b"a" * 8190, b"b")):
            same_in_both_modes([data], threshold=threshold)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(fragments, max_size=10).map(b"".join), st.integers(1, 64),
       st.sampled_from([0, 16, 64, 1 << 20]), st.sampled_from([50, 1000, MAX]))
def test_random_input(data, step, threshold, max_payload):
    pieces = [data[i:i + step] for i in range(0, len(data), step)]
    same_in_both_modes(pieces, max_payload=max_payload, threshold=threshold)
