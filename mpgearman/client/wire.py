"""Both directions of a client or worker connection's byte stream, sans-IO:
`inbound_events` turns what the server sent into protocol events (the
shared decoder of mpgearman.protocol, in its responses mode), and `Outbox`
holds what is yet to be sent, whole packets (bytes) and streamed bodies
(iterators of chunks), in order."""

from collections import deque
from collections.abc import Iterator
from typing import Any, Union

from mpgearman.protocol.decoder import Decoder
from mpgearman.protocol.errors import ProtocolError as WireError
from mpgearman.protocol.events import NEED_DATA
from mpgearman.protocol.packets import (ARGS, HEADER, HEADER_SIZE, MAX_ARGS_BYTES,
                                        MAX_SIZE, RES)

from .errors import ProtocolError

STREAM_THRESHOLD = 1 << 20     # bodies above this come out in chunks
BATCH = 64 << 10               # small chunks joined into one send() up to this


def text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def response_decoder() -> Decoder:
    return Decoder(MAX_SIZE, STREAM_THRESHOLD, responses=True)


def inbound_events(decoder: Decoder, data: bytes) -> Iterator[Any]:
    """Feed `data`; yield every event now complete. Input that is not the
    protocol raises the client's ProtocolError: the connection must go."""
    decoder.feed(data)
    while True:
        try:
            event = decoder.next_event()  # type: ignore[no-untyped-call]
        except WireError as exc:
            raise ProtocolError(text(exc.code), text(exc.text)) from None
        if event is NEED_DATA:
            return
        yield event


def quick_packets(data: bytes, types: frozenset[int]) -> tuple[list[Any], int]:
    """The common case without the decoder's generality: the whole packets
    at the start of `data` whose type is in `types`, as (type, args) in
    order (args split as the decoder splits them), and the number of bytes
    they took. Stops at the first packet that is incomplete, of another
    type, or anything but plainly valid: the decoder takes it from there,
    with its checks and errors. Only for a decoder holding nothing (its
    `idle`)."""
    packets: list[Any] = []
    pos, end = 0, len(data)
    while end - pos >= HEADER_SIZE:
        magic, ptype, size = HEADER.unpack_from(data, pos)
        start = pos + HEADER_SIZE
        if magic != RES or ptype not in types or size > STREAM_THRESHOLD \
                or start + size > end:
            break
        argc, has_data = ARGS[ptype]
        if has_data:
            args = data[start:start + size].split(b"\0", argc)
            if len(args) <= argc or (size > MAX_ARGS_BYTES and
                                     size - len(args[-1]) > MAX_ARGS_BYTES):
                break
        elif size > MAX_ARGS_BYTES or (argc == 0 and size):
            break
        elif argc:
            args = data[start:start + size].split(b"\0", argc - 1)
            if len(args) < argc:
                break
        else:
            args = []
        packets.append((ptype, tuple(args)))
        pos = start + size
    return packets, pos


class Outbox(deque[Union[bytes, memoryview, Iterator[bytes]]]):
    """Packets and streamed bodies waiting to be sent, in order."""

    def next_chunk(self) -> bytes | memoryview | None:
        """The next bytes to send (bytes or memoryview), or None."""
        while self:
            item = self[0]
            if isinstance(item, (bytes, bytearray, memoryview)):
                self.popleft()
                return item
            chunk = next(item, None)
            if chunk is None:
                self.popleft()
                continue
            return chunk
        return None

    def next_batch(self, limit: int = BATCH) -> bytes | memoryview | None:
        """Like next_chunk, with consecutive small chunks joined up to
        `limit` bytes: one send() for a packet's header and body, or for a
        result and the next GRAB, instead of one each. A big chunk is
        returned alone, uncopied."""
        chunk = self.next_chunk()
        if chunk is None or len(chunk) >= limit or not self:
            return chunk
        parts, size = [chunk], len(chunk)
        while size < limit:
            more = self.next_chunk()
            if more is None:
                break
            if size + len(more) > limit:
                self.appendleft(more)       # the start of the next batch
                break
            parts.append(more)
            size += len(more)
        return b"".join(parts) if len(parts) > 1 else chunk

    def discard(self) -> None:
        """Drop everything unsent, closing streamed bodies (and their files)."""
        for item in self:
            if hasattr(item, "close"):
                item.close()
        self.clear()
