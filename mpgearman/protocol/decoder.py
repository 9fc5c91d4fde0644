"""Sans-IO decoder: bytes in, protocol events out (events.py).

Owns the receive buffer of one connection and the framing state machine:
binary packets, admin text lines, rejected packets and streamed bodies.
It must not touch sockets, clocks, shared memory or files, and any input
must end as events or a ProtocolError, never another exception.

Two paths over the same rules:

- fast: native.scan.scan_packets walks the complete small \\0REQ packets at
  the head of the buffer in one call (C, or its Python twin), and their
  bodies are split into arguments here;
- slow: one state step at a time (state = a bound method) for everything
  else: text lines, partial or invalid headers, \\0RES, big bodies.

responses=True turns it around for clients and workers: \\0RES packets of
the response types are decoded (always by the slow path, which keeps the
server's fast path untouched), \\0REQ ones are rejected, and a text line is
fatal (a server never sends one to a binary connection).

Buffer: a bytearray with a read offset, compacted once the offset passes
half of it, so consuming n bytes costs O(n) whatever the feed sizes.
"""
from collections import deque

from mpgearman.native import scan

from . import errors
from .errors import ProtocolError
from .events import (NEED_DATA, AdminLine, BodyChunk, Packet, PacketEnd,
                     PacketHead, Rejected)
from .packets import (ARGS, HEADER, HEADER_SIZE, MAX_ARGS_BYTES, MAX_TYPE,
                      REQ, REQUEST_TYPES, RES, RESPONSE_TYPES)

MAX_LINE = 8192                # admin line incl. its \n (gearmand's buffer)

from .errors import ARGS_TOO_LONG, BAD_MAGIC, BAD_TYPE, LINE_TOO_LONG, MISSING_ARG, TOO_BIG


def _parser(ptype: int, accepted=REQUEST_TYPES):
    """Body -> event for one packet type, from its (argc, has_data) entry.
    Shared by both paths so a packet decodes the same whichever took it."""
    if ptype not in accepted:
        rejected = Rejected(ptype, *errors.INVALID_COMMAND)
        return lambda body: rejected
    argc, has_data = ARGS[ptype]
    if has_data:
        def parse(body: bytes) -> Packet:
            parts = body.split(b"\0", argc)
            size = len(body)
            # The arguments must end inside the first 8192 bytes, as gearmand.
            if len(parts) > argc and (size <= MAX_ARGS_BYTES or
                                      size - len(parts[-1]) <= MAX_ARGS_BYTES):
                return Packet(ptype, tuple(parts))
            raise ProtocolError(*(MISSING_ARG if size <= MAX_ARGS_BYTES
                                  else ARGS_TOO_LONG))
    elif argc == 0:
        empty = Packet(ptype, ())
        def parse(body: bytes) -> Packet:       # noqa: E306 - payload ignored
            return empty
    else:
        def parse(body: bytes) -> Packet:
            if len(body) > MAX_ARGS_BYTES:
                raise ProtocolError(*ARGS_TOO_LONG)
            parts = body.split(b"\0", argc - 1)
            if len(parts) < argc:
                raise ProtocolError(*MISSING_ARG)
            return Packet(ptype, tuple(parts))
    return parse


def _raw_parser(ptype: int):
    """Like _parser, but a valid packet comes out as the plain tuple
    (type, body): the same checks and errors, without splitting the body
    into arguments only for a caller that would join them again."""
    if ptype not in REQUEST_TYPES:
        return _parser(ptype)
    argc, has_data = ARGS[ptype]
    if argc == 0 and not has_data:
        empty = (ptype, b"")              # the payload is ignored, as in _parser
        return lambda body: empty
    # The argc-th NUL (has_data), or the argc-1 NULs a split needs, must come
    # within the first MAX_ARGS_BYTES bytes: the conditions _parser tests.
    need = argc if has_data else argc - 1
    if has_data:
        def parse(body: bytes) -> tuple:
            if body.count(b"\0", 0, MAX_ARGS_BYTES) >= need:
                return ptype, body
            raise ProtocolError(*(MISSING_ARG if len(body) <= MAX_ARGS_BYTES
                                  else ARGS_TOO_LONG))
    else:
        def parse(body: bytes) -> tuple:
            if len(body) > MAX_ARGS_BYTES:
                raise ProtocolError(*ARGS_TOO_LONG)
            if need and body.count(b"\0") < need:
                raise ProtocolError(*MISSING_ARG)
            return ptype, body
    return parse


_PARSE = [None] + [_parser(t) for t in range(1, MAX_TYPE + 1)]
_RAW = [None] + [_raw_parser(t) for t in range(1, MAX_TYPE + 1)]
_PARSE_RES = [None] + [_parser(t, RESPONSE_TYPES) for t in range(1, MAX_TYPE + 1)]


