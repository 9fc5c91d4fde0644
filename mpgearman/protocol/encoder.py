"""Packets to bytes. The server sends \\0RES; a client sends \\0REQ."""
from .packets import HEADER, REQ, RES

_pack = HEADER.pack


def header(ptype: int, size: int, magic: bytes = RES) -> bytes:
    return HEADER.pack(magic, ptype, size)


def encode(ptype: int, *args: bytes, magic: bytes = RES) -> bytes:
    """A whole packet: args joined by NUL, the last one is the tail."""
    body = b"\0".join(args)
    return _pack(magic, ptype, len(body)) + body


def reply(ptype: int, body: bytes) -> bytes:
    """A server packet whose payload is joined already: encode() without
    the argument tuple, for the replies sent once or more per job."""
    return _pack(RES, ptype, len(body)) + body


def encode_head(ptype: int, args: tuple, data_size: int, magic: bytes = RES) -> bytes:
    """Header plus the NUL-terminated arguments of a packet whose data
    (data_size bytes) is sent separately, e.g. from a spool file."""
    prefix = b"".join(a + b"\0" for a in args)
    return HEADER.pack(magic, ptype, len(prefix) + data_size) + prefix


def request(ptype: int, *args: bytes) -> bytes:
    return encode(ptype, *args, magic=REQ)
