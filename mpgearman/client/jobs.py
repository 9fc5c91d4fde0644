"""The state of one submitted job, shared by the blocking and asyncio clients.

It owns what the client knows about a job: where and under which handle it
was created, the WORK_* events not yet consumed, its outcome, and how many
times it has been resubmitted. The session feeds it packets; the client
wrappers read it. It must not do I/O except through `sink`, a callable the
caller installs to stream result bytes (result_to) instead of keeping them.

Outcomes: exactly one of `result` (bytes, or the byte count written to the
sink) or `error` (a GearmanError), set once; `done` tells which is final.
"""
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import orjson

from .errors import GearmanError, JobException, JobFailed
from .payload import Payload

PRIORITIES = ("high", "normal", "low")
DATA, WARNING, COMPLETE, EXCEPTION = "data", "warning", "complete", "exception"
# The text a worker's WorkFailed("reason") sends as WORK_EXCEPTION.
WORK_FAILED_PREFIX = "WorkFailed: "
MAX_REASON = 4096
BARE_FAIL = ("the worker failed it, or the server gave up on it after its retries "
             "(its workers were lost or timed out)")
# What a bare WORK_FAIL means from a server that accepted OPTION_REQ
# fail_reasons: it would have said so first had it given up after retries.
WORKER_FAIL = "the worker failed it"
# The WORK_WARNING such a server sends just before the WORK_FAIL of a job
# whose retries ran out (worker lost or CAN_DO_TIMEOUT expired).
RETRIES_PREFIX = b"retries exhausted after "


@dataclass(frozen=True, slots=True)
class WorkData:
    data: bytes


@dataclass(frozen=True, slots=True)
class WorkWarning:
    data: bytes


@dataclass(frozen=True, slots=True)
class WorkStatus:
    numerator: int
    denominator: int


@dataclass(frozen=True, slots=True)
class JobStatus:
    known: bool
    running: bool
    numerator: int
    denominator: int
    waiting: int | None = None


Event = Union[WorkData, WorkWarning, WorkStatus]


