"""Publishing the per-function figures into the counters mapping.

Owns: which counters slot each function name has, the overflow bucket, and
copying a function's figures (Python ints kept by the Core on the job paths)
to shared memory once per loop turn, for the functions the Core marked as
changed. The per-job cost on the hot path is an integer increment and a
dict store; the stores happen here, once per function per turn.

Must not: change any function or job, or be written to by anyone but the
coordinator (the mapping's single writer of function slots).

The table is bounded (supervisor.FUNCTION_SLOTS): a function that finds it
full, or whose name is too long for a slot, is counted in the overflow
bucket "__other__" (slot 0) with every other such function, and a warning
is logged once. A function dropped and created again keeps its slot and
its counters, so they never go backwards.

Busy and idle workers per function change with every job a worker starts
or ends, for each function it registered: counting them on the job path
would cost a worker's number of functions per job, so count_workers()
walks the registrations instead, at most once a second (the loop decides),
and compares only the functions with a slot of their own (so a worker of
thousands of functions going busy publishes at most the table). The
overflow bucket has no busy and idle workers, as it has no oldest job.

The bucket is a running sum: each of its functions remembers the figures it
last added (Function.shown, None for all zeros) and a change adds only the
difference, so publishing costs the functions that changed, never the
number of functions in the bucket. The figures of functions that never had
a job (workers only: all those a worker registered hold the same) share
one tuple, so remembering them costs little. A bucket function dropped and created
again starts from zero; what it added before stays in the sums (and it is
counted once more in the number of functions placed in the bucket).
"""
import logging

from .. import native, procstat
from ..ipc import layout as L
from ..ipc.counters import FUNCTION_FIELDS, HIST_BUCKETS
from .workers import staffing

log = logging.getLogger(__name__)
OVERFLOW = L.CTR_OVERFLOW_SLOT
COUNTERS = ("submitted", "completed", "failed", "exceptions", "requeued")
FIELDS = len(FUNCTION_FIELDS)
ZERO = (0,) * FIELDS
NO_HIST = (0,) * (HIST_BUCKETS + 1)
SHARED_MAX = 1024        # distinct figures of job-less functions kept for sharing


def _hist(hist) -> tuple:
    return NO_HIST if hist is None else (*hist[:-1], round(hist[-1] * 1e6))


def values(fn, oldest: bool = True) -> tuple:
    """The slot fields of one function, in counters.FUNCTION_FIELDS order
    (oldest=False: without its oldest queued time, for the bucket)."""
    high, normal, low = fn.queued_by_priority()
    since = round(fn.oldest() * 1e6) if oldest else 0
    return (fn.submitted, fn.completed, fn.failed, fn.exceptions, fn.requeued,
            high, normal, low, fn.running, fn.workers, fn.busy, fn.idle, since,
            *_hist(fn.waits), *_hist(fn.runs))


class Figures:
    def __init__(self, counters):
        self.counters = counters
        # name -> the Function that last had its slot (at most one per slot)
        self.by_name = {}
        self.bucket = [0] * FIELDS   # the overflow bucket's running sums
        self.overflowed = 0      # functions placed in the bucket
        self.shared = {}         # figures of job-less functions -> one shared tuple
        self.warned = False

    def count_workers(self, conns, dirty: dict) -> None:
        """Count busy and idle workers again for the functions with a slot
        of their own; those whose figures changed are marked in `dirty`."""
        busy, idle = staffing(conns)
        for fn in self.by_name.values():
            now_busy, now_idle = busy[fn], idle[fn]
            if fn.busy != now_busy or fn.idle != now_idle:
                fn.busy, fn.idle = now_busy, now_idle
                dirty[fn] = None

    def publish(self, dirty: dict) -> None:
        """Write the figures of every function in `dirty`, then empty it."""
        bucket = False
        write = self.counters.write_function
        for fn in dirty:
            slot = fn.slot
            if slot is None:
                slot = self._place(fn)
            if slot != OVERFLOW:
                write(slot, values(fn))
            elif self._add_to_bucket(fn):
                bucket = True
        dirty.clear()
        if bucket:
            write(OVERFLOW, self.bucket)

    def _add_to_bucket(self, fn) -> bool:
        """Add what changed in fn's figures since it was last added; False
        when nothing did."""
        now = values(fn, oldest=False)
        was = fn.shown or ZERO
        if now == was:
            return False
        sums = self.bucket
        for i in range(FIELDS):
            sums[i] += now[i] - was[i]
        if now == ZERO:
            fn.shown = None
        elif now[0]:            # it had jobs: figures of its own
            fn.shown = now
        else:
            shared = self.shared.get(now)
            if shared is None and len(self.shared) < SHARED_MAX:
                shared = self.shared[now] = now
            fn.shown = shared or now
        return True

    def _place(self, fn) -> int:
        """First publication of a Function object: its slot, taking over the
        counters of an earlier Function of the same name (dropped, created
        again) so that they keep growing."""
        name = fn.name
        old = self.by_name.get(name)
        if old is not None and old is not fn:
            for field in COUNTERS:
                setattr(fn, field, getattr(fn, field) + getattr(old, field))
            fn.waits = _merged(fn.waits, old.waits)
            fn.runs = _merged(fn.runs, old.runs)
            fn.slot = old.slot
        else:
            fn.slot = self.counters.claim_slot(name)
        if fn.slot == OVERFLOW:
            self.overflowed += 1
            self.counters.set_overflowed(self.overflowed)
            if not self.warned:
                self.warned = True
                log.warning("function %r is counted in the %r bucket of the metrics: the "
                            "table of %d functions is full or the name is longer than %d "
                            "bytes (logged once)", name, "__other__",
                            self.counters.slots - 1, L.CTR_NAME_MAX)
        else:
            self.by_name[name] = fn
        return fn.slot


def _merged(hist, old):
    if old is None:
        return hist
    return list(old) if hist is None else [a + b for a, b in zip(hist, old)]


def extra_stats(counters) -> list:
    """The `stats` pairs only shared memory and /proc know: connections the
    acceptors accepted, bytes they spooled, and each process's pid, CPU
    seconds and resident memory; and which data plane and which coordinator
    core run (c or python)."""
    figures = counters.acceptor_figures()
    pairs = [("implementation", native.IMPLEMENTATION), ("core", native.CORE),
             ("connections_accepted", sum(f[1] for f in figures)),
             ("spooled_bytes", sum(f[3] for f in figures))]
    for role, index, pid, cpu, rss in procstat.sample(counters.processes()):
        key = f"process.{role}.{index}"
        pairs += [(f"{key}.pid", pid), (f"{key}.cpu_seconds", f"{cpu:.2f}"),
                  (f"{key}.rss_bytes", rss)]
    return pairs
