"""The blocking worker: Worker runs registered functions for jobs from every
configured server, `concurrency` at once in threads (with concurrency 1, in
the thread that called run()).

It owns the worker's sockets and its single I/O thread (the caller of
run()): non-blocking connects, reconnects with a backoff (0.1 s doubling
to 10 s, servers.py) so a lost server never stops the worker, the grab
budget (jobs in hand + grabs in flight <= concurrency), and handing jobs
to threads. It sleeps in select() (PRE_SLEEP; woken by NOOP, by a thread
finishing a job, or by stop()). The protocol lives in workersession.py and
the job object and outcome rules in workerjob.py; this module must not
parse or build packets itself.
"""
from __future__ import annotations  # no annotation objects built per job

import errno
import logging
import selectors
import signal
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import IO, Any
from concurrent.futures import ThreadPoolExecutor

from . import sockio
from .errors import GearmanError
from .registry import FunctionRegistry, Servers
from .workerjob import (Outcome, WorkerJob, deliver, outcome_of_exception,
                        outcome_of_return, overrun)
from .workersession import Assignment, WorkerSession

log = logging.getLogger("mpgearman.client")


class _Conn:
    def __init__(self, address: str) -> None:
        self.address = address
        self.sock: Any = None              # socket.socket once connecting
        self.session: Any = None           # WorkerSession once connected
        self.pending: memoryview | None = None
        self.connecting_until = 0.0
        self.events = 0                    # what the selector watches for


