"""The asyncio client: AsyncClient and its AsyncJob objects.

The same API as the blocking Client (sync.py) with coroutines, over the
same sans-IO session, failure policy (failover.py) and job state; only
the I/O differs (aioconn.py). Failure semantics: see failover.py.

Blocking file work stays on the event loop: an iterable payload is spooled
to a temporary file inside submit(), and result_to() writes its file
synchronously; use the blocking Client in a thread for multi-GiB files if
the loop must stay responsive meanwhile.
"""
import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, BinaryIO

from .aioconn import AsyncConnection, open_stream
from .cancel import cancel_job_async
from .errors import GearmanError, ServerUnavailable, Timeout
from .failover import lost_connection
from .jobs import Event, JobState, JobStatus, JobView
from .servers import ServerPool, format_address, split_address
from .session import Session
from .submit import NO_JSON, WhenType, new_job
from .sync import Data, MakeRequest, PathOrFile, Servers


async def _wait(event: asyncio.Event, cond: Callable[[], bool], timeout: float | None,
                what: str, deadline: float | None = None) -> None:
    """Wait until cond() holds; `event` is set on every change."""
    if deadline is None:
        deadline = None if timeout is None else time.monotonic() + timeout
    while not cond():
        event.clear()
        if cond():
            return
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise Timeout(f"{what}: no answer within {timeout or 0:g} s")
        try:
            await asyncio.wait_for(event.wait(), left)
        except asyncio.TimeoutError:
            pass


class AsyncJob(JobView):
    """A submitted job: `async for ev in job.events()`, `await job.result()`,
    `await job.result_to(dest)`, `await job.cancel()`."""

    _client: "AsyncClient"

    def __init__(self, client: "AsyncClient", state: JobState):
        super().__init__(client, state)
        self._changed = asyncio.Event()
        state.notify = self._changed.set

    async def events(self, timeout: float | None = None) -> AsyncIterator[Event]:
        state = self._state
        while True:
            while state.events:
                yield state.events.popleft()
            if state.done:
                return
            await self._wait(lambda: bool(state.events) or state.done, timeout)

    async def result(self, timeout: float | None = None) -> Any:
        """Like Job.result."""
        return await self._result(None, timeout)

    async def _result(self, deadline: float | None, timeout: float | None) -> Any:
        state = self._state
        state.drop_events()
        if not state.background:
            await self._wait(lambda: state.done, timeout, deadline)
        return state.outcome()

    async def result_to(self, dest: PathOrFile, timeout: float | None = None,
                        on_event: Callable[[Event], None] | None = None) -> int:
        """Like Job.result_to; file writes are made from the event loop."""
        self._state.check_waitable()
        if isinstance(dest, (str, os.PathLike)):
            with open(dest, "wb") as out:
                return await self._stream_to(out, timeout, on_event)
        return await self._stream_to(dest, timeout, on_event)

    async def cancel(self, timeout: float | None = None) -> bool:
        """Like Job.cancel."""
        state = self._state
        target = state.cancel_target()
        if target is None:
            return False
        limit = timeout if timeout is not None else self._client.connect_timeout
        state.cancelling = True
        try:
            cancelled = await cancel_job_async(*target, limit)
        finally:
            state.cancelling = False
        if cancelled:
            state.on_cancelled()
        return cancelled

    async def _stream_to(self, out: BinaryIO, timeout: float | None,
                         on_event: Callable[[Event], None] | None) -> int:
        state = self._state
        state.start_sink(out.write, on_event)
        await self._wait(lambda: state.done, timeout)
        if state.error is not None:
            raise state.error
        return state.streamed

    async def _wait(self, cond: Callable[[], bool], timeout: float | None,
                    deadline: float | None = None) -> None:
        if timeout is None:
            timeout = self._client.timeout
        try:
            await _wait(self._changed, cond, timeout,
                        f"job {self.handle} ({self.function}) on {self.server}", deadline)
        except Timeout as exc:
            if not self._client.cancel_on_timeout or self.done:
                raise
            try:
                cancelled = await self.cancel()
            except GearmanError as error:
                raise Timeout(f"{exc}; it could not be cancelled: {error}") from None
            raise Timeout(f"{exc}; " + ("cancelled on its server" if cancelled
                                        else "its server no longer had it")) from None


