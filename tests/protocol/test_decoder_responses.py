"""Decoder(responses=True): what clients and workers read from a server.
Every response type decodes whole or streamed, at every split; \\0REQ
packets and request types are rejected; text is fatal."""
import struct

import pytest

from mpgearman.protocol.decoder import Decoder
from mpgearman.protocol.errors import ProtocolError
from mpgearman.protocol.events import (BodyChunk, Packet, PacketEnd,
                                       PacketHead, Rejected)
from mpgearman.protocol.packets import PacketType as T

from test_decoder import drain, merged

MAX = (1 << 32) - 1


def res(ptype, *args, magic=b"\0RES"):
    body = b"\0".join(args)
    return struct.pack(">4sII", magic, ptype, len(body)) + body


CONVERSATION = [
    (res(T.JOB_CREATED, b"H:x:1"), Packet(T.JOB_CREATED, (b"H:x:1",))),
    (res(T.WORK_STATUS, b"H:x:1", b"1", b"10"),
     Packet(T.WORK_STATUS, (b"H:x:1", b"1", b"10"))),
    (res(T.WORK_DATA, b"H:x:1", b"a\0b"), Packet(T.WORK_DATA, (b"H:x:1", b"a\0b"))),
    (res(T.NOOP), Packet(T.NOOP, ())),
    (res(T.ERROR, b"QUEUE_ERROR", b"Job queue is full"),
     Packet(T.ERROR, (b"QUEUE_ERROR", b"Job queue is full"))),
    (res(T.STATUS_RES_UNIQUE, b"u", b"1", b"0", b"0", b"0", b"2"),
     Packet(T.STATUS_RES_UNIQUE, (b"u", b"1", b"0", b"0", b"0", b"2"))),
    (res(T.JOB_ASSIGN_UNIQ, b"H:x:2", b"fn", b"u", b"payload"),
     Packet(T.JOB_ASSIGN_UNIQ, (b"H:x:2", b"fn", b"u", b"payload"))),
    (res(T.WORK_COMPLETE, b"H:x:1", b"done"), Packet(T.WORK_COMPLETE, (b"H:x:1", b"done"))),
]


def test_every_split_gives_the_same_events():
    wire = b"".join(w for w, _ in CONVERSATION)
    expected = [e for _, e in CONVERSATION]
    for cut in range(len(wire) + 1):
        dec = Decoder(MAX, 1 << 20, responses=True)
        events = []
        dec.feed(wire[:cut])
        events += drain(dec)
        dec.feed(wire[cut:])
        events += drain(dec)
        assert events == expected, cut


def test_byte_at_a_time():
    wire = b"".join(w for w, _ in CONVERSATION)
    dec = Decoder(MAX, 1 << 20, responses=True)
    events = []
    for i in range(len(wire)):
        dec.feed(wire[i:i + 1])
        events += drain(dec)
    assert events == [e for _, e in CONVERSATION]


def test_big_result_streams():
    body = bytes(range(256)) * 40
    wire = res(T.WORK_COMPLETE, b"H:x:9", body) + res(T.NOOP)
    dec = Decoder(MAX, 100, responses=True)
    events = []
    for i in range(0, len(wire), 333):
        dec.feed(wire[i:i + 333])
        events += drain(dec)
    assert merged(events) == [PacketHead(T.WORK_COMPLETE, (b"H:x:9",), len(body)),
                              BodyChunk(body), PacketEnd(), Packet(T.NOOP, ())]


def test_request_magic_and_request_types_are_rejected():
    dec = Decoder(MAX, 1 << 20, responses=True)
    dec.feed(res(T.SUBMIT_JOB, b"f", b"", b"x", magic=b"\0REQ") + res(T.CAN_DO, b"f")
             + res(T.NOOP))
    events = drain(dec)
    assert [type(e) for e in events] == [Rejected, Rejected, Packet]
    assert events[0].code == b"INVALID_MAGIC"
    assert events[1].code == b"INVALID_COMMAND"


def test_text_is_fatal():
    dec = Decoder(MAX, 1 << 20, responses=True)
    dec.feed(b"OK\n")
    with pytest.raises(ProtocolError):
        dec.next_event()


def test_server_mode_still_rejects_responses():
    dec = Decoder(MAX, 1 << 20)
    dec.feed(res(T.NOOP))
    [event] = drain(dec)
    assert isinstance(event, Rejected) and event.code == b"INVALID_MAGIC"


from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=8))
def test_any_input_gives_events_or_a_protocol_error(pieces):
    dec = Decoder(1 << 16, 32, responses=True)
    try:
        for piece in pieces:
            dec.feed(b"\0RES" + piece if piece[:1] == b"\0" else piece)
            drain(dec)
    except ProtocolError:
        pass
