"""Sans-IO state of one worker connection: registrations, the grab/sleep
cycle, assigned jobs in, results out.

It owns the worker side of the protocol: CAN_DO / CAN_DO_TIMEOUT and
SET_CLIENT_ID on start, GRAB_JOB_UNIQ, PRE_SLEEP after NO_JOB and waking
on NOOP (no polling), JOB_ASSIGN_UNIQ decoded whole or streamed, and the
WORK_* packets of results. A payload above `spool_threshold` is written
to a file from `spool()` as it arrives, never held in memory. It must not
touch sockets, clocks or threads, nor decide how many jobs to run: the
caller asks `ready` and calls grab().

States: "idle" (may grab), "grabbing" (GRAB sent), "sleeping" (PRE_SLEEP
sent, waiting for NOOP).

After a job ends (`ended`) with no other job of this connection in hand,
the session goes to sleep at once (PRE_SLEEP after the result, in the same
send) instead of leaving the caller to send a GRAB that an empty queue
answers with NO_JOB: one round trip less per job when jobs come one at a
time. PRE_SLEEP makes gearmand cancel the connection's CAN_DO_TIMEOUT
timer, so it is never sent while a job is in hand. When jobs are waiting
(a GRAB after a job got one) it grabs instead, as long as GRABs find jobs;
while sleeping after each job, every PROBE_EVERY-th job tries a GRAB to
find out whether the queue has filled up.
"""
from collections import deque
from collections.abc import Callable, Iterator
from typing import IO, Any

from mpgearman.protocol.encoder import encode_head, request
from mpgearman.protocol.events import (BodyChunk, Packet, PacketEnd,
                                       PacketHead)
from mpgearman.protocol.packets import MAX_SIZE
from mpgearman.protocol.packets import PacketType as T

from .errors import ProtocolError
from .payload import BytesPayload, Payload
from .wire import Outbox, inbound_events, quick_packets, response_decoder, text as _text

PART_SIZE = 1 << 30            # WORK_DATA parts of a result above 4 GiB - 1
PROBE_EVERY = 16               # while sleeping after each job, GRAB after every 16th
_GRAB = request(T.GRAB_JOB_UNIQ)
_PRE_SLEEP = request(T.PRE_SLEEP)
# What a worker is sent per job, decoded by wire.quick_packets when whole.
_QUICK = frozenset({T.NOOP, T.NO_JOB, T.JOB_ASSIGN_UNIQ})
SMALL_RESULT = 64 << 10        # a result up to this is sent as one bytes packet


class Assignment:
    """A job handed to this worker: handle, function, unique, and the
    payload as bytes (`data`) or as a file positioned anywhere (`file`)."""

    def __init__(self, handle: bytes, function: bytes, unique: bytes):
        self.handle = handle.decode("utf-8", "replace")
        self.function = function.decode("utf-8", "replace")
        self.unique = unique.decode("utf-8", "replace")
        self.raw_handle = handle
        self.data = b""
        self.file: IO[bytes] | None = None
        self.size = 0


