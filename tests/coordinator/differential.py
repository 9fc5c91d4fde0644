"""Differential driver: the same generated requests to the Python Core (the
specification) and to the C core (mpgearman/native/core*.c), requiring the
same output bytes in the same order, the same timers, and the same admin
`status` / `show jobs` listings after every step.

Used by test_core_differential.py, in process against the built module and
in a subprocess against an AddressSanitizer build of the same sources.
"""
from hypothesis import strategies as st

from corekit import T0, FakeClock, FakeSpool
from mpgearman.config import Config
from mpgearman.coordinator import admin
from mpgearman.coordinator.core import Close, Core, Send
from mpgearman.protocol.packets import T

PREFIX = "H:vm"
FUNCS = [b"f", b"g", b"h", b"f\\x"]
UNIQUES = [b"", b"-", b"u1", b"u2", b"u" * 64, b"v" * 65]
DATA = [b"", b"d", b"e", b"x" * 300]
NUMBERS = [b"0", b"1", b"2", b"100", b"-1", b"4294967297", b"12345678901", b" 7x", b""]
TIMEOUTS = [b"0", b"1", b"1500", b"-5", b"abc", b"9223372036854775807",
            b"9223372036854775808", b"1" * 21]
OPTIONS = [b"exceptions", b"EXCEPTIONS", b"other", b"exceptions\0x", b""]

SUBMITS = [T.SUBMIT_JOB, T.SUBMIT_JOB_BG, T.SUBMIT_JOB_HIGH, T.SUBMIT_JOB_HIGH_BG,
           T.SUBMIT_JOB_LOW, T.SUBMIT_JOB_LOW_BG]
GRABS = [T.GRAB_JOB, T.GRAB_JOB_UNIQ, T.GRAB_JOB_ALL]
RESULTS = [T.WORK_DATA, T.WORK_WARNING, T.WORK_COMPLETE, T.WORK_EXCEPTION]
# Weighted: submissions, grabs and results are most of a real load.
KINDS = (["submit"] * 6 + ["grab"] * 8 + ["result"] * 8 + ["sleep"] * 4 + ["can_do"] * 3
         + ["status", "fail", "epoch", "reduce", "cant_do", "reset", "timeout", "echo",
            "option", "client_id", "get_status", "get_unique", "odd", "disconnect",
            "connect", "cancel", "advance", "maxqueue"])


def options():
    return st.fixed_dictionaries({
        "job_retries": st.sampled_from([0, 1, 2]),
        "worker_wakeup": st.sampled_from([0, 1]),
        "round_robin": st.booleans(),
        "exceptions": st.booleans(),
    })


class Pair:
    """A Python Core and a C core fed the same inputs."""

    def __init__(self, ccore_type, opts: dict):
        self.clock = FakeClock()
        self.config = Config(job_handle_prefix=PREFIX, **opts)
        self.py = Core(self.config, FakeSpool(), clock=self.clock, pid=1, version=b"v")
        self.c = ccore_type(PREFIX.encode(), opts["worker_wakeup"], opts["job_retries"],
                            opts["round_robin"], opts["exceptions"], self.clock)
        self.c.set_journal(True)      # the Python Core journals by default (durability)
        self.next_id = 0
        self.live = []
        self.steps = []

    def check(self, what):
        self.steps.append(what)
        want = []
        for action in self.py.out:
            if type(action) is Send:
                want.append((action.conn, action.data))
            else:
                assert type(action) is Close, action
                want.append((action.conn, None))
        self.py.out.clear()
        got = self.c.drain()
        assert got == want, f"after {self.steps[-12:]}"
        assert self.c.tick() == self.py.tick(), f"tick after {self.steps[-12:]}"
        assert self.c.take_journal() == bytes(self.py.journal), \
            f"journal after {self.steps[-12:]}"
        self.py.journal.clear()
        self.py.acks.clear()
        self.check_tables()

    def check_tables(self):
        py_status = b"".join(admin.status(self.py, [b"status"]))
        assert self.c.status() == py_status, f"status after {self.steps[-12:]}"
        py_jobs = b"".join(admin.show(self.py, [b"show", b"jobs"]))
        assert self.c.show_jobs() == py_jobs, f"show jobs after {self.steps[-12:]}"
        assert self.c.counts() == self.py.counts()
        for fn in self.py.functions.by_name.values():
            want = {"queued": fn.queued_by_priority(), "oldest": fn.oldest() or 0}
            for name in ("total", "running", "workers", "waiting", "submitted", "completed",
                         "failed", "exceptions", "requeued", "waits", "runs"):
                want[name] = getattr(fn, name)
            assert self.c.figures(fn.name) == want, f"figures of {fn.name} after {self.steps[-12:]}"

    # -- inputs ------------------------------------------------------------------
    def connect(self):
        self.next_id += 1
        self.py.connect(self.next_id, "127.0.0.1", 30 + self.next_id)
        self.c.connect(self.next_id, "127.0.0.1", 30 + self.next_id)
        self.live.append(self.next_id)
        self.check(("connect", self.next_id))

    def packet(self, conn, ptype, args):
        self.py.packet(conn, ptype, args)
        self.c.packet(conn, int(ptype), args)
        self.check((conn, int(ptype), args))

    def disconnect(self, conn):
        self.py.disconnect(conn)
        self.c.disconnect(conn)
        if conn in self.live:
            self.live.remove(conn)
        self.check(("disconnect", conn))

    def cancel(self, handle):
        assert self.c.cancel(handle) == self.py.cancel(handle)
        self.check(("cancel", handle))

    def maxqueue(self, name, limits):
        fn = self.py.functions.by_name.get(name)
        if fn is not None:
            fn.maxq = limits
        assert self.c.maxqueue(name, *limits) == (fn is not None)
        self.check(("maxqueue", name, limits))

    def advance(self, seconds):
        self.clock.advance(seconds)
        self.check(("advance", seconds))


