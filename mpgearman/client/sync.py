"""The blocking client: Client and its Job objects.

It owns the public blocking API (submit, call, map, status, echo, and the
Job's result, events and cancel) on top
of the sans-IO session (session.py), the failure policy (failover.py) and
the selector loop (selectloop.py). No threads; waiting happens in select().

Failure semantics: see failover.py. In short, a submission is retried on
another server until it is acknowledged; a foreground job whose server is
lost is submitted again with the same unique up to `retries` times, then
its result() raises ServerUnavailable. Every job ends with one outcome.
"""
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO, Union

from .cancel import cancel_job
from .errors import GearmanError, ServerUnavailable, Timeout
from .failover import lost_connection
from .jobs import Event, JobState, JobStatus, JobView
from .selectloop import Connection, SelectLoop
from .servers import ServerPool, format_address, split_address
from .session import Request, Session
from .submit import NO_JSON, WhenType, new_job

# What submit() sends: bytes, str, a path, a binary file or an iterable of bytes.
Data = Any
Servers = Union[str, list[str]]
PathOrFile = Union[str, "os.PathLike[str]", BinaryIO]
MakeRequest = Callable[[Session], Request]


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


class Job(JobView):
    """A submitted job. handle/unique/server/done; cancel(); for a
    foreground job: events(), result(), result_to()."""

    _client: "Client"

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """WorkData / WorkWarning / WorkStatus as they arrive; ends when the
        job ends (then call result()). `timeout` bounds each wait for the
        next event and raises Timeout."""
        state = self._state
        while True:
            while state.events:
                yield state.events.popleft()
            if state.done:
                return
            self._wait(lambda: bool(state.events) or state.done, timeout)

    def result(self, timeout: float | None = None) -> Any:
        """The WORK_COMPLETE data (decoded, for a job submitted with json=).
        WORK_DATA not taken through events() is dropped. Raises JobFailed,
        JobException, ServerUnavailable, Timeout; GearmanError for a
        background job, which has no result."""
        return self._result(_deadline(timeout), timeout)

    def _result(self, deadline: float | None, timeout: float | None) -> Any:
        state = self._state
        state.drop_events()
        if not state.background:
            self._wait(lambda: state.done, timeout, deadline)
        return state.outcome()

    def result_to(self, dest: PathOrFile, timeout: float | None = None,
                  on_event: Callable[[Event], None] | None = None) -> int:
        """Stream every WORK_DATA chunk, then the WORK_COMPLETE data, into
        `dest` (a path or a binary file); returns the bytes written.
        on_event, if given, is called with each WorkStatus and WorkWarning."""
        self._state.check_waitable()
        if isinstance(dest, (str, os.PathLike)):
            with open(dest, "wb") as out:
                return self._stream_to(out, timeout, on_event)
        return self._stream_to(dest, timeout, on_event)

    def cancel(self, timeout: float | None = None) -> bool:
        """Remove the job from its server (the admin command `cancel job`):
        True if the server had it, False if it had already ended. A job
        already running may still finish on its worker, but its client is
        told it failed; result() then raises JobFailed (reason "cancelled")."""
        state = self._state
        target = state.cancel_target()
        if target is None:
            return False
        limit = timeout if timeout is not None else self._client.connect_timeout
        state.cancelling = True
        try:
            cancelled = cancel_job(*target, limit)
        finally:
            state.cancelling = False
        if cancelled:
            state.on_cancelled()
        return cancelled

    def _stream_to(self, out: BinaryIO, timeout: float | None,
                   on_event: Callable[[Event], None] | None) -> int:
        state = self._state
        state.start_sink(out.write, on_event)
        self._wait(lambda: state.done, timeout)
        if state.error is not None:
            raise state.error
        return state.streamed

    def _wait(self, cond: Callable[[], bool], timeout: float | None,
              deadline: float | None = None) -> None:
        if timeout is None:
            timeout = self._client.timeout
        if deadline is None:
            deadline = _deadline(timeout)
        if not self._client._run_until(cond, deadline):
            raise Timeout(timed_out(self, timeout, self._client.cancel_on_timeout))


