"""Records that cross the shared-memory rings.

Acceptor -> coordinator (inbound)::

    CONNECT  | conn u64 | fd u32 | peer ascii       (fd: the number `workers` shows,
                                                  descriptor * slots + acceptor slot)
    PACKET   | conn u64 | type u16 | body            (the packet's payload as received)
    SPOOLED  | conn u64 | type u16 | size u64 | nlen u16 | name | args\\0...   (data in a spool file)
    ADMIN    | conn u64 | crlf u8 | line
    CLOSED   | conn u64
    RELAY    | conn u64 | close u8 | bytes          (a reply the acceptor made, e.g. an
                                                  ERROR; routed back in request order)

Coordinator -> acceptor (outbound)::

    SEND     | conn u64 | bytes                       (complete packets or admin text)
    SENDFILE | conn u64 | size u64 | nlen u16 | name | head   (head bytes, then the spool file)
    CLOSE    | conn u64

The first byte of every record is its kind. Small payloads travel inline in
PACKET/SEND records; only a spool file's name crosses for big ones.

Connection ids carry their acceptor so the coordinator can route answers::

    conn = acceptor index << 56 | acceptor generation << 40 | serial
"""
import struct

# inbound kinds
CONNECT, PACKET, SPOOLED, ADMIN, CLOSED, RELAY = 1, 2, 3, 4, 5, 6
# outbound kinds
SEND, SENDFILE, CLOSE = 11, 12, 13

_CONN = struct.Struct("<BQ")
_CONNECT = struct.Struct("<BQI")
_PACKET = struct.Struct("<BQH")
_SPOOLED = struct.Struct("<BQHQH")
_ADMIN = struct.Struct("<BQB")
_SENDFILE = struct.Struct("<BQQH")

SERIAL_BITS = 40


def conn_id(index: int, gen: int, serial: int) -> int:
    return index << 56 | (gen & 0xFFFF) << SERIAL_BITS | serial


# -- building -----------------------------------------------------------

def connect(conn: int, fd: int, peer: str) -> bytes:
    return _CONNECT.pack(CONNECT, conn, fd) + peer.encode()


def packet(conn: int, ptype: int, body: bytes) -> bytes:
    return _PACKET.pack(PACKET, conn, ptype) + body


def spooled(conn: int, ptype: int, args: tuple, name: str, size: int) -> bytes:
    n = name.encode()
    return (_SPOOLED.pack(SPOOLED, conn, ptype, size, len(n)) + n
            + b"".join(a + b"\0" for a in args))


def admin(conn: int, line: bytes, crlf: bool) -> bytes:
    return _ADMIN.pack(ADMIN, conn, crlf) + line


def relay(conn: int, data: bytes, close_after: bool) -> bytes:
    return _ADMIN.pack(RELAY, conn, close_after) + data


def closed(conn: int) -> bytes:
    return _CONN.pack(CLOSED, conn)


def send(conn: int, data: bytes) -> bytes:
    return _CONN.pack(SEND, conn) + data


def send_head(conn: int) -> bytes:
    """The start of a SEND record; the bytes to send follow it."""
    return _CONN.pack(SEND, conn)


def sendfile(conn: int, head: bytes, name: str, size: int) -> bytes:
    n = name.encode()
    return _SENDFILE.pack(SENDFILE, conn, size, len(n)) + n + head


def close(conn: int) -> bytes:
    return _CONN.pack(CLOSE, conn)


# -- reading: each returns (kind, conn, *fields) --------------------------

# PACKET's fixed part, for a reader that unpacks it inline.
unpack_packet_head = _PACKET.unpack_from
PACKET_HEAD_SIZE = _PACKET.size


def conn_of(rec: bytes) -> int:
    """The connection of any record (every kind starts kind u8, conn u64)."""
    return _CONN.unpack_from(rec)[1]


def unpack_send(rec: bytes) -> tuple:
    """(conn, data) of a SEND record."""
    return _CONN.unpack_from(rec)[1], rec[_CONN.size:]


def parse(rec: bytes) -> tuple:
    kind = rec[0]
    if kind == PACKET:
        _, conn, ptype = _PACKET.unpack_from(rec)
        return kind, conn, ptype, rec[_PACKET.size:]
    if kind in (SEND, CLOSED, CLOSE):
        _, conn = _CONN.unpack_from(rec)
        return kind, conn, rec[_CONN.size:]
    if kind == CONNECT:
        _, conn, fd = _CONNECT.unpack_from(rec)
        return kind, conn, fd, rec[_CONNECT.size:].decode()
    if kind == ADMIN or kind == RELAY:
        _, conn, crlf = _ADMIN.unpack_from(rec)
        return kind, conn, bool(crlf), rec[_ADMIN.size:]
    if kind == SPOOLED:
        _, conn, ptype, size, nlen = _SPOOLED.unpack_from(rec)
        start = _SPOOLED.size
        name = rec[start:start + nlen].decode()
        return kind, conn, ptype, name, size, rec[start + nlen:]
    if kind == SENDFILE:
        _, conn, size, nlen = _SENDFILE.unpack_from(rec)
        start = _SENDFILE.size
        return kind, conn, rec[start + nlen:], rec[start:start + nlen].decode(), size
    raise ValueError(f"unknown ring record kind {kind}")
