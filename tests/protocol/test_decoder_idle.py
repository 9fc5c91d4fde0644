"""Decoder.idle: True exactly between requests, so the acceptor can time
out an unfinished request and never an idle connection."""
import struct

import pytest

from mpgearman.protocol.decoder import Decoder
from mpgearman.protocol.events import NEED_DATA

THRESHOLD = 64


def req(ptype, *args, magic=b"\0REQ", size=None):
    body = b"\0".join(args)
    return struct.pack(">4sII", magic, ptype, len(body) if size is None else size) + body


REQUESTS = {
    "packet": req(7, b"reverse", b"", b"test"),
    "no-args": req(9),
    "admin line": b"status\r\n",
    "streamed body": req(7, b"f", b"", bytes(range(256)) * 2),
    "unknown type, skipped": req(10, b"x" * 200),
    "response magic, skipped": req(7, b"f", b"", b"y" * 200, magic=b"\0RES"),
}


def drain(dec):
    while dec.next_event() is not NEED_DATA:
        pass


@pytest.mark.parametrize("raw", [False, True], ids=["events", "raw"])
@pytest.mark.parametrize("name", list(REQUESTS))
def test_idle_only_between_requests(name, raw):
    data = REQUESTS[name]
    dec = Decoder(1 << 20, THRESHOLD, raw=raw)
    assert dec.idle
    for i in range(len(data)):
        dec.feed(data[i:i + 1])
        drain(dec)
        assert dec.idle == (i == len(data) - 1), (name, i)


def test_idle_after_a_piece_holding_the_start_of_the_next_request():
    dec = Decoder(1 << 20, THRESHOLD)
    first, second = REQUESTS["packet"], REQUESTS["admin line"]
    dec.feed(first + second[:3])
    drain(dec)
    assert not dec.idle
    dec.feed(second[3:])
    drain(dec)
    assert dec.idle


def test_idle_in_responses_mode():
    dec = Decoder(1 << 20, THRESHOLD, responses=True)
    data = req(8, b"H:1", magic=b"\0RES")
    dec.feed(data[:5])
    drain(dec)
    assert not dec.idle
    dec.feed(data[5:])
    drain(dec)
    assert dec.idle
