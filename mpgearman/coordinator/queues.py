"""Functions and their job queues: three FIFO lists per function, the set of
functions with something queued, and the heap of future epoch jobs.

Owns: the Function record (queues, counters, maxqueue limits, coalescing
index dicts that jobtable fills, the sleeper list that workers fills), the
name -> Function table, and when epoch jobs become runnable.
Must not: pick which function a worker serves (workers.py), send anything,
or free jobs itself: ignored jobs met at a queue head are handed to the
`reap` callback the Core passes in.

Memory: a Function with no jobs and no workers keeps only its name, counts
and limits (gearmand lists every name ever used in `status`, so the record
stays): its queues, coalescing indexes and sleeper list are made on first
use and let go by release() when its last job or worker leaves.

Future epoch jobs are kept out of the priority queues until they are due, so
they can never hide runnable jobs of the same or a lower priority (gearmand
bug, PROTOCOL.md 3.14) and PRE_SLEEP never answers NOOP for them.
"""
import heapq
from collections import OrderedDict, deque

HIGH, NORMAL, LOW = 0, 1, 2
NO_LIMITS = (0, 0, 0)
# Upper bounds (seconds) of the wait and run time histograms' buckets; a
# histogram is a list of len(BOUNDS) + 1 bucket counts (the last one for
# anything longer) and, last, the sum of the times: recording a time is a
# bisect, an increment and an addition (Core.grab and Core._free).
BOUNDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
          900.0, 3600.0)
HIST_LEN = len(BOUNDS) + 2


class Function:
    __slots__ = (
        "name",
        "queues",         # (high, normal, low) deques, None while it has no jobs
        "queued",         # jobs in the three queues (incl. ignored ones)
        "total",          # queued + running + waiting epoch jobs (status "total")
        "running",
        "workers",        # registrations, duplicates counted
        "maxq",           # (high, normal, low) limits, 0 = unlimited
        "waiting",        # future epoch jobs (normal priority)
        "by_unique", "by_data",     # coalescing indexes, None while empty
        "sleepers",       # Conn -> None: may need a NOOP (validated lazily), or None
        # For monitoring: jobs ever created, ended by WORK_COMPLETE, by
        # WORK_FAIL (or out of retries), by WORK_EXCEPTION, and put back in a
        # queue after their worker was lost; published by coordinator/figures.py.
        "submitted", "completed", "failed", "exceptions", "requeued",
        "slot",           # its counters slot, None until first published
        "shown",          # figures it last added to the overflow bucket, None = zeros
        # Latency: histograms (see BOUNDS) of the wait (queued -> assigned)
        # and run (assigned -> ended) times, None until its first job is
        # queued (then kept, like the counters); and
        # the workers registered for it that run a job (busy) or not (idle),
        # counted by coordinator/figures.py at most once a second.
        "waits", "runs", "busy", "idle",
    )

    def __init__(self, name: bytes):
        self.name = name
        self.queues = self.by_unique = self.by_data = self.sleepers = None
        self.queued = self.total = self.running = self.workers = self.waiting = 0
        self.maxq = NO_LIMITS
        self.submitted = self.completed = self.failed = self.exceptions = self.requeued = 0
        self.slot = self.shown = self.waits = self.runs = None
        self.busy = self.idle = 0

    def __repr__(self):
        return f"<Function {self.name!r}>"

    def full(self, prio: int) -> bool:
        """maxqueue test for a new job: the limit of its priority against all
        of the function's jobs, as gearmand."""
        limit = self.maxq[prio]
        return limit > 0 and self.total >= limit

    def queued_by_priority(self) -> tuple[int, int, int]:
        if self.queues is None:
            return 0, self.waiting, 0
        high, normal, low = self.queues
        return len(high), len(normal) + self.waiting, len(low)

    def oldest(self) -> float:
        """When its longest-waiting queued job was put in its queue (each
        queue is in that order), 0 when none is queued; epoch jobs count
        from when they became due."""
        queues = self.queues
        if queues is None:
            return 0
        since = [q[0].since for q in queues if q]
        return min(since) if since else 0

    def release(self) -> None:
        """Its last job or worker left: let go of what only they needed.
        Callers check first that neither is left (total == workers == 0);
        sleeper entries are then all stale (no connection is registered)."""
        self.queues = self.by_unique = self.by_data = self.sleepers = None

    def add_sleeper(self, c) -> None:
        """c at the back of the sleeper list."""
        sleepers = self.sleepers
        if sleepers is None:
            self.sleepers = OrderedDict(((c, None),))
        elif c in sleepers:
            sleepers.move_to_end(c)
        else:
            sleepers[c] = None


