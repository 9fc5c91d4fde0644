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
"""
import logging

from .. import native, procstat
from ..ipc import layout as L

log = logging.getLogger(__name__)
OVERFLOW = L.CTR_OVERFLOW_SLOT
COUNTERS = ("submitted", "completed", "failed", "exceptions", "requeued")


def values(fn) -> tuple:
    """The slot fields of one function, in counters.FUNCTION_FIELDS order."""
    high, normal, low = fn.queued_by_priority()
    return (fn.submitted, fn.completed, fn.failed, fn.exceptions, fn.requeued,
            high, normal, low, fn.running, fn.workers)


class Figures:
    def __init__(self, counters):
        self.counters = counters
        self.by_name = {}        # name -> the Function that last had its slot
        self.overflowed = {}     # name -> Function counted in the overflow bucket
        self.warned = False

    def publish(self, dirty: dict) -> None:
        """Write the figures of every function in `dirty`, then empty it."""
        bucket = False
        write = self.counters.write_function
        for fn in dirty:
            slot = fn.slot
            if slot is None:
                slot = self._place(fn)
            if slot == OVERFLOW:
                bucket = True
            else:
                write(slot, values(fn))
        dirty.clear()
        if bucket:
            sums = [0] * 10
            for fn in self.overflowed.values():
                for i, v in enumerate(values(fn)):
                    sums[i] += v
            write(OVERFLOW, sums)

    def _place(self, fn) -> int:
        """First publication of a Function object: its slot, taking over the
        counters of an earlier Function of the same name (dropped, created
        again) so that they keep growing."""
        name = fn.name
        old = self.by_name.get(name) or self.overflowed.get(name)
        if old is not None and old is not fn:
            for field in COUNTERS:
                setattr(fn, field, getattr(fn, field) + getattr(old, field))
            fn.slot = old.slot
        else:
            fn.slot = self.counters.claim_slot(name)
        if fn.slot == OVERFLOW:
            self.overflowed[name] = fn
            self.counters.set_overflowed(len(self.overflowed))
            if not self.warned:
                self.warned = True
                log.warning("function %r is counted in the %r bucket of the metrics: the "
                            "table of %d functions is full or the name is longer than %d "
                            "bytes (logged once)", name, "__other__",
                            self.counters.slots - 1, L.CTR_NAME_MAX)
        else:
            self.by_name[name] = fn
        return fn.slot


def extra_stats(counters) -> list:
    """The `stats` pairs only shared memory and /proc know: connections the
    acceptors accepted, bytes they spooled, and each process's pid, CPU
    seconds and resident memory; and which data plane runs (c or python)."""
    figures = counters.acceptor_figures()
    pairs = [("implementation", native.IMPLEMENTATION),
             ("connections_accepted", sum(f[1] for f in figures)),
             ("spooled_bytes", sum(f[3] for f in figures))]
    for role, index, pid, cpu, rss in procstat.sample(counters.processes()):
        key = f"process.{role}.{index}"
        pairs += [(f"{key}.pid", pid), (f"{key}.cpu_seconds", f"{cpu:.2f}"),
                  (f"{key}.rss_bytes", rss)]
    return pairs
