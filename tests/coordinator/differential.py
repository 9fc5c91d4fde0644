"""Differential driver: the same generated requests to the Python Core (the
specification) and to the C core (mpgearman/native/core*.c, through the
coordinator's adapter coordinator/ccore.py), requiring the same output
actions in the same order (spooled sends with the same spool names), the
same timers, the same spool names alive and bytes held, and the same answer
to every read-only admin command after every step. Spooled payloads, spool
files that become unusable, --max-spool-bytes and the admin commands that
change things (cancel, create, drop, maxqueue) are among the inputs.

Used by test_core_differential.py, in process against the built module and
in a subprocess against an AddressSanitizer build of the same sources.
"""
import errno

from hypothesis import strategies as st

from corekit import T0, FakeClock, FakeSpool
from mpgearman.config import Config
from mpgearman.coordinator import admin
from mpgearman.coordinator.ccore import CCore
from mpgearman.coordinator.core import Core, SendSpooled
from mpgearman.protocol.packets import T

PREFIX = "H:vm"
FUNCS = [b"f", b"g", b"h", b"f\\x"]
UNIQUES = [b"", b"-", b"u1", b"u2", b"u" * 64, b"v" * 65]
DATA = [b"", b"d", b"e", b"x" * 300]
SPOOLED = [70_000, 100_000]         # a spooled payload of this many bytes
READ_ONLY = [b"status", b"prioritystatus", b"workers", b"show jobs", b"show unique jobs",
             b"stats", b"scheduled", b"getpid", b"version", b"verbose", b"bogus", b"show x"]
CHANGING = [b"create function f", b"create function new", b"create function F\\x",
            b"drop function g", b"drop function F", b"drop function nope", b"drop",
            b"maxqueue f 1 2 3", b"maxqueue g", b"maxqueue h 1 x", b"maxqueue",
            b"cancel job", b"cancel x y", b"create function"]
NUMBERS = [b"0", b"1", b"2", b"100", b"-1", b"4294967297", b"12345678901", b" 7x", b""]
TIMEOUTS = [b"0", b"1", b"1500", b"-5", b"abc", b"9223372036854775807",
            b"9223372036854775808", b"1" * 21]
OPTIONS = [b"exceptions", b"EXCEPTIONS", b"other", b"exceptions\0x", b"",
           b"fail_reasons", b"Fail_Reasons", b"fail_reason"]

SUBMITS = [T.SUBMIT_JOB, T.SUBMIT_JOB_BG, T.SUBMIT_JOB_HIGH, T.SUBMIT_JOB_HIGH_BG,
           T.SUBMIT_JOB_LOW, T.SUBMIT_JOB_LOW_BG]
GRABS = [T.GRAB_JOB, T.GRAB_JOB_UNIQ, T.GRAB_JOB_ALL]
RESULTS = [T.WORK_DATA, T.WORK_WARNING, T.WORK_COMPLETE, T.WORK_EXCEPTION]
# Weighted: submissions, grabs and results are most of a real load.
KINDS = (["submit"] * 6 + ["grab"] * 8 + ["result"] * 8 + ["sleep"] * 4 + ["can_do"] * 3
         + ["status", "fail", "epoch", "reduce", "cant_do", "reset", "timeout", "echo",
            "option", "client_id", "get_status", "get_unique", "odd", "disconnect",
            "connect", "cancel", "advance", "maxqueue"] + ["admin"] * 2 + ["lose"])


def options():
    return st.fixed_dictionaries({
        "job_retries": st.sampled_from([0, 1, 2]),
        "worker_wakeup": st.sampled_from([0, 1]),
        "round_robin": st.booleans(),
        "exceptions": st.booleans(),
        "max_spool_bytes": st.sampled_from([0, 150_000]),
    })


class Spool(FakeSpool):
    """A fake spool whose files can become unusable (share fails)."""

    def __init__(self):
        super().__init__()
        self.broken = set()

    def share(self, ref):
        if ref.name in self.broken:
            raise OSError(errno.ENOENT, "No such file or directory")
        return super().share(ref)


class AdminConn:
    id = 0


