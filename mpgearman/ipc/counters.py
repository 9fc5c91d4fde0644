"""The counters mapping: figures for monitoring, in shared memory.

Owns the mapping (created by the supervisor before it forks, so every child
inherits it), its header check, and the reads and writes of its fields.
Layout and the one-writer-per-line rule: mpgearman/native/layout.h.

Writers: each process its own process line (pid and, for an acceptor, its
connection figures); the coordinator alone the function slots and the
number of slots in use. Readers (the metrics process, the coordinator's
`stats` command) take what they find and add it up; nothing here locks.

Must not: decide what a figure means (the coordinator and the acceptors do)
or format it for anyone (metrics.py, stat/).

Fields are read and written through a memoryview cast to u64: one aligned
8-byte load or store per field, never a torn value.
"""
from mpgearman.ipc import layout as L
from mpgearman.ipc.shm import map_shared

_Q = 8
LINE_Q = L.CTR_LINE_SIZE // _Q
SLOT_Q = L.CTR_SLOT_SIZE // _Q
OVERFLOW_NAME = b"__other__"
HIST_BUCKETS = L.CTR_HIST_FIELDS - 1
# What each function slot holds after its name length, in order: counters,
# gauges (oldest_queued_us: unix time in microseconds the longest-waiting
# queued job was queued, 0 = none), then the wait and run time histograms
# (bucket counts, not cumulative, then the sum in microseconds).
FUNCTION_FIELDS = ("submitted", "completed", "failed", "exceptions", "requeued",
                   "queued_high", "queued_normal", "queued_low", "running", "workers",
                   "busy", "idle", "oldest_queued_us",
                   *(f"wait_{i}" for i in range(HIST_BUCKETS)), "wait_sum_us",
                   *(f"run_{i}" for i in range(HIST_BUCKETS)), "run_sum_us")
assert len(FUNCTION_FIELDS) == L.CTR_SLOT_FIELDS - 1


def histogram(figures: dict, kind: str) -> tuple:
    """([bucket counts], sum in seconds) of the "wait" or "run" histogram in
    a functions() dict."""
    return ([figures[f"{kind}_{i}"] for i in range(HIST_BUCKETS)],
            figures[f"{kind}_sum_us"] / 1e6)
ROLES = {L.CTR_SUPERVISOR: "supervisor", L.CTR_COORDINATOR: "coordinator",
         L.CTR_METRICS: "metrics"}


class CountersError(RuntimeError):
    """The memory is not a counters mapping of the layout this code speaks."""


def _size(acceptors: int, slots: int) -> int:
    lines = L.CTR_FIRST_ACCEPTOR + acceptors
    return L.CTR_PROCS_OFF + lines * L.CTR_LINE_SIZE + slots * L.CTR_SLOT_SIZE