def handle(draw, pair) -> bytes:
    """Mostly a live job's handle, sometimes a stale, odd or unknown one."""
    live = list(pair.py.jobs.jobs)
    if live and draw(st.integers(0, 3)):
        return draw(st.sampled_from(live))
    n = draw(st.integers(0, pair.py.jobs.count + 1))
    return draw(st.sampled_from([b"%s:%d" % (PREFIX.encode(), n), b"H:vm:0%d" % n,
                                 b"x" * 64, b"%s:%d\0tail" % (PREFIX.encode(), n)]))


def worker(draw, pair, conn):
    """Mostly a connection running jobs, and the handles it runs."""
    busy = [c.id for c in pair.py.conns.values() if c.running]
    if busy and draw(st.integers(0, 3)):
        conn = draw(st.sampled_from(busy))
    c = pair.py.conns.get(conn)
    return conn, [job.handle for job in c.running] if c is not None else []


def step(draw, pair) -> None:
    """One generated input, fed to both cores and compared."""
    if len(pair.live) < 3:
        pair.connect()
        return
    kind = draw(st.sampled_from(KINDS))
    conn = draw(st.sampled_from(pair.live + [999]))     # 999: never connected
    pick = lambda seq: draw(st.sampled_from(seq))       # noqa: E731
    if kind in ("result", "status", "fail"):
        conn, running = worker(draw, pair, conn)
        if running and draw(st.integers(0, 4)):
            one = pick(running)
            if kind == "result":
                pair.packet(conn, pick(RESULTS), (one, pick(DATA)))
            elif kind == "status":
                pair.packet(conn, T.WORK_STATUS, (one, pick(NUMBERS), pick(NUMBERS)))
            else:
                pair.packet(conn, T.WORK_FAIL, (one + pick([b"", b"\0why"]),))
            return
    if kind == "submit":
        pair.packet(conn, pick(SUBMITS), (pick(FUNCS), pick(UNIQUES), pick(DATA)))
    elif kind == "epoch":
        when = pick([b"%d" % (T0 + 5), b"%d" % (T0 - 5), b"0", b"-1", b"9" * 25])
        pair.packet(conn, T.SUBMIT_JOB_EPOCH, (pick(FUNCS), pick(UNIQUES), when, pick(DATA)))
    elif kind == "reduce":
        ptype = pick([T.SUBMIT_REDUCE_JOB, T.SUBMIT_REDUCE_JOB_BACKGROUND])
        pair.packet(conn, ptype, (pick(FUNCS), pick(UNIQUES), pick([b"", b"r"]), b"",
                                  pick(DATA)))
    elif kind == "grab":
        pair.packet(conn, pick(GRABS), ())
    elif kind == "sleep":
        pair.packet(conn, T.PRE_SLEEP, ())
    elif kind == "can_do":
        pair.packet(conn, T.CAN_DO, (pick(FUNCS),))
    elif kind == "timeout":
        pair.packet(conn, T.CAN_DO_TIMEOUT, (pick(FUNCS), pick(TIMEOUTS)))
    elif kind == "cant_do":
        pair.packet(conn, T.CANT_DO, (pick(FUNCS + [b"nope"]),))
    elif kind == "reset":
        pair.packet(conn, T.RESET_ABILITIES, ())
    elif kind == "result":
        pair.packet(conn, pick(RESULTS), (handle(draw, pair), pick(DATA)))
    elif kind == "status":
        pair.packet(conn, T.WORK_STATUS, (handle(draw, pair), pick(NUMBERS), pick(NUMBERS)))
    elif kind == "fail":
        pair.packet(conn, T.WORK_FAIL, (handle(draw, pair),))
    elif kind == "echo":
        pair.packet(conn, T.ECHO_REQ, (pick(DATA),))
    elif kind == "option":
        pair.packet(conn, T.OPTION_REQ, (pick(OPTIONS),))
    elif kind == "client_id":
        pair.packet(conn, T.SET_CLIENT_ID, (pick([b"me", b"a" * 200, b"x\0y"]),))
    elif kind == "get_status":
        pair.packet(conn, T.GET_STATUS, (handle(draw, pair),))
    elif kind == "get_unique":
        pair.packet(conn, T.GET_STATUS_UNIQUE, (pick(UNIQUES + [b"u1\0z"]),))
    elif kind == "odd":
        pair.packet(conn, pick([T.UNUSED, T.NOOP, T.ECHO_RES, T.ALL_YOURS, T.JOB_CREATED]), ())
    elif kind == "disconnect":
        pair.disconnect(conn)
    elif kind == "connect":
        pair.connect()
    elif kind == "cancel":
        pair.cancel(handle(draw, pair))
    elif kind == "maxqueue":
        pair.maxqueue(pick(FUNCS + [b"nope"]), tuple(draw(st.lists(
            st.integers(0, 3), min_size=3, max_size=3))))
    elif kind == "advance":
        pair.advance(pick([0.003, 0.04, 0.5, 1.0, 2.0, 6.0]))


def run(draw, ccore_type, steps: int) -> Pair:
    pair = Pair(ccore_type, draw(options()))
    for _ in range(steps):
        step(draw, pair)
    for conn in list(pair.live):
        pair.disconnect(conn)
    pair.advance(10.0)
    return pair
