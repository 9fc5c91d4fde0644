"""Sans-IO state of one client connection: requests out, bytes in, replies
matched to the jobs and requests that are waiting for them.

It owns the order of outstanding requests (a server answers SUBMIT_*,
ECHO_REQ, GET_STATUS* and OPTION_REQ in order, but replies of different
kinds may cross), the handle -> jobs map, and the decoding of \\0RES
(mpgearman.protocol, responses=True). It must not touch sockets, clocks or
threads: the caller writes what output() returns and feeds receive().

A connection that submitted the same unique twice is attached twice, and
the server sends it every WORK_* packet once per attachment: the copies
are dealt out to the attached jobs in turn.
"""
from collections import deque
from collections.abc import Callable
from typing import Any

from mpgearman.protocol.encoder import encode_head, request
from mpgearman.protocol.events import (BodyChunk, Packet, PacketEnd,
                                       PacketHead, Rejected)
from mpgearman.protocol.packets import PacketType as T

from .errors import GearmanError, ProtocolError
from .wire import Outbox, inbound_events, quick_packets, response_decoder, text as _text
from .jobs import COMPLETE, DATA, EXCEPTION, WARNING, JobState, JobStatus

WORK_KINDS: dict[int, str] = {T.WORK_DATA: DATA, T.WORK_WARNING: WARNING,
              T.WORK_COMPLETE: COMPLETE, T.WORK_EXCEPTION: EXCEPTION}
SUBMIT_TYPES = {
    ("high", False): T.SUBMIT_JOB_HIGH, ("normal", False): T.SUBMIT_JOB,
    ("low", False): T.SUBMIT_JOB_LOW, ("high", True): T.SUBMIT_JOB_HIGH_BG,
    ("normal", True): T.SUBMIT_JOB_BG, ("low", True): T.SUBMIT_JOB_LOW_BG,
}


class Request:
    """An ECHO_REQ, GET_STATUS, GET_STATUS_UNIQUE, OPTION_REQ or SUBMIT
    waiting for its reply: `done`, then `value` or `error`."""

    def __init__(self, kind: str, key: bytes | None = None, job: JobState | None = None):
        self.kind, self.key, self.job = kind, key, job
        self.done = False
        self.value: Any = None
        self.error: GearmanError | None = None
        self.parts: list[bytes] = []
        self.notify: Callable[[], None] | None = None

    def finish(self, value: Any = None, error: GearmanError | None = None) -> None:
        if not self.done:
            self.done, self.value, self.error = True, value, error
            if self.notify is not None:
                self.notify()