class AsyncClient:
    """asyncio Gearman client; the arguments are those of Client."""

    def __init__(self, servers: Servers = "127.0.0.1:4730", *,
                 connect_timeout: float = 5.0, timeout: float | None = None,
                 retries: int = 3, cancel_on_timeout: bool = False) -> None:
        self.pool = ServerPool(servers)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.retries = retries
        self.cancel_on_timeout = cancel_on_timeout
        self._conns: dict[str, AsyncConnection] = {}
        self._connecting: dict[str, asyncio.Future[AsyncConnection | None]] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self._closed = False

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- jobs ------------------------------------------------------------------

    async def submit(self, function: str, data: Data = b"", *, json: Any = NO_JSON,
                     unique: str | None = None, priority: str = "normal",
                     background: bool = False, when: WhenType = None,
                     timeout: float | None = None) -> AsyncJob:
        """Like Client.submit."""
        state = new_job(function, data, unique=unique, priority=priority,
                        background=background, when=when, json=json)
        job = AsyncJob(self, state)
        await self._place(state)
        await _wait(job._changed, lambda: state.created or state.done,
                    self.timeout if timeout is None else timeout, f"submitting {function}")
        if state.error is not None and not state.created:
            raise state.error
        return job

    async def call(self, function: str, data: Data = b"", *, json: Any = NO_JSON,
                   timeout: float | None = None, unique: str | None = None,
                   priority: str = "normal") -> Any:
        """Like Client.call: `timeout` bounds the whole call."""
        if timeout is None:
            timeout = self.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        job = await self.submit(function, data, json=json, unique=unique,
                                priority=priority, timeout=timeout)
        return await job._result(deadline, timeout)

    async def map(self, function: str, iterable: Iterable[Any], *, concurrency: int = 16,
                  return_exceptions: bool = False, json: bool = False,
                  unique: str | None = None, priority: str = "normal") -> list[Any]:
        """Results in input order, at most `concurrency` jobs in flight; the
        first failure is raised once the jobs in flight have finished.
        json=True sends each item as JSON and decodes the results."""
        if concurrency < 1:
            raise GearmanError("map concurrency must be at least 1")
        items = enumerate(iterable)
        results: dict[int, object] = {}
        failures: list[BaseException] = []

        async def lane() -> None:
            for index, item in items:
                try:
                    results[index] = await (
                        self.call(function, json=item, unique=unique, priority=priority)
                        if json else
                        self.call(function, item, unique=unique, priority=priority))
                except GearmanError as exc:
                    results[index] = exc
                    if not return_exceptions:
                        failures.append(exc)
                        return
                if failures:
                    return
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        if failures:
            raise failures[0]
        return [results[i] for i in range(len(results))]

    # -- requests --------------------------------------------------------------

    async def status(self, handle: str, server: str | None = None) -> JobStatus:
        last: JobStatus | None = None
        error: GearmanError | None = None
        for address in self._servers_for(server):
            try:
                last = await self._request(address, lambda s: s.status(handle))
            except ServerUnavailable as exc:
                error = exc
                continue
            if last.known:
                return last
        if last is None:
            raise error or ServerUnavailable(self.pool.describe_failure())
        return last

    async def status_unique(self, unique: str) -> JobStatus:
        status: JobStatus = await self._on_first(self.pool.candidates(unique),
                                    lambda s: s.status_unique(unique))
        return status

    async def echo(self, data: bytes = b"ping", server: str | None = None) -> bytes:
        if isinstance(data, str):
            data = data.encode()
        echoed: bytes = await self._on_first(self._servers_for(server), lambda s: s.echo(data))
        return echoed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for conn in list(self._conns.values()):
            conn.close()
            unacked, created, others = conn.session.lost()
            for job in unacked + created:
                job.fail(GearmanError("the client was closed"))
            for req in others:
                req.finish(error=GearmanError("the client was closed"))
        self._conns.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0)

    # -- internals -------------------------------------------------------------

    def _servers_for(self, server: str | None) -> list[str]:
        if server is None:
            return self.pool.candidates()
        address = format_address(*split_address(server))
        if address not in self.pool.states:
            raise GearmanError(f"{server} is not one of the configured servers")
        return [address]

    async def _on_first(self, addresses: list[str], make: MakeRequest) -> Any:
        error: GearmanError | None = None
        for address in addresses:
            try:
                return await self._request(address, make)
            except ServerUnavailable as exc:
                error = exc
        raise error or ServerUnavailable(self.pool.describe_failure(addresses))

    async def _request(self, address: str, make: MakeRequest, again: bool = True) -> Any:
        """One request/reply on `address`; sent once more on a fresh
        connection if an idle one turns out to be dead."""
        reused = address in self._conns
        conn = await self._connection(address)
        if conn is None:
            raise ServerUnavailable(self.pool.describe_failure([address]))
        changed = asyncio.Event()
        req = make(conn.session)
        req.notify = changed.set
        conn.kick()
        timeout = self.timeout if self.timeout is not None else self.connect_timeout
        await _wait(changed, lambda: req.done, timeout, address)
        if isinstance(req.error, ServerUnavailable) and reused and again:
            return await self._request(address, make, again=False)
        if req.error is not None:
            raise req.error
        return req.value

    async def _connection(self, address: str) -> AsyncConnection | None:
        """The open connection to `address`, or None if it cannot connect
        (the server is then marked down)."""
        if self._closed:
            raise GearmanError("the client is closed")
        conn = self._conns.get(address)
        if conn is not None:
            return conn
        pending = self._connecting.get(address)
        if pending is None:
            pending = self._connecting[address] = asyncio.ensure_future(self._open(address))
        try:
            return await asyncio.shield(pending)
        finally:
            if pending.done():
                self._connecting.pop(address, None)

    async def _open(self, address: str) -> AsyncConnection | None:
        state = self.pool.states[address]
        try:
            reader, writer = await open_stream(state.host, state.port, self.connect_timeout)
        except asyncio.TimeoutError:
            self.pool.mark_down(address, f"connect timed out after {self.connect_timeout}s")
            return None
        except OSError as exc:
            self.pool.mark_down(address, exc.strerror or str(exc))
            return None
        self.pool.mark_up(address)
        session = Session(address)
        conn = AsyncConnection(address, reader, writer, session, session.receive,
                               self._on_lost)
        self._conns[address] = conn
        return conn

    async def _place(self, state: JobState) -> None:
        tried = []
        for address in self.pool.candidates(state.unique):
            tried.append(address)
            conn = await self._connection(address)
            if conn is None:
                continue
            state.placements += 1
            conn.session.submit(state)
            conn.kick()
            return
        state.fail(ServerUnavailable(self.pool.describe_failure(tried)))

    def _on_lost(self, conn: AsyncConnection, reason: str) -> None:
        if self._conns.get(conn.address) is conn:
            del self._conns[conn.address]
        for state in lost_connection(conn.session, self.pool, self.retries, reason):
            task = asyncio.ensure_future(self._place(state))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