class FunctionTable:
    __slots__ = ("by_name", "ready", "epochs", "_seq", "dirty")

    def __init__(self):
        self.by_name: dict[bytes, Function] = {}
        # Functions whose figures may have changed since the coordinator last
        # published them, in the order they first changed (so slots go to
        # functions first come, first served); one dict store per change,
        # the loop drains it.
        self.dirty: dict[Function, None] = {}
        self.ready: set[Function] = set()     # functions with queued > 0
        self.epochs: list = []                # heap of (when, seq, job)
        self._seq = 0

    def get(self, name: bytes) -> Function:
        fn = self.by_name.get(name)
        if fn is None:
            fn = self.by_name[name] = Function(name)
            self.dirty[fn] = None
        return fn

    def push(self, job) -> None:
        """Append to the tail of the job's priority queue."""
        fn = job.fn
        queues = fn.queues
        if queues is None:
            queues = fn.queues = (deque(), deque(), deque())
            if fn.waits is None:      # kept for good, like the counters
                fn.waits, fn.runs = [0] * HIST_LEN, [0] * HIST_LEN
        queues[job.prio].append(job)
        if not fn.queued:
            self.ready.add(fn)
        fn.queued += 1

    def take(self, fn: Function, reap):
        """Pop the first job, highest priority first, freeing ignored ones on
        the way (through `reap`). None when only ignored jobs were left."""
        for q in fn.queues or ():
            while q:
                job = q.popleft()
                fn.queued -= 1
                if not job.ignore:
                    if not fn.queued:
                        self.ready.discard(fn)
                    return job
                reap(job)
        self.ready.discard(fn)
        return None

    def peek(self, fn: Function, reap):
        """Like take() but leaves the runnable job where it is."""
        for q in fn.queues or ():
            while q:
                job = q[0]
                if not job.ignore:
                    return job
                q.popleft()
                fn.queued -= 1
                reap(job)
        self.ready.discard(fn)
        return None

    def defer(self, job, when: float) -> None:
        """Keep a future epoch job aside until `when`."""
        self._seq += 1
        job.when = when
        job.fn.waiting += 1
        heapq.heappush(self.epochs, (when, self._seq, job))

    def due(self, now: float) -> list:
        """Queue every epoch job whose time has come; returns them."""
        heap, jobs = self.epochs, []
        while heap and heap[0][0] <= now:
            job = heapq.heappop(heap)[2]
            job.when = 0
            job.since = now
            job.fn.waiting -= 1
            self.dirty[job.fn] = None
            self.push(job)
            jobs.append(job)
        return jobs

    def next_due(self) -> float | None:
        return self.epochs[0][0] if self.epochs else None

    def purge(self, fn: Function, reap) -> bool:
        """Free the queued jobs of `fn` if all are ignored; False (nothing
        done) if any is live or waits for its epoch."""
        queues = fn.queues or ()
        if fn.waiting or any(not job.ignore for q in queues for job in q):
            return False
        for q in queues:
            while q:
                fn.queued -= 1
                reap(q.popleft())
        self.ready.discard(fn)
        self.dirty[fn] = None
        return True

    def drop(self, fn: Function) -> None:
        del self.by_name[fn.name]
        self.ready.discard(fn)