class Pair:
    """A Python Core and a C core fed the same inputs."""

    def __init__(self, opts: dict):
        self.clock = FakeClock()
        self.config = Config(job_handle_prefix=PREFIX, **opts)
        self.py_spool, self.c_spool = Spool(), Spool()
        self.py = Core(self.config, self.py_spool, clock=self.clock, pid=1, version=b"v")
        self.c = CCore(self.config, self.c_spool, clock=self.clock, pid=1, version=b"v")
        self.c.c.set_journal(True)      # the Python Core journals by default (durability)
        self.next_id = 0
        self.live = []
        self.steps = []
        self.sent = []         # every (conn, bytes) both cores sent, in order

    def taken(self):
        """Both cores' output since the last call, each spooled send
        consumed as the acceptor would (its name released)."""
        got, want = list(self.c.out), list(self.py.out)
        self.c.out.clear()
        self.py.out.clear()
        for actions, spool in ((got, self.c_spool), (want, self.py_spool)):
            for action in actions:
                if type(action) is SendSpooled:
                    spool.release(action.ref)
        return got, want

    def check(self, what):
        self.steps.append(what)
        got, want = self.taken()
        assert got == want, f"after {self.steps[-12:]}"
        self.sent.extend(want)
        assert self.c.tick() == self.py.tick(), f"tick after {self.steps[-12:]}"
        got, want = self.taken()
        assert got == want, f"what the tick sent after {self.steps[-12:]}"
        self.sent.extend(want)
        assert self.c.spool_bytes == self.py.spool_bytes, f"spool bytes after {self.steps[-12:]}"
        assert self.c_spool.live == self.py_spool.live, f"spool names after {self.steps[-12:]}"
        assert self.c.c.take_journal() == bytes(self.py.journal), \
            f"journal after {self.steps[-12:]}"
        self.py.journal.clear()
        self.py.acks.clear()
        self.check_tables()

    def check_tables(self):
        for line in READ_ONLY:
            admin.run_admin(self.py, AdminConn, line, False)
            admin.run_admin(self.c, AdminConn, line, False)
            got, want = self.taken()
            assert got == want, f"{line} after {self.steps[-12:]}"
        py_status = b"".join(admin.status(self.py, [b"status"]))
        assert self.c.c.status() == py_status, f"status after {self.steps[-12:]}"
        py_jobs = b"".join(admin.show(self.py, [b"show", b"jobs"]))
        assert self.c.c.show_jobs() == py_jobs, f"show jobs after {self.steps[-12:]}"
        assert self.c.counts() == self.py.counts()
        for fn in self.py.functions.by_name.values():
            want = {"queued": fn.queued_by_priority(), "oldest": fn.oldest() or 0}
            for name in ("total", "running", "workers", "waiting", "submitted", "completed",
                         "failed", "exceptions", "requeued", "waits", "runs"):
                want[name] = getattr(fn, name)
            assert self.c.c.figures(fn.name) == want, \
                f"figures of {fn.name} after {self.steps[-12:]}"

    # -- inputs ------------------------------------------------------------------
    def connect(self):
        self.next_id += 1
        self.py.connect(self.next_id, "127.0.0.1", 30 + self.next_id)
        self.c.connect(self.next_id, "127.0.0.1", 30 + self.next_id)
        self.live.append(self.next_id)
        self.check(("connect", self.next_id))

    def packet(self, conn, ptype, args):
        py_args = c_args = args
        if args and type(args[-1]) is int:          # a spooled payload of that size
            py_args = args[:-1] + (self.py_spool.new(args[-1]),)
            c_args = args[:-1] + (self.c_spool.new(args[-1]),)
        self.py.packet(conn, ptype, py_args)
        self.c.packet(conn, int(ptype), c_args)
        self.check((conn, int(ptype), py_args))

    def admin(self, line):
        admin.run_admin(self.py, AdminConn, line, False)
        admin.run_admin(self.c, AdminConn, line, False)
        self.check(("admin", line))

    def lose(self, name):
        """A spool file becomes unusable: sharing it fails from now on."""
        self.py_spool.broken.add(name)
        self.c_spool.broken.add(name)
        self.check(("lose", name))

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
        assert self.c.c.maxqueue(name, *limits) == (fn is not None)
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
                pair.packet(conn, pick(RESULTS), (one, pick(DATA + SPOOLED)))
            elif kind == "status":
                pair.packet(conn, T.WORK_STATUS, (one, pick(NUMBERS), pick(NUMBERS)))
            else:
                pair.packet(conn, T.WORK_FAIL, (one + pick([b"", b"\0why"]),))
            return
    if kind == "submit":
        pair.packet(conn, pick(SUBMITS), (pick(FUNCS), pick(UNIQUES), pick(DATA + SPOOLED)))
    elif kind == "epoch":
        when = pick([b"%d" % (T0 + 5), b"%d" % (T0 - 5), b"0", b"-1", b"9" * 25])
        pair.packet(conn, T.SUBMIT_JOB_EPOCH, (pick(FUNCS), pick(UNIQUES), when,
                                               pick(DATA + SPOOLED)))
    elif kind == "reduce":
        ptype = pick([T.SUBMIT_REDUCE_JOB, T.SUBMIT_REDUCE_JOB_BACKGROUND])
        pair.packet(conn, ptype, (pick(FUNCS), pick(UNIQUES), pick([b"", b"r"]), b"",
                                  pick(DATA + SPOOLED)))
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
        pair.packet(conn, pick(RESULTS), (handle(draw, pair), pick(DATA + SPOOLED)))
    elif kind == "status":
        pair.packet(conn, T.WORK_STATUS, (handle(draw, pair), pick(NUMBERS), pick(NUMBERS)))
    elif kind == "fail":
        pair.packet(conn, T.WORK_FAIL, (handle(draw, pair),))
    elif kind == "echo":
        pair.packet(conn, T.ECHO_REQ, (pick(DATA + SPOOLED),))
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
    elif kind == "admin":
        line = pick(CHANGING + [b"cancel job " + handle(draw, pair)])
        pair.admin(line)
    elif kind == "lose":
        live = sorted(pair.py_spool.live)
        if live:
            pair.lose(pick(live))
    elif kind == "advance":
        pair.advance(pick([0.003, 0.04, 0.5, 1.0, 2.0, 6.0]))


def run(draw, steps: int) -> Pair:
    pair = Pair(draw(options()))
    for _ in range(steps):
        step(draw, pair)
    for conn in list(pair.live):
        pair.disconnect(conn)
    pair.advance(10.0)
    return pair
