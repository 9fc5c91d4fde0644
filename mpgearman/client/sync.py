"""The blocking client: Client and its Job objects.

It owns the public blocking API (submit, call, map, status, echo) on top
of the sans-IO session (session.py), the failure policy (failover.py) and
the selector loop (selectloop.py). No threads; waiting happens in select().

Failure semantics: see failover.py. In short, a submission is retried on
another server until it is acknowledged; a foreground job whose server is
lost is submitted again with the same unique up to `retries` times, then
its result() raises ServerUnavailable. Every job ends with one outcome.
"""
import os
import time

from .errors import GearmanError, ServerUnavailable, Timeout
from .failover import lost_connection
from .jobs import JobState, JobStatus, JobView
from .selectloop import SelectLoop
from .servers import ServerPool, format_address, split_address
from .submit import new_job


def _deadline(timeout):
    return None if timeout is None else time.monotonic() + timeout


class Job(JobView):
    """A submitted job. handle/unique/server/done; for a foreground job:
    events(), result(), result_to()."""

    def events(self, timeout=None):
        """WorkData / WorkWarning / WorkStatus as they arrive; ends when the
        job ends (then call result()). `timeout` bounds each wait for the
        next event and raises Timeout."""
        state = self._state
        while True:
            while state.events:
                yield state.events.popleft()
            if state.done:
                return
            self._wait(lambda: state.events or state.done, timeout)

    def result(self, timeout=None) -> bytes:
        """The WORK_COMPLETE data. WORK_DATA not taken through events() is
        dropped. Raises JobFailed, JobException, ServerUnavailable, Timeout."""
        state = self._state
        state.drop_events()
        self._wait(lambda: state.done, timeout)
        if state.error is not None:
            raise state.error
        return state.result if isinstance(state.result, bytes) else b""

    def result_to(self, dest, timeout=None) -> int:
        """Stream every WORK_DATA chunk, then the WORK_COMPLETE data, into
        `dest` (a path or a binary file); returns the bytes written."""
        if isinstance(dest, (str, os.PathLike)):
            with open(dest, "wb") as out:
                return self._stream_to(out, timeout)
        return self._stream_to(dest, timeout)

    def _stream_to(self, out, timeout) -> int:
        state = self._state
        state.start_sink(out.write)
        self._wait(lambda: state.done, timeout)
        if state.error is not None:
            raise state.error
        return state.streamed

    def _wait(self, cond, timeout):
        if timeout is None:
            timeout = self._client.timeout
        if not self._client._run_until(cond, _deadline(timeout)):
            raise Timeout(f"job {self.handle} ({self.function}) on {self.server}: "
                          f"no answer within {timeout:g} s")


class Client:
    """Blocking Gearman client. See the module docstring and mpgearman's
    README for the API; every method may raise GearmanError subclasses.

    servers: "host:port", "host" (port 4730), "[v6]:port", comma-separated
    or a list. connect_timeout bounds each connect; timeout (None: no limit)
    is the default bound of every wait for an answer; retries bounds how
    often a foreground job is resubmitted after losing its server.
    One Client belongs to one thread at a time (it holds no lock).
    """

    def __init__(self, servers="127.0.0.1:4730", *, connect_timeout=5.0,
                 timeout=None, retries=3):
        self.pool = ServerPool(servers)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.retries = retries
        self._loop = SelectLoop(self.pool, connect_timeout, self._on_lost)
        self._closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- jobs ------------------------------------------------------------------

    def submit(self, function, data=b"", *, unique=None, priority="normal",
               background=False, when=None) -> Job:
        """Submit and wait for JOB_CREATED; returns the Job."""
        state = new_job(function, data, unique=unique, priority=priority,
                        background=background, when=when)
        self._place(state)
        self._wait_created([state])
        return Job(self, state)

    def call(self, function, data=b"", **submit_kwargs) -> bytes:
        return self.submit(function, data, **submit_kwargs).result()

    def map(self, function, iterable, *, concurrency=16, return_exceptions=False,
            **submit_kwargs) -> list:
        """Run `function` over every item, at most `concurrency` jobs in
        flight, all pipelined; results in input order. The first failure is
        raised once the jobs in flight have finished, unless
        return_exceptions=True puts the exception objects in the list."""
        if concurrency < 1:
            raise GearmanError("map concurrency must be at least 1")
        items = iter(iterable)
        results, running, first_error = [], [], None
        while True:
            while first_error is None and len(running) < concurrency:
                item = next(items, _END)
                if item is _END:
                    break
                state = new_job(function, item, **submit_kwargs)
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
        return [s.error if s.error is not None else s.result for s in results]

    # -- requests --------------------------------------------------------------

    def status(self, handle: str, server: str | None = None) -> JobStatus:
        """GET_STATUS on `server`, or on each server until one knows it."""
        last, error = None, None
        for address in self._servers_for(server):
            try:
                last = self._request(address, lambda s: s.status(handle))
            except ServerUnavailable as exc:
                error = exc
                continue
            if last.known:
                return last
        if last is None:
            raise error
        return last

    def status_unique(self, unique: str) -> JobStatus:
        """GET_STATUS_UNIQUE on the server that unique maps to."""
        return self._on_first(self.pool.candidates(unique),
                              lambda s: s.status_unique(unique))

    def echo(self, data: bytes = b"ping", server: str | None = None) -> bytes:
        if isinstance(data, str):
            data = data.encode()
        return self._on_first(self._servers_for(server), lambda s: s.echo(data))

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

    def _servers_for(self, server):
        if server is None:
            return self.pool.candidates()
        address = format_address(*split_address(server))
        if address not in self.pool.states:
            raise GearmanError(f"{server} is not one of the configured servers")
        return [address]

    def _on_first(self, addresses, make):
        error = None
        for address in addresses:
            try:
                return self._request(address, make)
            except ServerUnavailable as exc:
                error = exc
        raise error or ServerUnavailable(self.pool.describe_failure(addresses))

    def _request(self, address, make, again=True):
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

    def _place(self, state: JobState, exclude=()) -> None:
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

    def _wait_created(self, states) -> None:
        ok = self._run_until(lambda: all(s.created or s.done for s in states),
                             _deadline(self.timeout))
        for state in states:
            if state.error is not None and not state.created:
                raise state.error
        if not ok:
            raise Timeout(f"no JOB_CREATED within {self.timeout:g} s")

    def _on_lost(self, conn, reason: str) -> None:
        for state in lost_connection(conn.session, self.pool, self.retries, reason):
            self._place(state)

    def _run_until(self, cond, deadline) -> bool:
        if cond():
            return True
        return self._loop.run_until(cond, deadline)

    def _check_open(self):
        if self._closed:
            raise GearmanError("the client is closed")


_END = object()
