"""Connections as workers: registrations, which function a grab serves,
sleeping/NOOP state, and CAN_DO_TIMEOUT deadlines.

Owns: the Conn record (any connection may be client and worker at once),
each connection's registrations and their order, the per-function sleeper
lists, and the heap of per-job deadlines.
Must not: create, queue or free jobs, or touch spool refs (the Core does).

Registration order. gearmand keeps a list per connection, newest CAN_DO
first, and round-robin moves the registration that supplied a job to the
end. Here every registration carries a key: CAN_DO takes a key above all
others, a round-robin move one below all others, so "newest first" is
"highest key first" and a move costs O(1). Conn.funcs maps Function ->
[(key, timeout_ms), ...] in ascending key order (duplicates kept, the last
entry is the one that serves), or, for the common single CAN_DO without a
timeout, to its key alone (an int: a worker's registrations cost a key
each, not a list and a tuple).

Which function a grab serves: the first one in that order with queued jobs.
A worker with few functions walks its (cached) order; one with many walks
the set of functions that have anything queued instead, whichever is
smaller, so neither many functions nor many busy functions cost a full scan.

Waking: a Function's `sleepers` lists connections that slept (PRE_SLEEP with
nothing to do) while registered for it. Entries are not removed when the
connection wakes through another function or grabs; they are checked when
popped. A connection that unregisters or leaves is taken off the lists of
those functions (and a function left with no jobs and no workers lets go of
its list), so a closed connection is held by none. A connection is added
at most once per function, so the lists stay bounded by the registrations.
A connection with more than BROAD functions would make every PRE_SLEEP cost
that many list insertions; it goes on one `broad` list instead, which every
wake-up checks (such workers are few).
"""
import heapq
from collections import Counter, OrderedDict

from ..protocol.encoder import encode
from ..protocol.packets import T
from .actions import Send

NOOP = encode(T.NOOP)
MIN_TIMEOUT_MS = 1000     # gearmand raises shorter CAN_DO_TIMEOUTs to 1 s
WALK_MAX = 4              # up to this many functions, just walk them in order
BROAD = 32                # a sleeper with more functions goes on the broad list


class Conn:
    __slots__ = (
        "id", "peer", "fd", "client_id", "exceptions", "fail_reasons", "alive",
        "funcs", "order",
        "sleeping", "noop_sent",
        "running",    # Job -> None: jobs this connection is running
        "attached",   # Job -> None: jobs it waits on as a foreground client
    )

    def __init__(self, conn_id: int, peer: bytes, fd: int, exceptions: bool):
        self.id = conn_id
        self.peer = peer
        self.fd = fd
        self.client_id = b"-"
        self.exceptions = exceptions
        self.fail_reasons = False     # OPTION_REQ fail_reasons: WORK_WARNING says why
        self.alive = True
        self.funcs = {}
        self.order = None          # cached list of Functions, newest first
        self.sleeping = self.noop_sent = False
        self.running = {}
        self.attached = {}

    def __repr__(self):
        return f"<Conn {self.id}>"

    def registrations(self) -> list:
        """Function names, newest registration first (for `workers`)."""
        regs = [(key, fn.name) for fn, keys in self.funcs.items() for key, _ in pairs(keys)]
        regs.sort(reverse=True)
        return [name for _, name in regs]


