"""The journal's bytes: file header and records.

Owns: how a record is laid out and checked; nothing here opens a file.

File: HEADER (magic, format version), then records. A record is
    u32 body length | u32 CRC32 of the body | body
and a body starts with its type byte:
    SUBMIT  S | u64 no | u8 prio | u8 spooled | i64 when | u64 size
              | u16 handle len | u16 function len | u16 unique len | u32 data len
              | handle | function | unique | data (or the spool file's name)
    RUN     R | u64 no          (assigned to a worker: one attempt)
    END     E | u64 no          (finished, failed, cancelled or dropped)
    TOP     N | u64 no          (handles up to no were given, foreground ones too)
The Core appends records to a bytearray during a turn (submit(), run(),
end()); the loop writes that buffer with one write().
"""
import struct
import zlib

MAGIC = b"MPGJRNL\0"
VERSION = 1
HEADER = MAGIC + struct.pack("<I", VERSION)
HEAD = struct.Struct("<II")                 # body length, crc32
SUBMIT_FIXED = struct.Struct("<cQBBqQHHHI")
SHORT = struct.Struct("<cQ")
S, R, E, N = b"S", b"R", b"E", b"N"
crc32 = zlib.crc32
# A body longer than this is damage, not a record (the name of a spool file
# or an inline payload below the spool threshold is far smaller).
MAX_BODY = 1 << 26


class BadHeader(ValueError):
    """Not a journal of this format."""


def submit(no: int, handle: bytes, fname: bytes, unique: bytes, prio: int,
           when: int, data) -> bytes:
    """A background or epoch job accepted; `data` is the payload bytes or a
    SpoolRef (its file's name and size are recorded)."""
    if type(data) is bytes:
        spooled, size, payload = 0, len(data), data
    else:
        spooled, size, payload = 1, data.size, data.name.encode()
    body = b"".join((SUBMIT_FIXED.pack(S, no, prio, spooled, int(when), size, len(handle),
                                       len(fname), len(unique), len(payload)),
                     handle, fname, unique, payload))
    return HEAD.pack(len(body), crc32(body)) + body


def submit_size(handle: bytes, fname: bytes, unique: bytes, data) -> int:
    """The length of submit()'s record for these fields."""
    n = len(data) if type(data) is bytes else len(data.name)
    return HEAD.size + SUBMIT_FIXED.size + len(handle) + len(fname) + len(unique) + n


def short(kind: bytes, no: int) -> bytes:
    body = SHORT.pack(kind, no)
    return HEAD.pack(len(body), crc32(body)) + body


def run(no: int) -> bytes:
    return short(R, no)


def end(no: int) -> bytes:
    return short(E, no)


def top(no: int) -> bytes:
    return short(N, no)


class Submit:
    """A decoded SUBMIT record."""
    __slots__ = ("no", "prio", "spooled", "when", "size", "handle", "fname", "unique",
                 "data", "runs", "length")

    def __init__(self, body: bytes):
        (_, self.no, self.prio, self.spooled, self.when, self.size,
         lh, lf, lu, ld) = SUBMIT_FIXED.unpack_from(body)
        at = SUBMIT_FIXED.size
        if at + lh + lf + lu + ld != len(body):
            raise ValueError("field lengths do not match the record's")
        self.handle = body[at:at + lh]
        at += lh
        self.fname = body[at:at + lf]
        at += lf
        self.unique = body[at:at + lu]
        at += lu
        self.data = body[at:at + ld]
        self.runs = 0
        self.length = HEAD.size + len(body)     # of its record

    def encode(self) -> bytes:
        """The record again (compaction), data as read (bytes or a name)."""
        body = b"".join((SUBMIT_FIXED.pack(S, self.no, self.prio, self.spooled, self.when,
                                           self.size, len(self.handle), len(self.fname),
                                           len(self.unique), len(self.data)),
                         self.handle, self.fname, self.unique, self.data))
        return HEAD.pack(len(body), crc32(body)) + body


def check_header(head: bytes) -> None:
    if len(head) < len(HEADER) or head[:len(MAGIC)] != MAGIC:
        raise BadHeader("not an mpgearman journal (bad magic)")
    version = struct.unpack_from("<I", head, len(MAGIC))[0]
    if version != VERSION:
        raise BadHeader(f"journal format version {version}, this server reads {VERSION}")


def records(buf, start: int = len(HEADER)):
    """Yield (offset, body) of each whole, checked record from `start`; stops
    at the end or at the first damage, raising Damage(offset, why, torn)."""
    n = len(buf)
    at = start
    head = HEAD.size
    while at < n:
        if at + head > n:
            raise Damage(at, "a record head cut short", torn=True)
        length, crc = HEAD.unpack_from(buf, at)
        if length == 0 or length > MAX_BODY:
            # Zeros to the end: room the file system gave a write it never saw.
            torn = not any(buf[at:])
            raise Damage(at, f"impossible record length {length}", torn=torn)
        end_ = at + head + length
        if end_ > n:
            raise Damage(at, "a record cut short", torn=True)
        body = bytes(buf[at + head:end_])
        if crc32(body) != crc:
            raise Damage(at, "checksum mismatch", torn=end_ == n)
        yield at, body
        at = end_


class Damage(Exception):
    """A record that cannot be read at `offset`. `torn`: it is the last
    thing in the file (a write the crash cut), safe to cut off."""

    def __init__(self, offset: int, why: str, torn: bool):
        super().__init__(f"offset {offset}: {why}")
        self.offset, self.why, self.torn = offset, why, torn