class Worker(FunctionRegistry):
    """Blocking Gearman worker. See the module docstring. As a context
    manager, leaving the block stops it and releases its sockets."""

    def __init__(self, servers: Servers = "127.0.0.1:4730", *, concurrency: int = 1,
                 client_id: str | None = None, spool_threshold: int = 64 << 20,
                 connect_timeout: float = 5.0, spool_dir: str | None = None) -> None:
        super().__init__(servers, concurrency=concurrency, client_id=client_id,
                         spool_threshold=spool_threshold, connect_timeout=connect_timeout,
                         spool_dir=spool_dir)
        self._outbox: deque[Callable[[], None]] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._serving = False
        self._closed = False

    # -- control ------------------------------------------------------------

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """stop(); the worker's sockets are released once run() has
        returned (at once if it is not running). It cannot run again."""
        self._closed = True
        self.stop()
        if not self._serving:
            self._release()

    def _release(self) -> None:
        self._wake_r.close()
        self._wake_w.close()

    def stop(self) -> None:
        """Stop grabbing, finish the jobs in hand, then run() returns.
        Safe from any thread and from a signal handler."""
        self._stopping = True
        self._wake()

    def run(self) -> None:
        """Serve until stop(), SIGTERM or SIGINT (the latter two only when
        called in the main thread). After a stop() that came first, it
        returns at once."""
        if not self.functions:
            raise GearmanError("no function registered")
        if self._closed:
            raise GearmanError("the worker is closed")
        self._serving = True
        self._conns = {a: _Conn(a) for a in self.pool.addresses}
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._executor = ThreadPoolExecutor(self.concurrency, "mpgearman-job")
        restore = self._install_signals()
        try:
            for conn in self._conns.values():
                self._connect(conn)
            self._loop()
        finally:
            restore()
            self._executor.shutdown(wait=True)
            for conn in self._conns.values():
                self._close(conn)
            self._selector.close()
            self._serving = False
            if self._closed:
                self._release()
            self._stopping = False          # a later run() serves again

    def _install_signals(self) -> Callable[[], object]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.signal(sig, lambda *_: self.stop())
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        return lambda: [signal.signal(s, h) for s, h in previous.items()]

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass           # already awake, or the pipe is full: either way

    def _post(self, callback: Callable[[], None]) -> None:
        self._outbox.append(callback)
        self._wake()

    # -- the loop ------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            while self._outbox:
                self._outbox.popleft()()
            if not self._stopping:
                self._grab()
            self._flush()
            # Checked after the flush: the last write may be what it waited for.
            if self._stopping and self._drained():
                return
            for key, mask in self._selector.select(self._next_timer()):
                conn = key.data
                if conn is None:
                    self._drain_wake()
                elif conn.session is None:
                    self._finish_connect(conn)
                else:
                    if mask & selectors.EVENT_READ:
                        self._read(conn)
                    if mask & selectors.EVENT_WRITE and conn.sock is not None:
                        sockio.send_pending(conn, self._lost)
            self._timers()

    def _drained(self) -> bool:
        return self._running == 0 and all(
            c.session is None or (c.pending is None and not c.session.has_output
                                  and c.session.state != "grabbing")
            for c in self._conns.values())

    def _grab(self) -> None:
        live = [c for c in self._conns.values() if c.session is not None]
        slots = self.concurrency - self._running - sum(
            c.session.state == "grabbing" for c in live)
        for i in range(len(live)):
            if slots <= 0:
                return
            conn = live[(self._rr + i) % len(live)]
            if conn.session.ready:
                conn.session.grab()
                slots -= 1
        self._rr += 1

    def _next_timer(self) -> float | None:
        now = time.monotonic()
        times = []
        for conn in self._conns.values():
            if conn.sock is None:
                times.append(self.pool.states[conn.address].down_until)
            elif conn.session is None:
                times.append(conn.connecting_until)
        return max(0.0, min(times) - now) if times else None

    def _timers(self) -> None:
        now = time.monotonic()
        for conn in self._conns.values():
            if conn.sock is None and not self._stopping and \
                    self.pool.states[conn.address].down_until <= now:
                self._connect(conn)
            elif conn.session is None and conn.sock is not None and \
                    conn.connecting_until <= now:
                self._lost(conn, f"connect timed out after {self.connect_timeout}s")

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    # -- connections ---------------------------------------------------------

    def _connect(self, conn: _Conn) -> None:
        state = self.pool.states[conn.address]
        try:
            family, kind, proto, _, sockaddr = socket.getaddrinfo(
                state.host, state.port, type=socket.SOCK_STREAM)[0]
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            self.pool.mark_down(conn.address, exc.strerror or str(exc))
            return
        sock.setblocking(False)
        err = sock.connect_ex(sockaddr)
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self.pool.mark_down(conn.address, errno.errorcode.get(err, str(err)))
            return
        conn.sock = sock
        conn.connecting_until = time.monotonic() + self.connect_timeout
        conn.events = selectors.EVENT_WRITE
        self._selector.register(sock, conn.events, conn)

    def _finish_connect(self, conn: _Conn) -> None:
        err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._lost(conn, f"connect failed: {errno.errorcode.get(err, err)}")
            return
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pool.mark_up(conn.address)
        conn.session = WorkerSession(conn.address, self.timeouts(), self.client_id,
                                     self.spool_threshold, self._spool)
        conn.events = selectors.EVENT_READ
        self._selector.modify(conn.sock, conn.events, conn)

    def _spool(self) -> IO[bytes]:
        return tempfile.TemporaryFile(dir=self.spool_dir)

    def _close(self, conn: _Conn) -> None:
        if conn.sock is not None:
            self._selector.unregister(conn.sock)
            conn.sock.close()
        if conn.session is not None:
            conn.session.close()
        conn.sock = conn.session = conn.pending = None

    def _lost(self, conn: _Conn, reason: str) -> None:
        """The server went away: forget the connection (jobs running for it
        finish, but their results go nowhere: the server requeues them) and
        try again after the backoff."""
        connected = conn.session is not None
        self._close(conn)
        self.pool.mark_down(conn.address, reason)
        # A lost connection is news; each failed reconnect is not.
        log.log(logging.WARNING if connected else logging.DEBUG,
                "job server %s: %s; connecting again in %.1fs", conn.address,
                reason, self.pool.states[conn.address].backoff)

    def _flush(self) -> None:
        for conn in self._conns.values():
            if conn.session is None:
                continue
            sockio.send_pending(conn, self._lost)
            if conn.sock is None:
                continue
            want = selectors.EVENT_READ
            if conn.pending is not None:
                want |= selectors.EVENT_WRITE
            if conn.events != want:
                conn.events = want
                self._selector.modify(conn.sock, want, conn)

    def _read(self, conn: _Conn) -> None:
        assigned = sockio.receive(conn, self._lost)
        if assigned is None:
            return
        while conn.session.errors:
            log.warning("job server %s: ERROR %s", conn.address,
                        conn.session.errors.popleft())
        for assignment in assigned:
            self._start(conn.session, assignment)

    # -- jobs ----------------------------------------------------------------

    def _start(self, session: WorkerSession, assignment: Assignment) -> None:
        io_thread = threading.get_ident()

        def post(callback: Callable[[WorkerSession], None]) -> None:
            if threading.get_ident() != io_thread:
                self._post(lambda: callback(session) if self._alive(session) else None)
            elif self._alive(session):          # a function run inline
                callback(session)
                self._flush()
        job = WorkerJob(assignment, post, self.timeout_of(assignment.function))
        self._running += 1
        if self.concurrency == 1:
            # One job at a time: run it in this thread, which spares two
            # thread switches and a wake-up per job. Its data, status and
            # warnings are sent as it calls send_*; the sockets are read
            # again once it returns. It runs from the outbox, outside the
            # handling of select()'s events.
            self._outbox.append(lambda: self._finished(session, job, self._run(job)))
        else:
            self._executor.submit(self._execute, job, session)

    def _alive(self, session: WorkerSession) -> bool:
        return any(c.session is session for c in self._conns.values())

    def _execute(self, job: WorkerJob, session: WorkerSession) -> None:
        """In a job thread: run the function, then hand the outcome to the
        I/O thread."""
        outcome = self._run(job)
        self._post(lambda: self._finished(session, job, outcome))

    def _run(self, job: WorkerJob) -> Outcome:
        fn = self.lookup(job.function)
        try:
            if fn is None:
                raise GearmanError(f"no function {job.function!r} on this worker")
            outcome = outcome_of_return(fn(job))
        except Exception as exc:        # noqa: BLE001 - reported to the client
            outcome = outcome_of_exception(exc, job)
        finally:
            job.release()
        return outcome

    def _finished(self, session: WorkerSession, job: WorkerJob, outcome: Outcome) -> None:
        self._running -= 1
        dropped = overrun(job, outcome)
        if self._alive(session):
            if not dropped:
                deliver(session, job.raw_handle, outcome)
            session.ended(job.raw_handle)
        elif outcome[0] == "complete" and not dropped:
            outcome[1].close()
