"""The asyncio worker: AsyncWorker runs registered functions (coroutines, or
plain functions in threads) for jobs from every configured server,
`concurrency` at once as tasks.

It owns one connect/reconnect task per server (backoff 0.1 s doubling to
10 s, servers.py), the grab budget (jobs in hand + grabs in flight <=
concurrency) and the job tasks. The protocol is workersession.py's and the
job object and outcome rules workerjob.py's; this module must not build
packets itself.
"""
from __future__ import annotations  # no annotation objects built per job

import asyncio
import inspect
import logging
import signal
import tempfile
import threading
from collections.abc import Callable
from typing import IO
from concurrent.futures import ThreadPoolExecutor

from .aioconn import AsyncConnection, open_stream
from .errors import GearmanError
from .registry import FunctionRegistry, Servers
from .workerjob import (WorkerJob, deliver, outcome_of_exception, outcome_of_return,
                        overrun)
from .workersession import Assignment, WorkerSession

log = logging.getLogger("mpgearman.client")
STOP_SLACK = 0.05   # a TimeoutError this close to the job's timeout is ours


class AsyncWorker(FunctionRegistry):
    """asyncio Gearman worker; the arguments are those of Worker. As a
    context manager (`async with` or `with`), leaving the block stops it."""

    def __init__(self, servers: Servers = "127.0.0.1:4730", *, concurrency: int = 1,
                 client_id: str | None = None, spool_threshold: int = 64 << 20,
                 connect_timeout: float = 5.0, spool_dir: str | None = None) -> None:
        super().__init__(servers, concurrency=concurrency, client_id=client_id,
                         spool_threshold=spool_threshold, connect_timeout=connect_timeout,
                         spool_dir=spool_dir)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conns: dict[str, AsyncConnection] = {}

    async def __aenter__(self) -> "AsyncWorker":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def __enter__(self) -> "AsyncWorker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop grabbing, finish the jobs in hand, then run() returns. Safe
        from any thread."""
        loop = self._loop
        if loop is None:
            self._stopping = True
        elif threading.get_ident() == self._loop_thread:
            self._begin_stop()
        else:
            loop.call_soon_threadsafe(self._begin_stop)

    async def run(self) -> None:
        """Serve until stop(), SIGTERM or SIGINT (signals only when the loop
        runs in the main thread)."""
        if not self.functions:
            raise GearmanError("no function registered")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._changed = asyncio.Event()
        signals = self._install_signals()
        self._executor = ThreadPoolExecutor(self.concurrency, "mpgearman-job")
        servers = [asyncio.ensure_future(self._serve(a)) for a in self.pool.addresses]
        try:
            while not (self._stopping and self._drained()):
                self._changed.clear()
                self._grab()
                await self._changed.wait()
        finally:
            for task in servers:
                task.cancel()
            for conn in list(self._conns.values()):
                conn.close()
            self._conns.clear()
            for sig in signals:
                self._loop.remove_signal_handler(sig)
            self._executor.shutdown(wait=False)
            self._loop = None
            self._stopping = False          # a later run() serves again

    def _install_signals(self) -> list[signal.Signals]:
        if threading.current_thread() is not threading.main_thread():
            return []
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._active_loop().add_signal_handler(sig, self._begin_stop)
        return [signal.SIGTERM, signal.SIGINT]

    def _begin_stop(self) -> None:
        self._stopping = True
        self._changed.set()

    def _drained(self) -> bool:
        return self._running == 0 and all(
            c.flushed and c.session.state != "grabbing" for c in self._conns.values())

    def _grab(self) -> None:
        if self._stopping:
            return
        live = list(self._conns.values())
        slots = self.concurrency - self._running - sum(
            c.session.state == "grabbing" for c in live)
        for i in range(len(live)):
            if slots <= 0:
                break
            conn = live[(self._rr + i) % len(live)]
            if conn.session.ready:
                conn.session.grab()
                conn.kick()
                slots -= 1
        self._rr += 1

    # -- connections ---------------------------------------------------------

    async def _serve(self, address: str) -> None:
        """Keep one connection to `address` open while not stopping."""
        state = self.pool.states[address]
        while not self._stopping:
            try:
                reader, writer = await open_stream(state.host, state.port,
                                                   self.connect_timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                self.pool.mark_down(address, getattr(exc, "strerror", None)
                                    or str(exc) or "connect timed out")
                log.debug("job server %s: %s; connecting again in %.1fs", address,
                          state.last_error, state.backoff)
                await asyncio.sleep(state.backoff)
                continue
            self.pool.mark_up(address)
            lost = asyncio.Event()
            conn = self._open(address, reader, writer, lost)
            await lost.wait()
            if self._conns.get(address) is conn:
                del self._conns[address]
            self._changed.set()
            await asyncio.sleep(state.backoff)

    def _active_loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "only while run() runs"
        return self._loop

    def _open(self, address: str, reader: asyncio.StreamReader,
              writer: asyncio.StreamWriter, lost: asyncio.Event) -> AsyncConnection:
        session = WorkerSession(address, self.timeouts(), self.client_id,
                                self.spool_threshold, self._spool)

        def receive(data: bytes) -> None:
            for assignment in session.receive(data):
                self._start(conn, assignment)
            while session.errors:
                log.warning("job server %s: ERROR %s", address, session.errors.popleft())
            conn.kick()                 # PRE_SLEEP after NO_JOB
            self._changed.set()

        def on_lost(_conn: AsyncConnection, reason: str) -> None:
            session.close()
            self.pool.mark_down(address, reason)
            log.warning("job server %s: %s; connecting again in %.1fs", address, reason,
                        self.pool.states[address].backoff)
            lost.set()
        conn = AsyncConnection(address, reader, writer, session, receive, on_lost)
        self._conns[address] = conn
        self._changed.set()
        return conn

    def _spool(self) -> IO[bytes]:
        return tempfile.TemporaryFile(dir=self.spool_dir)

    # -- jobs ----------------------------------------------------------------

    def _start(self, conn: AsyncConnection, assignment: Assignment) -> None:
        loop = self._active_loop()

        def post(callback: Callable[[WorkerSession], None]) -> None:
            if threading.get_ident() == self._loop_thread:
                self._to_session(conn, callback)
            else:
                loop.call_soon_threadsafe(self._to_session, conn, callback)
        job = WorkerJob(assignment, post, self.timeout_of(assignment.function))
        self._running += 1
        asyncio.ensure_future(self._execute(conn, job))

    def _to_session(self, conn: AsyncConnection,
                    callback: Callable[[WorkerSession], None]) -> None:
        if not conn.closed:
            callback(conn.session)
            conn.kick()

    async def _execute(self, conn: AsyncConnection, job: WorkerJob) -> None:
        fn = self.lookup(job.function)
        try:
            if fn is None:
                raise GearmanError(f"no function {job.function!r} on this worker")
            if inspect.iscoroutinefunction(fn):
                # A coroutine is stopped at its timeout (threads cannot be).
                value = await asyncio.wait_for(fn(job), job.time_left())
            else:
                value = await self._active_loop().run_in_executor(self._executor, fn, job)
            outcome = outcome_of_return(value)
        except asyncio.TimeoutError as exc:
            left = job.time_left()
            job.stopped = left is not None and left < STOP_SLACK
            outcome = ("fail", None) if job.stopped else outcome_of_exception(exc, job)
        except Exception as exc:        # noqa: BLE001 - reported to the client
            outcome = outcome_of_exception(exc, job)
        finally:
            job.release()
            self._running -= 1
        dropped = overrun(job, outcome)
        if conn.closed:
            if outcome[0] == "complete" and not dropped:
                outcome[1].close()
        else:
            if not dropped:
                deliver(conn.session, job.raw_handle, outcome)
            conn.session.ended(job.raw_handle)
            conn.kick()
        self._changed.set()