class JobState:
    """One job from submission to its single outcome."""

    def __init__(self, function: str, payload: Payload, unique: str | None,
                 priority: str, background: bool, when: int | None,
                 json: bool = False):
        self.function = function
        self.json = json           # the result is decoded from JSON
        self.payload = payload
        self.unique = unique
        self.priority = priority
        self.background = background or when is not None
        self.when = when
        self.handle: str | None = None
        self.server: str | None = None
        self.created = False
        self.done = False
        self.result: bytes | int | None = None
        self.error: GearmanError | None = None
        self.events: deque[Event] = deque()
        self.resubmissions = 0     # after JOB_CREATED and a lost server
        self.placements = 0        # SUBMIT_* packets sent for it
        self.keep_data = True      # False once only the result is wanted
        self.sink: Callable[[bytes], Any] | None = None   # while streaming to a file
        self.streamed = 0          # bytes given to the sink
        # While streaming: called with each WorkStatus and WorkWarning.
        self.on_event: Callable[[Event], None] | None = None
        self.notify: Callable[[], None] | None = None     # on every change
        self._kind: str | None = None
        self._parts: list[bytes] = []
        self._kept = 0             # bytes of a WORK_WARNING kept for its reason
        self.fail_reason: str | None = None    # from a "WorkFailed: " warning
        self.fail_cause = "worker"             # or "retries": JobFailed.cause
        self.cancelling = False    # `cancel job` sent: its WORK_FAIL may come first

    # -- fed by the session ------------------------------------------------

    def on_created(self, handle: str, server: str) -> None:
        self.handle, self.server, self.created = handle, server, True
        if self.background:
            self._finish(result=b"")
        self._changed()

    def on_status(self, numerator: int, denominator: int) -> None:
        if self.sink is not None and self.on_event is not None:
            self.on_event(WorkStatus(numerator, denominator))
        elif self.keep_data:
            self.events.append(WorkStatus(numerator, denominator))
            self._changed()

    def on_body_start(self, kind: str | None) -> None:
        self._kind, self._parts, self._kept = kind, [], 0

    def on_body_chunk(self, data: bytes) -> None:
        if self.sink is not None and self._kind in (DATA, COMPLETE):
            self.sink(data)
            self.streamed += len(data)
        elif self._kind in (COMPLETE, EXCEPTION) or self.keep_data or \
                (self._kind == WARNING and self.on_event is not None):
            self._parts.append(data)
        elif self._kind == WARNING and self._kept < MAX_REASON:
            # Only a failure's reason is wanted: a bounded prefix will do.
            self._parts.append(data[:MAX_REASON - self._kept])
            self._kept += len(self._parts[-1])

    def on_body_end(self) -> None:
        kind, body = self._kind, b"".join(self._parts)
        self._kind, self._parts = None, []
        if kind == COMPLETE:
            self._finish(result=self.streamed if self.sink is not None else body)
        elif kind == EXCEPTION:
            self._finish(error=self._exception(body))
        elif kind == WARNING and body.startswith(WORK_FAILED_PREFIX.encode()):
            reason = body[len(WORK_FAILED_PREFIX):].decode("utf-8", "replace")
            self.fail_reason = " ".join(reason.split())[:MAX_REASON] or None
            self.fail_cause = "worker"
        elif kind == WARNING and body.startswith(RETRIES_PREFIX):
            self.fail_reason = body.decode("utf-8", "replace")[:MAX_REASON]
            self.fail_cause = "retries"
        elif self.sink is not None and kind == WARNING and self.on_event is not None:
            self.on_event(WorkWarning(body))
        elif self.sink is None and self.keep_data:
            self.events.append(WorkData(body) if kind == DATA else WorkWarning(body))
        self._changed()

    def on_work(self, kind: str, data: bytes) -> None:
        self.on_body_start(kind)
        self.on_body_chunk(data)
        self.on_body_end()

    def on_fail(self, told: bool = False) -> None:
        """WORK_FAIL; `told`: the server accepted fail_reasons, so a bare
        fail is the worker's own."""
        if self.fail_reason:
            error = self.failed(self.fail_reason, self.fail_cause)
        elif self.cancelling:
            error = self.failed("cancelled", "cancelled")
        elif told:
            error = self.failed(WORKER_FAIL, "worker")
        else:
            error = self.failed(BARE_FAIL, "unknown")
        self._finish(error=error)
        self._changed()

    def failed(self, reason: str, cause: str) -> JobFailed:
        return JobFailed(f"job {self.handle} ({self.function}) failed: {reason}", reason, cause)

    def _exception(self, body: bytes) -> GearmanError:
        text = body.decode("utf-8", "replace").replace("\n", " ").strip()
        return JobException(text or "the worker raised an exception")

    def outcome(self) -> Any:
        """What result() returns once done: the WORK_COMPLETE bytes, decoded
        from JSON for a job submitted with json=; raises the job's error, and
        GearmanError for a background job, which has no result."""
        if self.error is not None:
            raise self.error
        if self.background:
            raise GearmanError(f"job {self.handle} ({self.function}) is a background "
                               f"job: it has no result (ask status() for its state)")
        data = self.result if isinstance(self.result, bytes) else b""
        if not self.json:
            return data
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise GearmanError(f"job {self.handle} ({self.function}) returned "
                               f"{len(data)} bytes that are not JSON: {exc}") from None

    def cancel_target(self) -> tuple[str, str] | None:
        """(server, handle) to send `cancel job` to; None when the job has
        ended. Raises if it never got a handle."""
        if self.done and not self.background:
            return None
        if self.handle is None or self.server is None:
            raise GearmanError(f"job ({self.function}) was never created: nothing to cancel")
        return self.server, self.handle

    def on_cancelled(self) -> None:
        """The server accepted `cancel job`: a job still waiting ends now
        (the server's WORK_FAIL that follows finds it done)."""
        self._finish(error=self.failed("cancelled", "cancelled"))
        self._changed()

    def fail(self, error: GearmanError) -> None:
        """An outcome decided by the client: a server ERROR, or the job was
        lost and may not be resubmitted."""
        self._finish(error=error)
        self._changed()

    # -- used by the client wrappers -----------------------------------------

    def can_resubmit(self, retries: int) -> bool:
        """After losing the server: retry unless the retries are spent or
        result bytes already went to the caller's file (a second run would
        write them twice)."""
        return not self.done and self.streamed == 0 and self.resubmissions < retries

    def start_sink(self, sink: Callable[[bytes], Any],
                   on_event: Callable[[Event], None] | None = None) -> None:
        """Stream from now on; WORK_DATA already queued goes first."""
        self.sink, self.on_event = sink, on_event
        while self.events:
            event = self.events.popleft()
            if isinstance(event, WorkData):
                sink(event.data)
                self.streamed += len(event.data)
            elif on_event is not None:
                on_event(event)
        if self.done and self.error is None and isinstance(self.result, bytes):
            sink(self.result)
            self.streamed += len(self.result)
            self.result = self.streamed

    def check_waitable(self) -> None:
        if self.background:
            raise GearmanError(f"job {self.handle} ({self.function}) is a background "
                               f"job: it has no result to wait for")

    def drop_events(self) -> None:
        self.keep_data = False
        self.events.clear()

    def _finish(self, result: bytes | int | None = None,
                error: GearmanError | None = None) -> None:
        if self.done:
            return
        self.done = True
        self.result, self.error = result, error
        self.payload.close()

    def _changed(self) -> None:
        if self.notify is not None:
            self.notify()


class JobView:
    """What every job object shows of its JobState: the parts of the API
    the blocking Job and the asyncio AsyncJob share."""

    def __init__(self, client: Any, state: JobState):
        self._client = client
        self._state = state

    @property
    def handle(self) -> str | None:
        """The job handle (None until JOB_CREATED)."""
        return self._state.handle

    @property
    def unique(self) -> str | None:
        return self._state.unique

    @property
    def server(self) -> str | None:
        """The "host:port" of the server that created the job."""
        return self._state.server

    @property
    def function(self) -> str:
        return self._state.function

    @property
    def background(self) -> bool:
        return self._state.background

    @property
    def done(self) -> bool:
        return self._state.done

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.function} handle={self.handle} server={self.server}>"
