"""The job object a worker function receives, and turning what the function
did (returned or raised) into the packets that end the job.

It owns WorkerJob (function, handle, unique, data, open(), send_data,
send_warning, send_status) and the outcome rules: a return value is
WORK_COMPLETE (bytes, str, None, or a binary file / path streamed from
disk), WorkFailed is WORK_FAIL (after a WORK_WARNING "WorkFailed: reason"
when it has a reason: WORK_FAIL carries no text), any other exception is logged with its traceback and is
WORK_EXCEPTION with "ExcType: message" (mpgearman turns it into WORK_FAIL for clients that
did not ask for exceptions; gearmand 1.1.20 sends those a malformed
WORK_FAIL, on which libgearman clients wait until their timeout). It must not do socket I/O: every packet goes
through `post(callback)`, which runs callback(session) on the I/O side,
thread-safely.

A run that outlives its function's timeout (CAN_DO_TIMEOUT) has lost the
job: the server has requeued it for another worker (or failed it after its
retries), and would answer its result with ERROR JOB_NOT_FOUND. Such a
result is dropped with a warning (`overrun`); a function can watch
`job.expired` / `job.time_left()` to stop in time.
"""
import io
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import orjson

from mpgearman.protocol.packets import PacketType as T

from .errors import WorkFailed
from .jobs import WORK_FAILED_PREFIX
from .payload import BytesPayload, Payload, make_payload

log = logging.getLogger("mpgearman.client")
MIN_TIMEOUT = 1.0       # servers raise a shorter CAN_DO_TIMEOUT to 1 s
Outcome = tuple[str, Any]


class _PreadReader(io.RawIOBase):
    """A read-only view of a spool file with its own position."""

    def __init__(self, fd: int, size: int):
        self._fd, self._size, self._pos = fd, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def fileno(self) -> int:
        return self._fd

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._size - self._pos)
        if n <= 0:
            return 0
        data = os.pread(self._fd, n, self._pos)
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)


class WorkerJob:
    """What a worker function gets. send_* may be called from any thread."""

    def __init__(self, assignment: Any, post: Callable[[Callable[[Any], None]], None],
                 timeout: float | None = None):
        self.started = time.monotonic()
        # The server takes the job back this long after handing it over.
        self.timeout = None if timeout is None else max(timeout, MIN_TIMEOUT)
        self.stopped = False    # the worker cancelled the run at its timeout
        self.function = assignment.function
        self.handle = assignment.handle
        self.unique = assignment.unique
        self.size = assignment.size
        self.raw_handle = assignment.raw_handle
        self._assignment = assignment
        self._post = post
        self._data = None if assignment.file is not None else assignment.data

    @property
    def data(self) -> bytes:
        """The whole payload (read from the spool file on first use)."""
        if self._data is None:
            with self.open() as f:
                self._data = f.read()
        return self._data

    @property
    def json(self) -> Any:
        """The payload decoded from JSON (orjson)."""
        return orjson.loads(self.data)

    @property
    def expired(self) -> bool:
        """The function's timeout has passed: the server no longer counts on
        this run, and its result will be dropped."""
        return self.timeout is not None and time.monotonic() - self.started > self.timeout

    def time_left(self) -> float | None:
        """Seconds until the timeout (None without one; 0 once expired)."""
        if self.timeout is None:
            return None
        return max(0.0, self.timeout - (time.monotonic() - self.started))

    def open(self) -> io.BufferedIOBase:
        """A binary file object over the payload, from its start."""
        spool = self._assignment.file
        if spool is None:
            return io.BytesIO(self._data or b"")
        return io.BufferedReader(_PreadReader(spool.fileno(), self.size), 1 << 20)

    def send_data(self, data: bytes | str) -> None:
        self._send(T.WORK_DATA, _bytes(data))

    def send_warning(self, data: bytes | str) -> None:
        self._send(T.WORK_WARNING, _bytes(data))

    def send_status(self, numerator: int, denominator: int) -> None:
        handle = self._assignment.raw_handle
        self._post(lambda s: s.send_status(handle, numerator, denominator))

    def _send(self, ptype: int, data: bytes) -> None:
        handle = self._assignment.raw_handle
        self._post(lambda s: s.send(ptype, handle, data))

    def release(self) -> None:
        if self._assignment.file is not None:
            self._assignment.file.close()


def _bytes(value: object) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"expected bytes or str, not {type(value).__name__}")


def outcome_of_return(value: Any) -> Outcome:
    """A worker function's return value -> ("complete", Payload)."""
    if value is None:
        return "complete", BytesPayload(b"")
    if isinstance(value, str):
        return "complete", BytesPayload(value.encode("utf-8"))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "complete", BytesPayload(bytes(value))
    if isinstance(value, os.PathLike) or hasattr(value, "read"):
        payload = make_payload(value)
        if not isinstance(value, os.PathLike):
            value.close()       # handed over; the payload has its own copy or fd
        return "complete", payload
    return "exception", (f"TypeError: worker function returned "
                         f"{type(value).__name__}, expected bytes, str, None or a file")


def outcome_of_exception(exc: BaseException, job: "WorkerJob") -> Outcome:
    if isinstance(exc, WorkFailed):
        return "fail", " ".join(str(exc).split()) or None
    log.error("job %s (%s) raised %s", job.handle, job.function, type(exc).__name__,
              exc_info=exc)
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ").strip()
    return "exception", text


def overrun(job: "WorkerJob", outcome: Outcome) -> bool:
    """True, after a warning and releasing the result, if the run outlived
    the function's timeout: its outcome must not be sent."""
    if not (job.expired or job.stopped):
        return False
    what = "was stopped at" if job.stopped else \
        f"ran {time.monotonic() - job.started:.1f} s, beyond"
    log.warning("job %s (%s) %s its %g s timeout: the server has taken it back "
                "(requeued for another run, or failed after its retries); its "
                "result is dropped", job.handle, job.function, what, job.timeout)
    if outcome[0] == "complete":
        outcome[1].close()
    return True


def deliver(session: Any, handle: bytes, outcome: Outcome) -> None:
    """Queue the packet that ends the job on `session`."""
    kind, value = outcome
    if kind == "complete":
        session.send_payload(T.WORK_COMPLETE, handle, value)
    elif kind == "fail":
        if value:
            # Every client gets a WORK_WARNING, whatever its options.
            session.send(T.WORK_WARNING, handle,
                         (WORK_FAILED_PREFIX + value).encode("utf-8", "replace"))
        session.send_fail(handle)
    else:
        session.send(T.WORK_EXCEPTION, handle, value.encode("utf-8", "replace"))