class WorkerSession:
    def __init__(self, address: str, functions: dict[str, float | None],
                 client_id: str | None, spool_threshold: int,
                 spool: Callable[[], IO[bytes]]) -> None:
        self.address = address
        self.decoder = response_decoder()
        self.state = "idle"
        self.part_size = PART_SIZE
        self.spool_threshold = spool_threshold
        self.spool = spool                 # () -> a new binary temporary file
        self.errors: deque[str] = deque(maxlen=16)     # ERROR packets, for logging
        self._out = Outbox()
        self._assigned: list[Assignment] = []
        self._streaming: Assignment | None = None     # whose body is arriving
        self._parts: list[bytes] = []
        self._in_hand: set[bytes] = set()     # handles of jobs assigned, not ended
        self._busy = False                    # a GRAB after a job found one waiting
        self._probing = False                 # the GRAB in flight was sent after a job
        self._slept = 0                       # jobs ended by PRE_SLEEP since a probe
        if client_id:
            self._out.append(request(T.SET_CLIENT_ID, client_id.encode()))
        for name, timeout in functions.items():
            self.can_do(name, timeout)

    def can_do(self, name: str, timeout: float | None) -> None:
        if timeout:
            millis = max(1, int(timeout * 1000))
            self._out.append(request(T.CAN_DO_TIMEOUT, name.encode(), str(millis).encode()))
        else:
            self._out.append(request(T.CAN_DO, name.encode()))

    @property
    def ready(self) -> bool:
        return self.state == "idle"

    def grab(self) -> None:
        self._out.append(_GRAB)
        self.state = "grabbing"

    def ended(self, handle: bytes) -> None:
        """The job `handle` is over for this worker: its last packet is
        queued, or its result was dropped. With no other job in hand, go to
        sleep now, or stay idle for a GRAB when jobs are waiting or it is
        time to probe (see the module docstring)."""
        self._in_hand.discard(handle)
        if self._in_hand or self.state != "idle":
            return
        if self._busy or self._slept >= PROBE_EVERY - 1:
            self._slept = 0
            self._probing = True
            return
        self._slept += 1
        self._out.append(_PRE_SLEEP)
        self.state = "sleeping"

    # -- results -------------------------------------------------------------

    def send(self, ptype: int, handle: bytes, data: bytes = b"") -> None:
        self._out.append(request(ptype, handle, data))

    def send_fail(self, handle: bytes) -> None:
        self._out.append(request(T.WORK_FAIL, handle))

    def send_status(self, handle: bytes, numerator: int, denominator: int) -> None:
        self._out.append(request(T.WORK_STATUS, handle, str(int(numerator)).encode(),
                                 str(int(denominator)).encode()))

    def send_payload(self, ptype: int, handle: bytes, payload: Payload) -> None:
        """A result from a Payload (payload.py), streamed in chunks; the
        payload is closed once sent. A result too big for one packet
        (4 GiB - 1 with the handle) goes first as WORK_DATA parts."""
        limit = min(self.part_size, MAX_SIZE - len(handle) - 1)
        if type(payload) is BytesPayload and payload.size <= min(limit, SMALL_RESULT):
            self._out.append(request(ptype, handle, payload.data))
            return
        offset, size = 0, payload.size
        while size - offset > limit:
            self._send_part(T.WORK_DATA, handle, payload.slice(offset, limit), None)
            offset += limit
        self._send_part(ptype, handle, payload.slice(offset, size - offset), payload)

    def _send_part(self, ptype: int, handle: bytes, part: Payload,
                   owner: Payload | None) -> None:
        self._out.append(encode_head(ptype, (handle,), part.size, magic=b"\0REQ"))

        def chunks() -> Iterator[bytes]:
            try:
                yield from part.chunks()  # type: ignore[misc]
            finally:
                if owner is not None:
                    owner.close()
        self._out.append(chunks())

    @property
    def has_output(self) -> bool:
        return bool(self._out)

    def output(self) -> bytes | memoryview | None:
        """The next bytes to send (bytes or memoryview), or None."""
        return self._out.next_batch()

    def close(self) -> None:
        """Release what a lost connection held: unsent output (closing the
        result payloads) and a half-received job."""
        self._out.discard()
        if self._streaming is not None and self._streaming.file is not None:
            self._streaming.file.close()
        self._streaming = None

    # -- bytes in --------------------------------------------------------------

    def receive(self, data: bytes) -> list[Assignment]:
        """Feed bytes; returns the jobs whose payload is now complete.
        Raises ProtocolError on input that is not the protocol."""
        if self.decoder.idle:
            packets, used = quick_packets(data, _QUICK)
            for ptype, args in packets:
                self._packet(ptype, args)
            data = data[used:] if used else data
        if data:
            for event in inbound_events(self.decoder, data):
                self._dispatch(event)
        done, self._assigned = self._assigned, []
        return done

    def _dispatch(self, event: Any) -> None:
        kind = type(event)
        if kind is BodyChunk:
            self._chunk(event.data)
        elif kind is Packet:
            self._packet(event.type, event.args)
        elif kind is PacketHead and event.type in (T.JOB_ASSIGN_UNIQ, T.JOB_ASSIGN):
            self._head(event)
        elif kind is PacketEnd:
            self._end()
        else:
            raise ProtocolError("UNEXPECTED", f"server sent {event!r:.80}")

    def _packet(self, ptype: int, args: tuple[bytes, ...]) -> None:
        if ptype == T.NOOP:
            if self.state == "sleeping":
                self.state = "idle"
        elif ptype == T.NO_JOB:
            self._busy = self._probing = False
            self._out.append(_PRE_SLEEP)
            self.state = "sleeping"
        elif ptype == T.JOB_ASSIGN_UNIQ or ptype == T.JOB_ASSIGN:
            handle, function, *rest = args
            job = Assignment(handle, function, rest[0] if len(rest) > 1 else b"")
            job.data = rest[-1]
            job.size = len(job.data)
            self._assign(job)
            self._assigned.append(job)
        elif ptype == T.ERROR:
            self.errors.append(f"{_text(args[0])}: {_text(args[1])}")
        elif ptype == T.OPTION_RES:
            pass
        else:
            raise ProtocolError("UNEXPECTED", f"server sent {T(ptype).name} to a worker")

    def _head(self, head: PacketHead) -> None:
        handle, function, *rest = head.args
        job = Assignment(handle, function, rest[0] if rest else b"")
        job.size = head.size
        if head.size > self.spool_threshold:
            job.file = self.spool()
        self._streaming, self._parts = job, []
        self._assign(job)

    def _assign(self, job: Assignment) -> None:
        self.state = "idle"
        self._in_hand.add(job.raw_handle)
        if self._probing:
            self._busy, self._probing = True, False

    def _chunk(self, data: bytes) -> None:
        job = self._streaming
        if job is not None and job.file is not None:
            job.file.write(data)
        else:
            self._parts.append(data)

    def _end(self) -> None:
        job, self._streaming = self._streaming, None
        if job is None:
            return
        if job.file is not None:
            job.file.flush()
            job.file.seek(0)
        else:
            job.data = b"".join(self._parts)
        self._parts = []
        self._assigned.append(job)
