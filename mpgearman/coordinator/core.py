"""The coordinator's core: gearmand 1.1.20 job semantics, sans-IO.

Owns: the life of every job (submit, coalesce, queue, assign, requeue,
abandon, cancel, free), connections as seen by the job server, and the
clock-driven events (epoch jobs becoming due, CAN_DO_TIMEOUT expiry).
Must not: touch sockets, processes, shared memory, files or the real time
(the clock is injected). Input is parsed packets and admin lines; output is
Send/SendSpooled/Close actions appended to `out`, which the caller drains.

Spool refs: every SpoolRef handed in with a packet belongs to the core; a
job's ref is released when the job is freed; each SendSpooled gives one ref
away (spool.share() makes the extra ones).

Wiring contract: connect() before anything else on a connection;
disconnect() once its socket is gone (a no-op after the core itself asked
for Close); call tick() after every batch of input and again at the latest
after the delay it returns.

Where this differs from gearmand on purpose (PROTOCOL.md 6/7): per-job
CAN_DO_TIMEOUT deadlines cancelled on completion and not on PRE_SLEEP;
epoch jobs wait outside the queues, wake sleepers when due and never block
other jobs; a foreground client leaving never cancels a job that a
background submission asked for; CANT_DO/RESET_ABILITIES leave running jobs
running; 64-byte uniques are stored whole; a cancelled job is no longer a
coalescing target and its clients are detached after their WORK_FAIL; a
new submission attached to an abandoned job revives it.
"""
import logging
import os
import time
from bisect import bisect_left

from .. import __version__
from ..durable import format as journal_format
from ..protocol import errors
from ..protocol.encoder import encode, encode_head, reply
from ..protocol.packets import T
from .actions import Close, Send, SendSpooled
from .admin import run_admin
from .dispatch import TABLE, not_expected
from . import journaling
from .jobtable import Job, JobTable
from .queues import BOUNDS, FunctionTable
from .spoolref import SpoolOps, SpoolRef, release_args, release_data
from .workers import NOOP, Conn, Deadlines, Registry, timeout_seconds

__all__ = ["Core", "Send", "SendSpooled", "Close", "SpoolRef", "SpoolOps"]

log = logging.getLogger(__name__)


def _shown(name: bytes) -> str:
    """A handle or function name for a log line (odd bytes escaped)."""
    return repr(name)[2:-1]

NO_JOB = encode(T.NO_JOB)
# Plain ints for the per-job paths: on Python 3.11 reading an IntEnum member
# costs more than packing the header it goes into.
JOB_CREATED, JOB_ASSIGN, JOB_ASSIGN_UNIQ, JOB_ASSIGN_ALL = map(int, (
    T.JOB_CREATED, T.JOB_ASSIGN, T.JOB_ASSIGN_UNIQ, T.JOB_ASSIGN_ALL))
GRAB_JOB, GRAB_JOB_ALL = int(T.GRAB_JOB), int(T.GRAB_JOB_ALL)


