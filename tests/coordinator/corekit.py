"""Test kit for the coordinator core: a fake spool that counts live names, a
fake clock, and helpers that feed packets and decode what comes out.

No processes, sockets or files. Every SendSpooled the core emits is consumed
(released) here, as the acceptor would after sending the file."""
from mpgearman.config import Config
from mpgearman.coordinator.core import Close, Core, Send, SendSpooled
from mpgearman.coordinator.spoolref import SpoolRef
from mpgearman.coordinator.workers import pairs
from mpgearman.protocol.packets import HEADER, HEADER_SIZE, RES, T

T0 = 1_700_000_000.0


class FakeSpool:
    def __init__(self):
        self.live = set()
        self.serial = 0
        self.shares = 0

    def new(self, size: int) -> SpoolRef:
        self.serial += 1
        ref = SpoolRef(f"in.{self.serial}", size)
        self.live.add(ref.name)
        return ref

    def share(self, ref: SpoolRef) -> SpoolRef:
        assert ref.name in self.live, f"share of a dead ref {ref}"
        self.serial += 1
        self.shares += 1
        new = SpoolRef(f"link.{self.serial}", ref.size)
        self.live.add(new.name)
        return new

    def release(self, ref: SpoolRef) -> None:
        assert ref.name in self.live, f"double release of {ref}"
        self.live.remove(ref.name)

    # The payloads of journaled jobs, kept for a restart.
    kept: set = frozenset()

    def keep(self, ref: SpoolRef) -> None:
        assert ref.name in self.live, f"keep of a dead ref {ref}"
        self.kept = self.kept | {ref.name}

    def unkeep(self, ref: SpoolRef) -> None:
        assert ref.name in self.kept, f"unkeep of {ref}, never kept"
        self.kept = self.kept - {ref.name}


class FakeClock:
    def __init__(self, t=T0):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def frames(data: bytes) -> list:
    """Decode concatenated \\0RES packets into (type, payload) pairs."""
    out, pos = [], 0
    while pos < len(data):
        magic, ptype, size = HEADER.unpack_from(data, pos)
        assert magic == RES
        start = pos + HEADER_SIZE
        out.append((ptype, data[start:start + size]))
        pos = start + size
    assert pos == len(data)
    return out


class Harness:
    def __init__(self, **options):
        options.setdefault("job_handle_prefix", "H:vm")
        self.config = Config(**options)
        self.spool = FakeSpool()
        self.clock = FakeClock()
        self.core = Core(self.config, self.spool, clock=self.clock, pid=13651,
                         version=b"1.1.20+ds")
        self.next_id = 0
        self.log = []          # every action ever taken, in order

    # -- connections --------------------------------------------------------
    def conn(self, peer="127.0.0.1", fd=None) -> int:
        self.next_id += 1
        self.core.connect(self.next_id, peer, 37 + self.next_id if fd is None else fd)
        return self.next_id

    def worker(self, *functions, sleep=False) -> int:
        w = self.conn()
        for f in functions:
            self.send(w, T.CAN_DO, f)
        if sleep:
            assert self.send(w, T.PRE_SLEEP) == []
        return w

    # -- input ---------------------------------------------------------------
    def send(self, conn, ptype, *args) -> list:
        self.core.packet(conn, ptype, args)
        return self.take()

    def admin(self, conn, line: bytes, crlf=True):
        self.core.admin(conn, line, crlf)
        acts = [a for a in self.take() if a.conn == conn]
        if not acts:
            return None
        assert all(type(a) is Send for a in acts), acts    # a listing comes in pieces
        return b"".join(a.data for a in acts)

    def tick(self):
        delay = self.core.tick()
        return delay, self.take()

    def take(self) -> list:
        acts = list(self.core.out)
        self.core.out.clear()
        for a in acts:
            if type(a) is SendSpooled:
                self.spool.release(a.ref)      # the acceptor sent the file
        self.log.extend(acts)
        return acts

    # -- shortcuts ------------------------------------------------------------
    def submit(self, conn, fn, unique=b"", data=b"x", ptype=T.SUBMIT_JOB) -> bytes:
        acts = [a for a in self.send(conn, ptype, fn, unique, data) if a.conn == conn]
        (ptype_out, payload), = got(acts, conn)
        assert ptype_out == T.JOB_CREATED, (ptype_out, payload)
        return payload

    def grab(self, w, ptype=T.GRAB_JOB):
        (p, payload), = got(self.send(w, ptype), w)
        return p, payload

    def grab_handle(self, w) -> bytes | None:
        p, payload = self.grab(w)
        return None if p == T.NO_JOB else payload.split(b"\0")[0]


def got(acts, conn) -> list:
    """(type, payload) of every binary packet sent to `conn`; a spooled
    payload shows as its head arguments followed by b'<spool N>'."""
    out = []
    for a in acts:
        if a.conn != conn:
            continue
        if type(a) is Send:
            out.extend(frames(a.data))
        elif type(a) is SendSpooled:
            magic, ptype, size = HEADER.unpack_from(a.head, 0)
            prefix = a.head[HEADER_SIZE:]
            assert size == len(prefix) + a.ref.size
            out.append((ptype, prefix + b"<spool %d>" % a.ref.size))
        else:
            out.append(("close", None))
    return out


def types(acts, conn) -> list:
    return [p for p, _ in got(acts, conn)]


__all__ = ["Close", "Send", "SendSpooled", "T", "Harness", "FakeSpool", "FakeClock",
           "frames", "got", "types", "T0"]


def check_invariants(core) -> None:
    """Every counter and cross-reference of the core agrees with the jobs."""
    jobs = list(core.jobs.jobs.values())
    queued_ids = {}
    for fn in core.functions.by_name.values():
        mine = [j for j in jobs if j.fn is fn]
        assert fn.total == len(mine), fn
        assert fn.running == sum(1 for j in mine if j.worker is not None), fn
        assert fn.waiting == sum(1 for j in mine if j.when), fn
        assert fn.queued == sum(len(q) for q in fn.queues or ()), fn
        assert (fn in core.functions.ready) == (fn.queued > 0), fn
        assert fn.workers == sum(len(pairs(c.funcs[fn])) for c in core.conns.values()
                                 if fn in c.funcs), fn
        for q in fn.queues or ():
            for j in q:
                assert id(j) not in queued_ids and j.fn is fn
                queued_ids[id(j)] = j
    assert core.functions.ready <= set(core.functions.by_name.values())
    for j in jobs:
        placed = (j.worker is not None) + bool(j.when) + (id(j) in queued_ids)
        assert placed == 1, j
        if j.worker is not None:
            assert j in j.worker.running and j.worker.alive
        for c in j.clients:
            assert j in c.attached and c.alive
        if j.indexed == 1:
            assert j.fn.by_unique[j.unique] is j
    assert len(queued_ids) == sum(1 for j in jobs if id(j) in queued_ids)
    for c in core.conns.values():
        assert all(j.worker is c for j in c.running)
        assert all(c in j.clients for j in c.attached)
    assert len(core.deadlines) == sum(1 for j in jobs if j.timer)


def check_no_lost_wakeup(core) -> None:
    """With worker_wakeup=0, no worker waiting for a NOOP is registered for a
    function that has a runnable job queued."""
    for c in core.conns.values():
        if c.sleeping and not c.noop_sent:
            for fn in c.funcs:
                assert all(j.ignore for q in fn.queues or () for j in q), (c, fn)