class Session:
    def __init__(self, address: str):
        self.address = address
        self.decoder = response_decoder()
        self._out = Outbox()
        self._pending: deque[Request] = deque()
        self._jobs: dict[bytes, list[JobState]] = {}
        self._turn: dict[bytes, int] = {}
        self._stream: Request | JobState | None = None     # taking a body
        self.exceptions = False        # the server accepted OPTION_REQ exceptions
        self.fail_reasons = False      # ... and fail_reasons (mpgearman; gearmand: ERROR)
        self.failure: GearmanError | None = None
        self.option("exceptions")
        self.option("fail_reasons")

    # -- requests ------------------------------------------------------------

    def submit(self, job: JobState) -> Request:
        unique = (job.unique or "").encode()
        name = job.function.encode()
        args: tuple[bytes, ...]
        if job.when is not None:
            args = (name, unique, str(int(job.when)).encode())
            ptype = T.SUBMIT_JOB_EPOCH
        else:
            args = (name, unique)
            ptype = SUBMIT_TYPES[job.priority, job.background]
        self._out.append(encode_head(ptype, args, job.payload.size, magic=b"\0REQ"))
        if job.payload.size:
            self._out.append(job.payload.chunks())  # type: ignore[arg-type]
        return self._expect(Request("submit", job=job))

    def echo(self, data: bytes) -> Request:
        self._out.append(request(T.ECHO_REQ, data))
        return self._expect(Request("echo"))

    def status(self, handle: str) -> Request:
        self._out.append(request(T.GET_STATUS, handle.encode()))
        return self._expect(Request("status", handle.encode()))

    def status_unique(self, unique: str) -> Request:
        self._out.append(request(T.GET_STATUS_UNIQUE, unique.encode()))
        return self._expect(Request("status_unique", unique.encode()))

    def option(self, name: str) -> Request:
        self._out.append(request(T.OPTION_REQ, name.encode()))
        return self._expect(Request("option", name.encode()))

    def _expect(self, req: Request) -> Request:
        self._pending.append(req)
        return req

    @property
    def busy(self) -> bool:
        """Replies or job results are still due on this connection."""
        return bool(self._pending or any(self._jobs.values()))

    # -- bytes out -----------------------------------------------------------

    @property
    def has_output(self) -> bool:
        return bool(self._out)

    def output(self) -> bytes | memoryview | None:
        """The next bytes to send (bytes or memoryview), or None."""
        return self._out.next_batch()

    # -- bytes in --------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Feed bytes from the server. Raises ProtocolError on input that is
        not the protocol; the connection must then be dropped."""
        if self.decoder.idle:
            packets, used = quick_packets(data, _QUICK)
            for ptype, args in packets:
                _HANDLERS[ptype](self, *args)
            data = data[used:] if used else data
        if data:
            for event in inbound_events(self.decoder, data):
                self._dispatch(event)

    def _dispatch(self, event: Any) -> None:
        if type(event) is Packet:
            handler = _HANDLERS.get(event.type)
            if handler is None:
                raise ProtocolError("UNEXPECTED", f"server sent {T(event.type).name}")
            handler(self, *event.args)
        elif type(event) is BodyChunk:
            if self._stream is not None:
                self._stream_chunk(event.data)
        elif type(event) is PacketHead:
            self._stream_head(event)
        elif type(event) is PacketEnd:
            self._stream_end()
        elif type(event) is Rejected:
            raise ProtocolError("UNEXPECTED", f"server sent packet type {event.type} "
                                f"({_text(event.code)})")

    def _stream_head(self, head: PacketHead) -> None:
        if head.type in WORK_KINDS:
            job = self._job_for(head.args[0], head.type == T.WORK_COMPLETE
                                or head.type == T.WORK_EXCEPTION)
            if job is not None:
                job.on_body_start(WORK_KINDS[head.type])
            self._stream = job
        elif head.type == T.ECHO_RES:
            self._stream = self._take("echo")
        else:
            raise ProtocolError("UNEXPECTED", f"server sent a {head.size}-byte "
                                f"{T(head.type).name}")

    def _stream_chunk(self, data: bytes) -> None:
        target = self._stream
        if isinstance(target, Request):
            target.parts.append(data)
        elif target is not None:
            target.on_body_chunk(data)

    def _stream_end(self) -> None:
        target, self._stream = self._stream, None
        if isinstance(target, Request):
            target.finish(b"".join(target.parts))
        elif target is not None:
            target.on_body_end()

    # -- replies -------------------------------------------------------------

    def _take(self, kind: str, key: bytes | None = None) -> Request | None:
        for req in self._pending:
            if req.kind == kind and (key is None or req.key == key):
                self._pending.remove(req)
                return req
        return None

    def _job_for(self, handle: bytes, final: bool) -> JobState | None:
        """The attached job the next copy of a WORK_* packet belongs to."""
        jobs = self._jobs.get(handle)
        if not jobs:
            return None
        turn = self._turn.get(handle, 0) % len(jobs)
        if final:
            job = jobs.pop(turn)
            if not jobs:
                del self._jobs[handle]
                self._turn.pop(handle, None)
            return job
        self._turn[handle] = (turn + 1) % len(jobs)
        return jobs[turn]

    def _on_created(self, handle: bytes) -> None:
        req = self._take("submit")
        if req is None:
            raise ProtocolError("UNEXPECTED", "JOB_CREATED without a submission")
        job = req.job
        assert job is not None      # a "submit" request always has its job
        if not job.background:
            self._jobs.setdefault(handle, []).append(job)
        job.on_created(_text(handle), self.address)
        req.finish(job)

    def _on_work(self, ptype: int, handle: bytes, data: bytes) -> None:
        job = self._job_for(handle, ptype in (T.WORK_COMPLETE, T.WORK_EXCEPTION))
        if job is not None:
            job.on_work(WORK_KINDS[ptype], data)

    def _on_status(self, handle: bytes, numerator: bytes, denominator: bytes) -> None:
        job = self._job_for(handle, False)
        if job is not None:
            job.on_status(_int(numerator), _int(denominator))

    def _on_fail(self, handle: bytes) -> None:
        # gearmand sends "handle\0" for an exception turned into a failure.
        job = self._job_for(handle.rstrip(b"\0"), True)
        if job is not None:
            job.on_fail(self.fail_reasons)

    def _on_status_res(self, handle: bytes, known: bytes, running: bytes, num: bytes,
                       den: bytes) -> None:
        req = self._take("status", handle) or self._take("status")
        if req is not None:
            req.finish(JobStatus(known == b"1", running == b"1", _int(num), _int(den)))

    def _on_status_unique(self, unique: bytes, known: bytes, running: bytes, num: bytes,
                          den: bytes, waiting: bytes) -> None:
        req = self._take("status_unique", unique) or self._take("status_unique")
        if req is not None:
            req.finish(JobStatus(known == b"1", running == b"1", _int(num), _int(den),
                                 _int(waiting)))

    def _on_echo(self, data: bytes) -> None:
        req = self._take("echo")
        if req is not None:
            req.finish(data)

    def _on_option(self, name: bytes) -> None:
        req = self._take("option")
        if name == b"exceptions":
            self.exceptions = True
        elif name == b"fail_reasons":
            self.fail_reasons = True
        if req is not None:
            req.finish(_text(name))

    def _on_error(self, code: bytes, text: bytes) -> None:
        error = ProtocolError(_text(code), _text(text))
        if self._pending and self._pending[0].kind == "option" \
                and self._pending[0].key == b"fail_reasons":
            # A server without the option (gearmand) refuses it: no reasons.
            self._pending.popleft().finish(error=error)
            return
        req = self._take("submit") or self._take("option")
        if req is None:
            req = self._pending.popleft() if self._pending else None
        if req is None:
            self.failure = error
            return
        if req.job is not None:
            req.job.fail(error)
        req.finish(error=error)

    # -- loss ------------------------------------------------------------------

    def lost(self) -> tuple[list[JobState], list[JobState], list[Request]]:
        """The connection is gone: (submissions not acknowledged, foreground
        jobs created here and not finished, other requests). The session is
        emptied; the caller decides about retries."""
        unacked = [r.job for r in self._pending if r.kind == "submit" and r.job is not None]
        others = [r for r in self._pending if r.kind != "submit"]
        created = [job for jobs in self._jobs.values() for job in jobs if not job.done]
        if isinstance(self._stream, JobState) and not self._stream.done:
            # Its last packet was cut off: it left _jobs when that began.
            self._stream.on_body_start(None)
            created.append(self._stream)
        self._pending.clear()
        self._jobs.clear()
        self._out.discard()
        self._stream = None
        return unacked, list(dict.fromkeys(created)), others


def _int(b: bytes) -> int:
    try:
        return int(b)
    except ValueError:
        return 0


# What a client is sent per job, decoded by wire.quick_packets when whole.
_QUICK = frozenset({T.JOB_CREATED, T.WORK_DATA, T.WORK_WARNING, T.WORK_COMPLETE,
                    T.WORK_EXCEPTION, T.WORK_STATUS, T.WORK_FAIL})
_HANDLERS: dict[int, Callable[..., None]] = {
    T.JOB_CREATED: Session._on_created,
    T.WORK_DATA: lambda s, h, d: s._on_work(T.WORK_DATA, h, d),
    T.WORK_WARNING: lambda s, h, d: s._on_work(T.WORK_WARNING, h, d),
    T.WORK_COMPLETE: lambda s, h, d: s._on_work(T.WORK_COMPLETE, h, d),
    T.WORK_EXCEPTION: lambda s, h, d: s._on_work(T.WORK_EXCEPTION, h, d),
    T.WORK_STATUS: Session._on_status,
    T.WORK_FAIL: Session._on_fail,
    T.STATUS_RES: Session._on_status_res,
    T.STATUS_RES_UNIQUE: Session._on_status_unique,
    T.ECHO_RES: Session._on_echo,
    T.OPTION_RES: Session._on_option,
    T.ERROR: Session._on_error,
    T.NOOP: lambda s: None,
}