def timed_out(job: Job, timeout: float | None, cancel: bool) -> str:
    """The Timeout message; cancels the job first when asked to."""
    message = f"job {job.handle} ({job.function}) on {job.server}: " \
              f"no answer within {timeout or 0:g} s"
    if not cancel or job.done:
        return message
    try:
        cancelled = job.cancel()
    except GearmanError as exc:
        return f"{message}; it could not be cancelled: {exc}"
    return message + ("; cancelled on its server" if cancelled
                      else "; its server no longer had it")


class Client:
    """Blocking Gearman client. See the module docstring and mpgearman's
    README for the API; every method may raise GearmanError subclasses.

    servers: "host:port", "host" (port 4730), "[v6]:port", comma-separated
    or a list. connect_timeout bounds each connect; timeout (None: no limit)
    is the default bound of every wait for an answer; retries bounds how
    often a foreground job is resubmitted after losing its server;
    cancel_on_timeout=True cancels a job on its server when a wait for it
    raises Timeout (else the job stays queued and runs later).
    One Client belongs to one thread at a time (it holds no lock).
    """

    def __init__(self, servers: Servers = "127.0.0.1:4730", *,
                 connect_timeout: float = 5.0, timeout: float | None = None,
                 retries: int = 3, cancel_on_timeout: bool = False) -> None:
        self.pool = ServerPool(servers)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.retries = retries
        self.cancel_on_timeout = cancel_on_timeout
        self._loop = SelectLoop(self.pool, connect_timeout, self._on_lost)
        self._closed = False

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- jobs ------------------------------------------------------------------

    def submit(self, function: str, data: Data = b"", *, json: Any = NO_JSON,
               unique: str | None = None, priority: str = "normal",
               background: bool = False, when: WhenType = None,
               timeout: float | None = None) -> Job:
        """Submit and wait for JOB_CREATED (at most `timeout` seconds, by
        default the client's); returns the Job. json=obj sends obj as JSON
        (orjson) instead of `data`, and the job's result() decodes it."""
        state = new_job(function, data, unique=unique, priority=priority,
                        background=background, when=when, json=json)
        self._place(state)
        self._wait_created([state], self.timeout if timeout is None else timeout)
        return Job(self, state)

    def call(self, function: str, data: Data = b"", *, json: Any = NO_JSON,
             timeout: float | None = None, unique: str | None = None,
             priority: str = "normal") -> Any:
        """Submit a foreground job and return its result (decoded with
        json=). `timeout` bounds the whole call (default: the client's)."""
        if timeout is None:
            timeout = self.timeout
        deadline = _deadline(timeout)
        job = self.submit(function, data, json=json, unique=unique, priority=priority,
                          timeout=timeout)
        return job._result(deadline, timeout)

    def map(self, function: str, iterable: Iterable[Any], *, concurrency: int = 16,
            return_exceptions: bool = False, json: bool = False,
            unique: str | None = None, priority: str = "normal") -> list[Any]:
        """Run `function` over every item, at most `concurrency` jobs in
        flight, all pipelined; results in input order. The first failure is
        raised once the jobs in flight have finished, unless
        return_exceptions=True puts the exception objects in the list.
        json=True sends each item as JSON and decodes the results."""
        if concurrency < 1:
            raise GearmanError("map concurrency must be at least 1")
        submit_kwargs: dict[str, Any] = dict(unique=unique, priority=priority)
        items = iter(iterable)
        results: list[JobState] = []
        running: list[JobState] = []
        first_error: GearmanError | None = None
        while True:
            while first_error is None and len(running) < concurrency:
                item = next(items, _END)
                if item is _END:
                    break
                state = (new_job(function, json=item, **submit_kwargs) if json
                         else new_job(function, item, **submit_kwargs))
                state.drop_events()
                results.append(state)
                running.append(state)
                self._place(state)
            if not running:
                break
            if not self._run_until(lambda: any(s.done for s in running),
                                   _deadline(self.timeout)):
                raise Timeout(f"map over {function}: no result within {self.timeout:g} s")
            for state in [s for s in running if s.done]:
                running.remove(state)
                if state.error is not None and not return_exceptions and first_error is None:
                    first_error = state.error
        if first_error is not None:
            raise first_error
        return [s.error if s.error is not None else s.outcome() for s in results]

    # -- requests --------------------------------------------------------------

    def status(self, handle: str, server: str | None = None) -> JobStatus:
        """GET_STATUS on `server`, or on each server until one knows it."""
        last: JobStatus | None = None
        error: GearmanError | None = None
        for address in self._servers_for(server):
            try:
                last = self._request(address, lambda s: s.status(handle))
            except ServerUnavailable as exc:
                error = exc
                continue
            if last.known:
                return last
        if last is None:
            raise error or ServerUnavailable(self.pool.describe_failure())
        return last

    def status_unique(self, unique: str) -> JobStatus:
        """GET_STATUS_UNIQUE on the server that unique maps to."""
        status: JobStatus = self._on_first(self.pool.candidates(unique),
                              lambda s: s.status_unique(unique))
        return status

    def echo(self, data: bytes = b"ping", server: str | None = None) -> bytes:
        if isinstance(data, str):
            data = data.encode()
        echoed: bytes = self._on_first(self._servers_for(server), lambda s: s.echo(data))
        return echoed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for conn in list(self._loop.conns.values()):
            unacked, created, others = conn.session.lost()
            for job in unacked + created:
                job.fail(GearmanError("the client was closed"))
        self._loop.close()

    # -- internals -------------------------------------------------------------

    def _servers_for(self, server: str | None) -> list[str]:
        if server is None:
            return self.pool.candidates()
        address = format_address(*split_address(server))
        if address not in self.pool.states:
            raise GearmanError(f"{server} is not one of the configured servers")
        return [address]

    def _on_first(self, addresses: list[str], make: MakeRequest) -> Any:
        error: GearmanError | None = None
        for address in addresses:
            try:
                return self._request(address, make)
            except ServerUnavailable as exc:
                error = exc
        raise error or ServerUnavailable(self.pool.describe_failure(addresses))

    def _request(self, address: str, make: MakeRequest, again: bool = True) -> Any:
        """One request/reply on `address`. A connection that had been idle
        may have died unnoticed: then the request is sent once more on a
        fresh one."""
        self._check_open()
        reused = address in self._loop.conns
        try:
            conn = self._loop.connection(address)
        except OSError:
            raise ServerUnavailable(self.pool.describe_failure([address])) from None
        req = make(conn.session)
        timeout = self.timeout if self.timeout is not None else self.connect_timeout
        if not self._run_until(lambda: req.done, _deadline(timeout)):
            raise Timeout(f"{address} did not answer within {timeout:g} s")
        if isinstance(req.error, ServerUnavailable) and reused and again:
            return self._request(address, make, again=False)
        if req.error is not None:
            raise req.error
        return req.value

    def _place(self, state: JobState, exclude: Iterable[str] = ()) -> None:
        """Queue the job's submission on the best server that connects;
        fails the job with ServerUnavailable when none does."""
        self._check_open()
        tried = []
        for address in self.pool.candidates(state.unique, exclude):
            tried.append(address)
            try:
                conn = self._loop.connection(address)
            except OSError:
                continue
            state.placements += 1
            conn.session.submit(state)
            return
        state.fail(ServerUnavailable(self.pool.describe_failure(tried)))

    def _wait_created(self, states: list[JobState], timeout: float | None) -> None:
        ok = self._run_until(lambda: all(s.created or s.done for s in states),
                             _deadline(timeout))
        for state in states:
            if state.error is not None and not state.created:
                raise state.error
        if not ok:
            raise Timeout(f"no JOB_CREATED within {timeout or 0:g} s")

    def _on_lost(self, conn: Connection, reason: str) -> None:
        for state in lost_connection(conn.session, self.pool, self.retries, reason):
            self._place(state)

    def _run_until(self, cond: Callable[[], object], deadline: float | None) -> bool:
        if cond():
            return True
        return self._loop.run_until(cond, deadline)

    def _check_open(self) -> None:
        if self._closed:
            raise GearmanError("the client is closed")


_END = object()