class Core:
    def __init__(self, config, spool: SpoolOps, clock=time.time, pid: int | None = None,
                 version: bytes | None = None, board=None):
        self.config = config
        self.spool = spool
        self.clock = clock
        # Resolved now, not at import: the coordinator is forked after import.
        self.pid = os.getpid() if pid is None else pid
        self.version = version if version is not None else __version__.encode()
        self.out: list = []
        self.conns: dict[int, Conn] = {}
        self.jobs = JobTable(config.handle_prefix)
        self.functions = FunctionTable()
        # Functions whose published figures are stale (coordinator/figures.py);
        # one attribute away, as it is touched on every job's path.
        self.dirty = self.functions.dirty
        self.registry = Registry(config.worker_wakeup, self.dirty)
        self.deadlines = Deadlines()
        self.job_retries = config.job_retries
        self.round_robin = config.round_robin
        # The job status board in shared memory (ipc/board.py): each job's
        # status is mirrored there for the acceptors. None in unit tests.
        self.board = board
        self.started = clock()
        # Extra (key, value) pairs for the `stats` admin command that only
        # the process around the core knows (processes, connections).
        self.extra_stats = lambda: []
        # Bytes of the spooled payloads of live jobs (--max-spool-bytes).
        self.spool_bytes = 0
        # The journal of background jobs (durable/): records of this turn,
        # written by the loop before the answers leave; None = --durability
        # none. While it cannot be written, background submissions are
        # refused. `acks`: (index in out of its JOB_CREATED, job) per job
        # journaled this turn, for journal_failed().
        self.journal = None if config.durability == "none" else bytearray()
        self.journal_ok = True
        self.acks: list = []
        self.journal_live = 0     # bytes of the SUBMIT records of live journaled jobs
        self.journal_jobs = 0     # ... and their number

    # -- entry points ---------------------------------------------------------

    def connect(self, conn: int, peer: str, fd: int) -> None:
        if isinstance(peer, str):
            peer = peer.encode()
        self.conns[conn] = Conn(conn, peer, fd, self.config.exceptions)

    def packet(self, conn: int, ptype: int, args: tuple) -> None:
        c = self.conns.get(conn)
        if c is None:       # already closed: only the spool ref needs care
            release_args(self.spool, args)
            return
        TABLE.get(ptype, not_expected)(self, c, args)

    def admin(self, conn: int, line: bytes, crlf: bool) -> None:
        c = self.conns.get(conn)
        if c is not None:
            run_admin(self, c, line, crlf)

    def disconnect(self, conn: int) -> None:
        c = self.conns.pop(conn, None)
        if c is None:
            return
        c.alive = False
        c.sleeping = False
        for job in c.attached:
            clients = job.clients
            clients[:] = [x for x in clients if x is not c]
            if not clients and not job.keep:
                job.ignore = True     # freed when a worker reaches it, as gearmand
        c.attached = {}
        for job in list(c.running):
            self.requeue(job, "its worker went away")
        self.registry.reset(c)

    def tick(self) -> float | None:
        now = self.clock()
        if self.functions.epochs:
            self._promote(now)
        for job in self.deadlines.expired(now):
            self.requeue(job, "it timed out on its worker")
        due = self.functions.next_due()
        timer = self.deadlines.next_due()
        if timer is not None and (due is None or timer < due):
            due = timer
        return None if due is None else max(0.0, due - now)

    def journal_end(self, job: Job) -> None:
        job.logged = False
        self.journal += journal_format.end(job.no)
        self.journal_jobs -= 1
        self.journal_live -= journal_format.submit_size(job.handle, job.fn.name, job.unique,
                                                        job.data)
        if type(job.data) is SpoolRef:
            self.spool.unkeep(job.data)

    def restore(self, subs) -> None:
        """Background jobs read back from the journal (durable/replay.py)."""
        journaling.restore(self, subs)

    def journal_failed(self) -> None:
        """This turn's journal could not be written (see journaling.failed)."""
        journaling.failed(self)

    # -- small helpers used by dispatch and admin -------------------------------

    def send(self, c: Conn, data: bytes) -> None:
        self.out.append(Send(c.id, data))

    def error(self, c: Conn, err: tuple) -> None:
        self.out.append(Send(c.id, encode(T.ERROR, *err)))

    def refuse(self, c: Conn, err: tuple, data) -> None:
        """ERROR reply to a packet whose data the core will not keep."""
        release_data(self.spool, data)
        self.error(c, err)

    def close(self, c: Conn) -> None:
        """Drop a connection the way gearmand does on bad input."""
        self.out.append(Close(c.id))
        self.disconnect(c.id)

    def counts(self) -> tuple:
        """(connections, queued jobs, workers) for the supervisor's heartbeat:
        what connections hold, never a walk over the functions. Queued jobs
        (abandoned and future epoch ones included) are the jobs not running."""
        conns = self.conns.values()
        running = sum(len(c.running) for c in conns)
        workers = sum(1 for c in conns if c.funcs)
        return len(self.conns), len(self.jobs) - running, workers

    # -- submission -------------------------------------------------------------

    def submit(self, c: Conn, fname: bytes, unique: bytes, data, prio: int, bg: bool,
               when: int = 0, reducer: bytes | None = None) -> None:
        fn = self.functions.by_name.get(fname) or self.functions.get(fname)
        job = JobTable.find_twin(fn, unique, data) if unique else None
        if job is not None:
            if bg and not job.logged and self.journal is not None and not self.journal_ok:
                self.refuse(c, errors.JOURNAL_ERROR, data)
                return
            # Coalesced: the new payload is dropped, the job keeps its nature.
            release_data(self.spool, data)
            if bg:
                job.keep = True
                if not job.logged and self.journal is not None \
                        and not self._journal_submit(c, job, 0):
                    return
            else:
                job.clients.append(c)
                c.attached[job] = None
            job.ignore = False    # someone wants an abandoned job again
        else:
            if fn.full(prio):
                release_data(self.spool, data)
                self.error(c, errors.QUEUE_FULL)
                return
            if bg and self.journal is not None and not self.journal_ok:
                self.refuse(c, errors.JOURNAL_ERROR, data)
                return
            if type(data) is SpoolRef and not self._spool_room(data):
                self.refuse(c, errors.SPOOL_FULL, data)
                return
            job = Job(self.jobs.new_handle(), fn, unique, data, prio, bg, reducer)
            job.no = self.jobs.count
            if self.board is not None:
                job.held = self.board.claim(job.no)
            self.jobs.add(job)
            fn.total += 1
            fn.submitted += 1
            self.dirty[fn] = None
            if not bg:
                job.clients.append(c)
                c.attached[job] = None
            now = job.since = self.clock()
            if when and when > now:
                self.functions.defer(job, when)   # no NOOP until it is due
            else:
                self.functions.push(job)
                if fn.sleepers or self.registry.broad:
                    self.registry.wake(fn, self.out)
            if bg and self.journal is not None and not self._journal_submit(c, job, when):
                return
        self.out.append(Send(c.id, reply(JOB_CREATED, job.handle)))

    def _journal_submit(self, c: Conn, job: Job, when: int) -> bool:
        """Journal a background job; False (ERROR sent, job dropped) when its
        spooled payload cannot be kept for a restart."""
        if type(job.data) is SpoolRef:
            try:
                self.spool.keep(job.data)
            except OSError as exc:
                log.error("job %s: its payload cannot be kept in the data directory (%s); "
                          "refused", _shown(job.handle), exc.strerror or exc)
                journaling.drop(self, job)
                self.error(c, errors.JOURNAL_ERROR)
                return False
        job.logged = True
        rec = journal_format.submit(job.no, job.handle, job.fn.name, job.unique, job.prio,
                                    when, job.data)
        self.journal += rec
        self.journal_live += len(rec)
        self.journal_jobs += 1
        self.acks.append((len(self.out), job))
        return True

    def _spool_room(self, ref: SpoolRef) -> bool:
        """Count a new job's spooled payload against --max-spool-bytes;
        False (nothing counted) when it does not fit."""
        limit = self.config.max_spool_bytes
        if limit and self.spool_bytes + ref.size > limit:
            return False
        self.spool_bytes += ref.size
        return True

    # -- workers: sleep and grab ------------------------------------------------

    def pre_sleep(self, c: Conn) -> None:
        self._promote_due()
        pick, peek, ready = self.registry.pick, self.functions.peek, self.functions.ready
        while True:
            fn = pick(c, ready)
            if fn is None:
                self.registry.sleep(c)
                return
            if peek(fn, self._free) is not None:
                self.out.append(Send(c.id, NOOP))
                return

    def grab(self, c: Conn, kind: int) -> None:
        c.sleeping = False
        c.noop_sent = False
        if self.functions.epochs:
            self._promote_due()
        pick, take, ready = self.registry.pick, self.functions.take, self.functions.ready
        while True:
            fn = pick(c, ready)
            if fn is None:
                self.out.append(Send(c.id, NO_JOB))
                return
            job = take(fn, self._free)
            if job is None:
                continue
            action = self._assignment(c.id, job, kind)
            if action is not None:
                break
            self.payload_lost(job)       # and the worker gets the next job
        job.worker = c
        if job.logged:
            self.journal += journal_format.run(job.no)
        if job.held:
            self.board.show(job.no, True, job.num, job.den)
        now = self.clock()
        wait, job.since = now - job.since, now
        hist = fn.waits     # made with its queues (FunctionTable.push)
        if wait < 0:        # the clock was set back
            wait = 0.0
        hist[bisect_left(BOUNDS, wait)] += 1
        hist[-1] += wait
        fn.running += 1
        self.dirty[fn] = None
        c.running[job] = None
        regs = c.funcs[fn]
        if type(regs) is not int and regs[-1][1] > 0:     # a CAN_DO_TIMEOUT serves
            self.deadlines.arm(job, now + timeout_seconds(regs[-1][1]))
        if self.round_robin:
            self.registry.rotate(c, fn)
        self.out.append(action)

    def _assignment(self, conn: int, job: Job, kind: int):
        name = job.fn.name
        if kind == GRAB_JOB:
            ptype, args = JOB_ASSIGN, (job.handle, name)
        elif kind == GRAB_JOB_ALL and job.reducer:
            ptype, args = JOB_ASSIGN_ALL, (job.handle, name, job.unique, job.reducer)
        else:
            ptype, args = JOB_ASSIGN_UNIQ, (job.handle, name, job.unique)
        data = job.data
        if type(data) is bytes:
            return Send(conn, reply(ptype, b"\0".join((*args, data))))
        ref = self.share(job, data)
        return None if ref is None else SendSpooled(conn, encode_head(ptype, args, data.size), ref)

    def share(self, job: Job, ref: SpoolRef) -> SpoolRef | None:
        """Another name for a spooled payload or result of `job`; None when
        the spool cannot make one (the file is gone, no room for the name):
        logged, and the caller fails what needed it."""
        try:
            return self.spool.share(ref)
        except OSError as exc:
            log.error("job %s: spool file %s is unusable (%s)",
                      job.handle.decode("ascii", "replace"), ref.name,
                      exc.strerror or exc)
            return None

    def payload_lost(self, job: Job) -> None:
        """A queued job whose payload cannot be read any more fails on its
        own: WORK_FAIL to its clients, and it is freed."""
        job.fn.failed += 1
        self.fail_clients(job)
        self._free(job)

    def _promote_due(self) -> None:
        epochs = self.functions.epochs
        if epochs:
            now = self.clock()
            if epochs[0][0] <= now:
                self._promote(now)

    def _promote(self, now: float) -> None:
        for job in self.functions.due(now):
            self.registry.wake(job.fn, self.out)

    # -- the end of a job ---------------------------------------------------------

    def owned(self, c: Conn, handle: bytes) -> Job | None:
        """The job `handle` if `c` is running it (WORK_* ownership check)."""
        job = self.jobs.jobs.get(handle)
        if job is not None and job.worker is c:
            return job
        return None

    def _free(self, job: Job) -> None:
        self.jobs.remove(job)
        if job.logged:
            self.journal_end(job)
        if self.board is not None:
            self.board.release(job.no, job.held)
        fn = job.fn
        fn.total -= 1
        if not fn.total and not fn.workers:
            fn.release()        # its last job: nothing left for it to hold
        self.dirty[fn] = None
        worker = job.worker
        if worker is not None:
            run = self.clock() - job.since
            hist = fn.runs
            if run < 0:
                run = 0.0
            hist[bisect_left(BOUNDS, run)] += 1
            hist[-1] += run
            fn.running -= 1
            del worker.running[job]
            job.worker = None
        if job.timer:
            self.deadlines.cancel(job)
        for c in job.clients:
            c.attached.pop(job, None)
        data = job.data
        if type(data) is not bytes:
            self.spool_bytes -= data.size
            self.spool.release(data)
        job.data = None

    free = _free

    def fail_clients(self, job: Job, reason: bytes | None = None) -> None:
        """WORK_FAIL with the bare handle to every attached client; a client
        with the `fail_reasons` option first gets WORK_WARNING with `reason`."""
        if job.clients:
            packet = encode(T.WORK_FAIL, job.handle)
            warning = reason and encode(T.WORK_WARNING, job.handle, reason)
            out = self.out
            for c in reversed(job.clients):
                if warning and c.fail_reasons:
                    out.append(Send(c.id, warning))
                out.append(Send(c.id, packet))

    def requeue(self, job: Job, why: str) -> None:
        """The job's worker is gone or too slow (`why`): back to the tail of
        its queue, or failed once it has had job_retries attempts (0 = no
        limit). A timeout and a failure are logged at INFO, a lost worker's
        requeue at DEBUG."""
        job.retries += 1
        limit = self.job_retries
        fn = job.fn
        timed_out = why.startswith("it timed out")
        if limit and job.retries >= limit:
            log.info("job %s of function %s failed: %s after %d attempt%s (job-retries %d)",
                     _shown(job.handle), _shown(fn.name), why.removeprefix("it "),
                     job.retries, "s" if job.retries != 1 else "", limit)
            fn.failed += 1
            self.fail_clients(job, b"retries exhausted after %d attempts: %s" % (
                job.retries, b"CAN_DO_TIMEOUT expired" if timed_out else b"worker lost"))
            self._free(job)
            return
        log.log(logging.INFO if timed_out else logging.DEBUG,
                "job %s of function %s requeued: %s (after attempt %d%s)", _shown(job.handle),
                _shown(fn.name), why, job.retries, f" of {limit}" if limit else "")
        fn.requeued += 1
        self.dirty[fn] = None
        del job.worker.running[job]
        job.worker = None
        fn.running -= 1
        if job.timer:
            self.deadlines.cancel(job)
        job.num = job.den = 0
        if job.held:
            self.board.show(job.no, False, 0, 0)
        job.since = self.clock()
        self.functions.push(job)
        self.registry.wake(fn, self.out)

    def drop_function(self, fn) -> bool:
        """Admin `drop function` after its checks: free the ignored jobs left
        in its queues and forget it; False (nothing done) while a live job
        waits in a queue or for its epoch."""
        if not self.functions.purge(fn, self._free):
            return False
        self.functions.drop(fn)
        return True

    def cancel(self, handle: bytes) -> bool:
        """Admin `cancel job`: clients get WORK_FAIL and are detached; the
        job is freed when a worker reaches it (a running one may finish)."""
        job = self.jobs.jobs.get(handle)
        if job is None:
            return False
        self.fail_clients(job)
        for c in job.clients:
            c.attached.pop(job, None)
        job.clients = []
        job.ignore = True
        job.bg = job.keep = False
        if job.logged:
            self.journal_end(job)
        if job.indexed:
            self.jobs.unindex(job)
        return True
