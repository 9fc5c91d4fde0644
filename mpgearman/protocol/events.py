"""Events the Decoder produces. Small packets come out whole; a packet whose
data is larger than the decoder's stream threshold comes out as
PacketHead, BodyChunk..., PacketEnd so the function name is known before the
body arrives."""
from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class Packet:
    """A whole request. args holds every argument; for types with data
    (packets.HAS_DATA) the last element is the data."""
    type: int
    args: tuple


@dataclass(slots=True, frozen=True)
class PacketHead:
    """Start of a streamed packet: args without the data, and the data size."""
    type: int
    args: tuple
    size: int


@dataclass(slots=True, frozen=True)
class BodyChunk:
    data: bytes


@dataclass(slots=True, frozen=True)
class PacketEnd:
    pass


@dataclass(slots=True, frozen=True)
class AdminLine:
    """One admin text line, without its trailing \\n; `crlf` tells whether a
    \\r preceded the \\n (it has been removed from `line`)."""
    line: bytes
    crlf: bool


@dataclass(slots=True, frozen=True)
class Rejected:
    """A well-framed packet the server refuses but survives: answer ERROR
    code/text and keep the connection (e.g. INVALID_MAGIC, INVALID_COMMAND).
    Its body has been skipped without buffering."""
    type: int
    code: bytes
    text: bytes


class _NeedData:
    __slots__ = ()

    def __repr__(self):
        return "NEED_DATA"


NEED_DATA = _NeedData()