class Decoder:
    """feed(bytes) as they arrive, then next_event() until NEED_DATA.

    Packets of size <= stream_threshold come out whole (Packet). A has_data
    packet above it comes out as PacketHead, BodyChunk..., PacketEnd, and
    its data is never held beyond what the caller has fed and not yet taken.

    raw=True: a whole request comes out as the tuple (type, payload) instead
    of a Packet, after the same checks (for a caller that forwards payloads
    as they are, like the acceptor). Every other event is unchanged.

    responses=True: decode what a server sends (see the module docstring).
    """

    def __init__(self, max_payload: int, stream_threshold: int, raw: bool = False,
                 responses: bool = False):
        self._parse = _RAW if raw else _PARSE
        self._foreign, self._accepted = RES, REQUEST_TYPES
        # One bound method, kept: `_step is _at_boundary` is then a cheap
        # test (idle), and returning to the boundary allocates nothing.
        self._at_boundary = self._at_boundary
        if responses:
            self._parse = _PARSE_RES
            self._foreign, self._accepted = REQ, RESPONSE_TYPES
            self._at_boundary = self._step = self._at_response_boundary
        self.max_payload = max_payload
        self.stream_threshold = stream_threshold
        # The fast path may only take packets that come out whole.
        self._max_small = max(0, min(max_payload, stream_threshold))
        self._buf = bytearray()
        self._pos = 0
        self._ready = []           # fast-path events, last one first (pop())
        self._chunks = deque()     # stream data taken straight from feed()
        self._step = self._at_boundary
        self._error = None
        self._type = 0             # packet being read by the slow path
        self._left = 0             # body bytes still to read/skip/stream
        self._rejected = None      # event due once a skipped body is gone
        self._searched = 0         # bytes after _pos already searched ...
        self._nuls = 0             # ... and the NULs found there (streamed args)

    @property
    def buffered(self) -> int:
        """Input bytes held: in the buffer, or taken for a BodyChunk not yet
        returned. Packets already decoded and queued are not counted."""
        return len(self._buf) - self._pos + sum(map(len, self._chunks))

    @property
    def idle(self) -> bool:
        """True between requests: no part of a next one has been fed (and
        nothing decoded waits to be taken). False while a header, an admin
        line or a body is incomplete, which is what a request timeout
        measures; an idle connection may stay idle for ever."""
        return (self._step is self._at_boundary and self._pos == len(self._buf)
                and not self._ready and not self._chunks)

    def feed(self, data) -> None:
        if type(data) is not bytes and type(data) is not bytearray:
            data = memoryview(data).cast("B")
        if not data:
            return
        if self._pos == len(self._buf):
            data = self._bypass(data)
            if self._pos:
                self._buf.clear()
                self._pos = 0
        elif self._pos > len(self._buf) >> 1:
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data

    def _bypass(self, data):
        """With nothing buffered, skipped and streamed body bytes need not be
        copied into the buffer: count them down or hand them on as they are.
        Returns what is left for the buffer."""
        step = self._step
        if step == self._skipping:
            n = min(self._left, len(data))
            self._left -= n
            return memoryview(data)[n:] if n else data
        if step == self._streaming and self._left:
            n = min(self._left, len(data))
            self._left -= n
            if n == len(data) and type(data) is bytes:
                self._chunks.append(data)
                return b""
            view = memoryview(data)
            self._chunks.append(bytes(view[:n]))
            return view[n:]
        return data

    def next_event(self):
        """The next event, or NEED_DATA. Raises ProtocolError on fatal input;
        the decoder is then unusable (it keeps raising the same error)."""
        if self._ready:
            return self._ready.pop()
        if self._error is not None:
            raise self._error
        try:
            return self._step()
        except ProtocolError as exc:
            self._error = exc
            raise

    # -- packet boundary -------------------------------------------------

    def _at_boundary(self):
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if not avail:
            if pos:                # idle connections keep no stale bytes
                buf.clear()
                self._pos = 0
            return NEED_DATA
        if buf[pos]:
            return self._text_line(buf, pos, avail)
        if avail < HEADER_SIZE:
            return NEED_DATA
        frames, stop = scan.scan_packets(buf, pos, self._max_small)
        if frames:
            return self._take_frames(frames, stop)
        return self._header(buf, pos)

    def _at_response_boundary(self):
        """_at_boundary for responses=True: no scan (it takes \\0REQ frames
        only) and no text lines."""
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if not avail:
            if pos:
                buf.clear()
                self._pos = 0
            return NEED_DATA
        if buf[pos]:
            raise ProtocolError(*BAD_MAGIC)
        if avail < HEADER_SIZE:
            return NEED_DATA
        return self._header(buf, pos)

    def _take_frames(self, frames, stop):
        """Turn the fast path's frames into ready events. An error in one of
        them is raised only after the events before it have been taken."""
        base = self._pos
        with memoryview(self._buf) as view:
            region = view[base:stop].tobytes()
        events = []
        append = events.append
        parse = self._parse
        try:
            for ptype, start, end in frames:
                append(parse[ptype](region[start - base:end - base]))
            self._pos = stop
        except ProtocolError as exc:
            self._error = exc     # the decoder is done; _pos no longer matters
        events.reverse()
        self._ready = events
        return self.next_event()

    def _header(self, buf, pos):
        magic, ptype, size = HEADER.unpack_from(buf, pos)
        if magic != REQ and magic != RES:
            raise ProtocolError(*BAD_MAGIC)
        if not 1 <= ptype <= MAX_TYPE:
            raise ProtocolError(*BAD_TYPE)
        if size > self.max_payload:
            raise ProtocolError(*TOO_BIG)
        self._pos = pos + HEADER_SIZE
        self._type = ptype
        self._left = size
        if magic == self._foreign:
            self._rejected = Rejected(ptype, *errors.INVALID_MAGIC)
            self._step = self._skipping
        elif ptype not in self._accepted:
            self._rejected = Rejected(ptype, *errors.INVALID_COMMAND)
            self._step = self._skipping
        elif ARGS[ptype][1] and size > self.stream_threshold:
            self._step = self._stream_args
        elif not ARGS[ptype][1] and size > MAX_ARGS_BYTES:
            raise ProtocolError(*ARGS_TOO_LONG)
        else:
            self._step = self._whole_body
        return self._step()

    # -- admin text lines ------------------------------------------------

    def _text_line(self, buf, pos, avail):
        # Search only the bytes not searched before (byte-at-a-time feeding
        # stays linear) and never beyond one maximal line.
        window = min(avail, MAX_LINE)
        nl = buf.find(b"\n", pos + self._searched, pos + window)
        if nl < 0:
            if window == MAX_LINE:
                raise ProtocolError(*LINE_TOO_LONG)
            self._searched = window
            return NEED_DATA
        self._searched = 0
        self._pos = nl + 1
        crlf = nl > pos and buf[nl - 1] == 0x0D
        return AdminLine(bytes(buf[pos:nl - 1 if crlf else nl]), crlf)

    # -- bodies ----------------------------------------------------------

    def _whole_body(self):
        pos, size = self._pos, self._left
        if len(self._buf) - pos < size:
            return NEED_DATA
        with memoryview(self._buf) as view:
            body = view[pos:pos + size].tobytes()
        self._pos = pos + size
        self._step = self._at_boundary
        return self._parse[self._type](body)

    def _skipping(self):
        n = min(self._left, len(self._buf) - self._pos)
        self._pos += n
        self._left -= n
        if self._left:
            return NEED_DATA
        self._step = self._at_boundary
        return self._rejected

    def _stream_args(self):
        """Wait until the NUL-terminated arguments of a streamed packet are
        in, then emit its PacketHead; the data follows as chunks."""
        argc = ARGS[self._type][0]
        buf, pos, size = self._buf, self._pos, self._left
        window = min(size, MAX_ARGS_BYTES)
        avail = min(len(buf) - pos, window)
        end = pos
        if argc:
            # Count only bytes not searched before: byte-at-a-time stays linear.
            self._nuls += buf.count(b"\0", pos + self._searched, pos + avail)
            self._searched = avail
            if self._nuls < argc:
                if avail == window:
                    raise ProtocolError(*(MISSING_ARG if size <= MAX_ARGS_BYTES
                                          else ARGS_TOO_LONG))
                return NEED_DATA
            for _ in range(argc):
                end = buf.index(b"\0", end) + 1
        args = tuple(bytes(buf[pos:end]).split(b"\0")[:argc])
        self._pos = end
        self._left = size - (end - pos)
        self._searched = self._nuls = 0
        self._step = self._streaming
        return PacketHead(self._type, args, self._left)

    def _streaming(self):
        if self._chunks:
            return BodyChunk(self._chunks.popleft())
        if not self._left:
            self._step = self._at_boundary
            return PacketEnd()
        pos = self._pos
        n = min(self._left, len(self._buf) - pos)
        if not n:
            return NEED_DATA
        with memoryview(self._buf) as view:
            chunk = view[pos:pos + n].tobytes()
        self._pos = pos + n
        self._left -= n
        return BodyChunk(chunk)