class Registry:
    """Registration keys and the pick/sleep/wake operations."""
    __slots__ = ("_top", "_bottom", "wakeup", "broad", "dirty")

    def __init__(self, wakeup: int, dirty: dict | None = None):
        # Functions whose worker counts changed, for the published figures.
        self.dirty = {} if dirty is None else dirty
        self._top = 0
        self._bottom = 0
        self.wakeup = wakeup      # NOOPs per queued job, 0 = every sleeper
        # Sleepers with more than BROAD functions: checked on every wake-up
        # instead of being listed under each of their functions.
        self.broad = OrderedDict()

    def add(self, c: Conn, fn, timeout_ms: int) -> None:
        self._top += 1
        key = self._top
        regs = c.funcs.get(fn)
        if regs is None:
            c.funcs[fn] = [(key, timeout_ms)] if timeout_ms else key
        elif type(regs) is int:
            c.funcs[fn] = [(regs, 0), (key, timeout_ms)]
        else:
            regs.append((key, timeout_ms))
        fn.workers += 1
        self.dirty[fn] = None
        c.order = None
        if c.sleeping and not c.noop_sent:
            # gearmand's wake walk would find this sleeper on the new function too
            fn.add_sleeper(c)

    def remove(self, c: Conn, fn) -> None:
        regs = c.funcs.pop(fn, None)
        if regs is not None:
            _unregister(fn, c, 1 if type(regs) is int else len(regs))
            self.dirty[fn] = None
            c.order = None

    def reset(self, c: Conn) -> None:
        """Every registration of c goes (RESET_ABILITIES, or c is gone)."""
        dirty = self.dirty
        for fn, regs in c.funcs.items():
            _unregister(fn, c, 1 if type(regs) is int else len(regs))
            dirty[fn] = None
        c.funcs = {}
        c.order = None
        self.broad.pop(c, None)

    def rotate(self, c: Conn, fn) -> None:
        """Round-robin: the registration that served goes to the end."""
        regs = c.funcs[fn]
        self._bottom -= 1
        if type(regs) is int:
            c.funcs[fn] = self._bottom
        else:
            regs.insert(0, (self._bottom, regs.pop()[1]))
        c.order = None

    @staticmethod
    def pick(c: Conn, ready: set):
        """The first of c's functions, in registration order, that has
        queued jobs; None if there is none."""
        if len(c.funcs) <= WALK_MAX or len(c.funcs) <= len(ready):
            return Registry.walk(c)
        return Registry.scan_ready(c, ready)

    @staticmethod
    def walk(c: Conn):
        order = c.order
        if order is None:
            funcs = c.funcs
            order = c.order = sorted(funcs, key=lambda f: key_of(funcs[f]), reverse=True)
        for fn in order:
            if fn.queued:
                return fn
        return None

    @staticmethod
    def scan_ready(c: Conn, ready: set):
        funcs = c.funcs
        best, best_key = None, None
        for fn in ready:
            regs = funcs.get(fn)
            if regs is not None:
                key = regs if type(regs) is int else regs[-1][0]
                if best_key is None or key > best_key:
                    best, best_key = fn, key
        return best

    def sleep(self, c: Conn) -> None:
        c.sleeping = True
        if c.noop_sent:
            return      # gearmand: one NOOP per sleep cycle, reset only by a grab
        if len(c.funcs) > BROAD:
            _touch(self.broad, c)
            return
        for fn in c.funcs:
            fn.add_sleeper(c)

    def wake(self, fn, out: list) -> None:
        """A job was queued for fn: NOOP the sleepers registered for it that
        have not had one: all of them, or at most `wakeup`, taking turns."""
        sleepers = fn.sleepers
        limit = self.wakeup
        sent = 0
        while sleepers:
            c = sleepers.popitem(last=False)[0]
            if c.sleeping and not c.noop_sent and fn in c.funcs:
                c.noop_sent = True
                out.append(Send(c.id, NOOP))
                sent += 1
                if sent == limit:
                    return
        if self.broad:
            self._wake_broad(fn, out, limit, sent)

    def _wake_broad(self, fn, out: list, limit: int, sent: int) -> None:
        broad = self.broad
        for c in list(broad):
            if not c.sleeping or c.noop_sent:
                del broad[c]
            elif fn in c.funcs:
                del broad[c]
                c.noop_sent = True
                out.append(Send(c.id, NOOP))
                sent += 1
                if sent == limit:
                    return


def pairs(regs) -> list:
    """[(key, timeout_ms), ...] of one Conn.funcs value."""
    return [(regs, 0)] if type(regs) is int else regs


def key_of(regs) -> int:
    """The key of the registration that serves (the last one)."""
    return regs if type(regs) is int else regs[-1][0]


def _unregister(fn, c: Conn, count: int) -> None:
    """c's `count` registrations for fn are gone: so is its sleeper entry,
    and all the function held for workers once it has no jobs either."""
    fn.workers -= count
    if not fn.workers and not fn.total:
        fn.release()
    elif fn.sleepers:
        fn.sleepers.pop(c, None)


def _touch(sleepers, c: Conn) -> None:
    """Add c at the back of an OrderedDict of sleepers."""
    if c in sleepers:
        sleepers.move_to_end(c)
    else:
        sleepers[c] = None


class Deadlines:
    """CAN_DO_TIMEOUT deadlines, one per assigned job, cancelled when the job
    ends or leaves its worker. A heap with lazy deletion: a cancelled entry
    stays until it reaches the top or the heap is compacted (when more than
    half of it is dead), so memory stays proportional to live deadlines."""
    __slots__ = ("heap", "stale", "_token")

    def __init__(self):
        self.heap = []            # (deadline, token, job)
        self.stale = 0
        self._token = 0

    def __len__(self):
        return len(self.heap) - self.stale

    def arm(self, job, deadline: float) -> None:
        self._token += 1
        job.timer = self._token
        heapq.heappush(self.heap, (deadline, self._token, job))

    def cancel(self, job) -> None:
        job.timer = 0
        self.stale += 1
        if self.stale > 64 and self.stale * 2 > len(self.heap):
            self.heap = [e for e in self.heap if e[2].timer == e[1]]
            heapq.heapify(self.heap)
            self.stale = 0

    def expired(self, now: float) -> list:
        heap, jobs = self.heap, []
        while heap and heap[0][0] <= now:
            _, token, job = heapq.heappop(heap)
            if job.timer == token:
                job.timer = 0
                jobs.append(job)
            else:
                self.stale -= 1
        return jobs

    def next_due(self) -> float | None:
        heap = self.heap
        while heap and heap[0][2].timer != heap[0][1]:
            heapq.heappop(heap)
            self.stale -= 1
        return heap[0][0] if heap else None


def timeout_seconds(timeout_ms: int) -> float:
    return max(timeout_ms, MIN_TIMEOUT_MS) / 1000.0


def staffing(conns) -> tuple:
    """(busy, idle): Counters of Function -> the connections registered for
    it that run a job (of any function), and that run none. A walk over
    every registration (in C: about 8 ms for 100,000), for the `stats`
    command and a publication at most once a second, never a job's path."""
    busy, idle = Counter(), Counter()
    for c in conns:
        if c.funcs:
            (busy if c.running else idle).update(c.funcs.keys())
    return busy, idle