class Counters:
    __slots__ = ("mem", "q", "lines", "slots", "slots_q")

    def __init__(self, mem):
        self.mem = mem
        self.q = memoryview(mem).cast("B").cast("Q")
        head = memoryview(mem).cast("B")[:L.CTR_PROCS_OFF].cast("I")
        self.lines = head[L.CTR_LINES_OFF // 4]
        self.slots = head[L.CTR_SLOTS_OFF // 4]
        self.slots_q = (L.CTR_PROCS_OFF + self.lines * L.CTR_LINE_SIZE) // _Q

    @classmethod
    def create(cls, acceptors: int, slots: int) -> "Counters":
        """A fresh mapping for `acceptors` acceptors and `slots` function
        slots (slot 0 being the overflow bucket)."""
        if slots < 2:
            raise ValueError(f"need at least 2 function slots, not {slots}")
        mem = map_shared("mpgearman-counters", _size(acceptors, slots))
        head = memoryview(mem).cast("B")[:L.CTR_PROCS_OFF].cast("I")
        head[L.CTR_VERSION_OFF // 4] = L.CTR_VERSION
        head[L.CTR_LINES_OFF // 4] = L.CTR_FIRST_ACCEPTOR + acceptors
        head[L.CTR_SLOTS_OFF // 4] = slots
        head[L.CTR_NAME_MAX_OFF // 4] = L.CTR_NAME_MAX
        head.release()
        counters = cls(mem)
        counters._name_slot(L.CTR_OVERFLOW_SLOT, OVERFLOW_NAME)
        counters._set(L.CTR_COORDINATOR, L.CTR_A_OFF, 1)      # slot 0 is in use
        counters.q[L.CTR_MAGIC_OFF // _Q] = L.CTR_MAGIC        # last: now it is valid
        return counters

    def check(self) -> "Counters":
        magic, version = self.q[L.CTR_MAGIC_OFF // _Q], \
            memoryview(self.mem).cast("B")[:16].cast("I")[L.CTR_VERSION_OFF // 4]
        if magic != L.CTR_MAGIC:
            raise CountersError(f"counters magic is {magic:#x}, not {L.CTR_MAGIC:#x}")
        if version != L.CTR_VERSION:
            raise CountersError(f"counters layout {version}, this build speaks "
                                f"{L.CTR_VERSION}")
        if len(self.q) * _Q < _size(self.lines - L.CTR_FIRST_ACCEPTOR, self.slots):
            raise CountersError("counters mapping is smaller than its header says")
        return self

    @property
    def acceptors(self) -> int:
        return self.lines - L.CTR_FIRST_ACCEPTOR

    def close(self) -> None:
        self.q.release()
        self.mem.close()

    # -- process lines (each written by its own process) ----------------------

    def _at(self, line: int, off: int) -> int:
        return (L.CTR_PROCS_OFF + line * L.CTR_LINE_SIZE + off) // _Q

    def _set(self, line: int, off: int, value: int) -> None:
        self.q[self._at(line, off)] = value

    def _get(self, line: int, off: int) -> int:
        return self.q[self._at(line, off)]

    def start_process(self, line: int, pid: int) -> None:
        """A process (re)starts: its line says its pid; an acceptor's
        figures start again from zero (a restarted acceptor is a new one)."""
        if line >= L.CTR_FIRST_ACCEPTOR:
            for off in (L.CTR_A_OFF, L.CTR_B_OFF, L.CTR_C_OFF, L.CTR_D_OFF):
                self._set(line, off, 0)
        self._set(line, L.CTR_PID_OFF, pid)

    def acceptor_writer(self, index: int) -> "AcceptorFigures":
        return AcceptorFigures(self, L.CTR_FIRST_ACCEPTOR + index)

    def processes(self) -> list:
        """(role, index, pid) of every process that has started, pid 0 left out."""
        out = []
        for line in range(self.lines):
            pid = self._get(line, L.CTR_PID_OFF)
            if pid:
                if line >= L.CTR_FIRST_ACCEPTOR:
                    out.append(("acceptor", line - L.CTR_FIRST_ACCEPTOR, pid))
                else:
                    out.append((ROLES[line], 0, pid))
        return out

    def acceptor_figures(self) -> list:
        """(index, accepted, open, spooled bytes) per running acceptor (a
        line without a pid is a spare slot or an acceptor that died)."""
        return [(i, self._get(line, L.CTR_A_OFF), self._get(line, L.CTR_B_OFF),
                 self._get(line, L.CTR_C_OFF))
                for i, line in enumerate(range(L.CTR_FIRST_ACCEPTOR, self.lines))
                if self._get(line, L.CTR_PID_OFF)]

    # -- the spool as a whole (--max-spool-bytes) ------------------------------

    def set_spool_held(self, size: int) -> None:
        """Coordinator: bytes of the spooled payloads of its live jobs."""
        self._set(L.CTR_COORDINATOR, L.CTR_C_OFF, size)

    def spool_in_use(self) -> int:
        """What the jobs hold plus what the acceptors are writing now."""
        return self._get(L.CTR_COORDINATOR, L.CTR_C_OFF) + sum(
            self._get(line, L.CTR_D_OFF) for line in range(L.CTR_FIRST_ACCEPTOR, self.lines))

    # -- the journal (durable/): the coordinator's line after A, B and C -------

    JOURNAL_OFFS = (L.CTR_D_OFF, L.CTR_D_OFF + 8, L.CTR_D_OFF + 16, L.CTR_D_OFF + 24)

    def set_journal(self, size: int, live: int, synced_us: int, sync_us: int) -> None:
        """Coordinator: journal bytes, live journaled jobs, wall time of the
        last fdatasync and its duration (microseconds)."""
        for off, value in zip(self.JOURNAL_OFFS, (size, live, synced_us, sync_us)):
            self._set(L.CTR_COORDINATOR, off, value)

    def journal(self) -> tuple | None:
        """What set_journal() last said; None when no journal is kept."""
        values = tuple(self._get(L.CTR_COORDINATOR, off) for off in self.JOURNAL_OFFS)
        return values if values[2] else None

    # -- function slots (the coordinator writes, anyone reads) ----------------

    def _name_slot(self, slot: int, name: bytes) -> None:
        base = (self.slots_q + slot * SLOT_Q) * _Q
        raw = memoryview(self.mem).cast("B")
        raw[base + L.CTR_SLOT_NAME_OFF:base + L.CTR_SLOT_NAME_OFF + len(name)] = name
        raw.release()
        self.q[self.slots_q + slot * SLOT_Q] = len(name)

    def claim_slot(self, name: bytes) -> int:
        """Give `name` the next free slot; the overflow slot when the table
        is full, or the name is empty, does not fit its field, or is the
        overflow bucket's own name (so no two slots ever share a name)."""
        used = self._get(L.CTR_COORDINATOR, L.CTR_A_OFF)
        if used >= self.slots or not 0 < len(name) <= L.CTR_NAME_MAX or name == OVERFLOW_NAME:
            return L.CTR_OVERFLOW_SLOT
        self._name_slot(used, name)
        self._set(L.CTR_COORDINATOR, L.CTR_A_OFF, used + 1)   # after the name
        return used

    def set_overflowed(self, functions: int) -> None:
        self._set(L.CTR_COORDINATOR, L.CTR_B_OFF, functions)

    def overflowed(self) -> int:
        return self._get(L.CTR_COORDINATOR, L.CTR_B_OFF)

    def write_function(self, slot: int, values) -> None:
        """The FUNCTION_FIELDS of a slot, in order (non-negative ints); each
        field one aligned 8-byte store."""
        q, at = self.q, self.slots_q + slot * SLOT_Q + 1
        for value in values:
            q[at] = value
            at += 1

    def functions(self) -> list:
        """(name, {field: value}) of every slot in use, the overflow bucket
        first."""
        used = min(self._get(L.CTR_COORDINATOR, L.CTR_A_OFF), self.slots)
        raw = memoryview(self.mem).cast("B")
        out = []
        for slot in range(used):
            at = self.slots_q + slot * SLOT_Q
            start = at * _Q + L.CTR_SLOT_NAME_OFF
            name = bytes(raw[start:start + min(self.q[at], L.CTR_NAME_MAX)])
            out.append((name, dict(zip(FUNCTION_FIELDS, self.q[at + 1:at + L.CTR_SLOT_FIELDS]))))
        raw.release()
        return out


class AcceptorFigures:
    """One acceptor's writer of its own line."""
    __slots__ = ("q", "accepted_at", "open_at", "spooled_at", "spooled", "writing_at",
                 "spool_in_use")

    def __init__(self, counters: Counters, line: int):
        self.q = counters.q
        self.accepted_at = counters._at(line, L.CTR_A_OFF)
        self.open_at = counters._at(line, L.CTR_B_OFF)
        self.spooled_at = counters._at(line, L.CTR_C_OFF)
        self.writing_at = counters._at(line, L.CTR_D_OFF)
        self.spooled = 0
        self.spool_in_use = counters.spool_in_use

    def writing(self, size: int) -> None:
        """Bytes of the bodies this acceptor is writing to the spool now."""
        self.q[self.writing_at] = size

    def connections(self, accepted: int, open_now: int) -> None:
        self.q[self.accepted_at] = accepted
        self.q[self.open_at] = open_now

    def add_spooled(self, size: int) -> None:
        self.spooled += size
        self.q[self.spooled_at] = self.spooled
