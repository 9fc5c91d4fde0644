"""The C core (native/_core) behind the Python Core's interface, and the one
place that builds whichever core native.CORE chose.

Owns: turning the C core's output into Send/SendSpooled/Close actions on
`out` (drained after every call, so they keep their order with what the
loop appends itself), the spool and status board callbacks it is given,
and the read-only views admin.py and figures.py walk: `functions.by_name`
(a FnView per function), `conns` (a ConnView per connection) and
`jobs.jobs` (a JobView per job), rebuilt from the C table's rows when
asked (admin commands, the once-a-second worker count) and, for the
functions whose figures changed, when the loop reads `functions.dirty`.
Must not: decide anything about a job (the C core does, as core.py would).

A FnView lives as long as its function (figures.py keeps a slot and the
figures it last published on it). Its counters and histograms are the C
table's plus what figures.py carried over from an earlier function of
the same name (a function dropped and created again), kept as offsets.
"""
import logging
import os
import time

from .. import __version__, native
from .actions import Close, Send, SendSpooled
from .admin import run_admin
from .journaling import JOURNAL_ERROR, without
from .spoolref import SpoolRef

log = logging.getLogger(__name__)

COUNTERS = ("submitted", "completed", "failed", "exceptions", "requeued")


def new_core(config, spool, clock=time.time, pid=None, version=None, board=None):
    """The coordinator's core: the C one or core.Core, as native.CORE says."""
    if native.CORE == "c":
        return CCore(config, spool, clock, pid, version, board)
    from .core import Core
    return Core(config, spool, clock=clock, pid=pid, version=version, board=board)


class FnView:
    """One function's figures, as coordinator/queues.py Function has them."""
    __slots__ = ("index", "name", "total", "running", "workers", "queued", "waiting", "since",
                 "limits", "_k", "_c", "_carry", "slot", "shown", "busy", "idle")

    def __init__(self, index: int, k):
        self.index = index
        self._k = k             # the C core, for maxqueue
        self._c = dict.fromkeys(COUNTERS + ("waits", "runs"))
        self._carry = {}
        self.slot = self.shown = None
        self.busy = self.idle = 0

    def refresh(self, row) -> None:
        (_, self.name, self.total, self.running, self.workers, self.queued, self.waiting,
         self.since, self.limits, *counts, waits, runs) = row
        c = self._c
        c.update(zip(COUNTERS, counts))
        c["waits"], c["runs"] = waits, runs

    @property
    def maxq(self) -> list:
        return self.limits

    @maxq.setter
    def maxq(self, limits) -> None:
        self._k.maxqueue(self.name, *limits)
        self.limits = list(limits)

    def queued_by_priority(self) -> tuple:
        return self.queued

    def oldest(self) -> float:
        return self.since

    def __repr__(self):
        return f"<FnView {self.name!r}>"


def _figure(field, hist=False):
    def get(self):
        value, carry = self._c[field], self._carry.get(field)
        if carry is None:
            return value
        if hist:
            return carry if value is None else [a + b for a, b in zip(value, carry)]
        return value + carry

    def put(self, want):
        value = self._c[field]
        if hist:
            self._carry[field] = want if value is None or want is None else [
                a - b for a, b in zip(want, value)]
        else:
            self._carry[field] = want - value
    return property(get, put)


for _name in COUNTERS:
    setattr(FnView, _name, _figure(_name))
FnView.waits, FnView.runs = _figure("waits", True), _figure("runs", True)


class ConnView:
    __slots__ = ("seq", "id", "fd", "peer", "client_id", "exceptions", "running", "funcs",
                 "_order")

    def __init__(self, row, view):
        (self.seq, self.id, self.fd, self.peer, self.client_id, self.exceptions, self.running,
         order) = row
        self._order = [view(f) for f in order]
        self.funcs = dict.fromkeys(self._order)

    def registrations(self) -> list:
        """Function names, newest registration first (for `workers`)."""
        return [fn.name for fn in self._order]


class JobView:
    __slots__ = ("handle", "retries", "ignore", "bg", "unique")

    def __init__(self, row):
        self.handle, self.retries, self.ignore, self.bg, self.unique = row


class _Conn:
    """What admin.py needs of the connection a command came on."""
    __slots__ = ("id",)

    def __init__(self, conn_id):
        self.id = conn_id


class _ByName:
    def __init__(self, core):
        self._core = core

    def values(self) -> list:
        return self._core.functions.all()

    def get(self, name: bytes):
        return self._core.functions.lookup(name)

    def __getitem__(self, name: bytes):
        fn = self.get(name)
        if fn is None:
            raise KeyError(name)
        return fn

    def __len__(self):
        return len(self.values())

    def __iter__(self):
        return iter([fn.name for fn in self.values()])

    def __contains__(self, name) -> bool:
        return self.get(name) is not None


class Functions:
    """core.functions as admin.py and the loop use it."""

    def __init__(self, core):
        self._core = core
        self.views = {}         # C index -> FnView
        self._dirty = {}        # FnView -> None: figures changed, not yet published
        self.by_name = _ByName(core)

    @property
    def dirty(self) -> dict:
        """The functions whose figures changed since they were last
        published (the caller empties it), refreshed from the C table."""
        changed = self._core.c.take_dirty()
        if changed:
            for fn in self._refreshed(self._core.c.functions(changed)):
                self._dirty[fn] = None
        return self._dirty

    def view(self, index: int) -> FnView:
        fn = self.views.get(index)
        if fn is None:
            fn = self.views[index] = FnView(index, self._core.c)
        return fn

    def named(self, indexes) -> None:
        """Views of these functions (a connection's registrations), their
        names (and figures) read now."""
        fresh = [i for i in set(indexes) if self.views.get(i) is None
                 or not hasattr(self.views[i], "name")]
        if fresh:
            self._refreshed(self._core.c.functions(fresh))

    def _refreshed(self, rows) -> list:
        views = []
        for row in rows:
            fn = self.view(row[0])
            fn.refresh(row)
            views.append(fn)
        return views

    def all(self) -> list:
        return self._refreshed(self._core.c.functions(None))

    def lookup(self, name: bytes):
        index = self._core.c.function(bytes(name), False)
        return None if index is None else self._refreshed(self._core.c.functions([index]))[0]

    def get(self, name: bytes) -> FnView:
        index = self._core.call(self._core.c.function, bytes(name), True)
        return self._refreshed(self._core.c.functions([index]))[0]



class Conns:
    """core.conns as the loop, admin.py and figures.py use it."""

    def __init__(self, core):
        self._core = core

    def get(self, conn_id: int, default=None):
        row = self._core.c.conn(conn_id)
        return default if row is None else self._views([row])[0]

    def __getitem__(self, conn_id: int) -> ConnView:
        c = self.get(conn_id)
        if c is None:
            raise KeyError(conn_id)
        return c

    def values(self) -> list:
        return sorted(self._views(self._core.c.conns()), key=lambda c: c.seq)

    def _views(self, rows) -> list:
        functions = self._core.functions
        functions.named(i for row in rows for i in row[-1])
        return [ConnView(row, functions.view) for row in rows]

    def pop(self, conn_id: int, default=None):
        return default          # nothing to drop that disconnect() did not

    def __len__(self):
        return self._core.c.live[0]

    def __contains__(self, conn_id):
        return self._core.c.conn(conn_id) is not None

    def __iter__(self):
        return iter([c.id for c in self.values()])


class Jobs:
    def __init__(self, core):
        self._core = core

    @property
    def jobs(self) -> dict:
        return {row[0]: JobView(row) for row in self._core.c.jobs()}

    def __len__(self):
        return self._core.c.live[1]

    @property
    def count(self) -> int:
        """The highest handle number given out (the journal's TOP record)."""
        return self._core.c.count

    @count.setter
    def count(self, value: int) -> None:
        self._core.c.count = value


class _Registry:
    def __init__(self, core):
        self._core = core

    @property
    def wakeup(self) -> int:
        return self._core.c.settings[0]

    @wakeup.setter
    def wakeup(self, value: int) -> None:
        s = list(self._core.c.settings)
        s[0] = value
        self._core.c.settings = tuple(s)


class CCore:
    def __init__(self, config, spool, clock=time.time, pid=None, version=None, board=None):
        self.spool = spool
        self.clock = clock
        self.pid = os.getpid() if pid is None else pid
        self.version = version if version is not None else __version__.encode()
        self.board = board
        self.out: list = []
        self.started = clock()
        self.extra_stats = lambda: []
        self.c = native.core.Core(
            config.handle_prefix, config.worker_wakeup, config.job_retries,
            config.round_robin, config.exceptions, clock, share=self._share,
            release=self._release, board=board, max_spool_bytes=config.max_spool_bytes,
            keep=self._keep)
        self._config = config
        # The journal (durable/, as core.Core): this turn's records, taken
        # from the C core when read; `acks`: (index in out of its JOB_CREATED,
        # (job, number)) per job journaled this turn, for journal_failed().
        self._jbuf = None
        self.acks: list = []
        self.journal = None if config.durability == "none" else bytearray()
        self.functions = Functions(self)
        self.conns = Conns(self)
        self.jobs = Jobs(self)
        self.registry = _Registry(self)

    # -- settings a reload changes (coordinator/main.py configure) ----------------

    @property
    def config(self):
        return self._config

    @config.setter
    def config(self, config) -> None:
        self._config = config
        self.c.settings = (config.worker_wakeup, config.job_retries, config.round_robin,
                           config.max_spool_bytes, 0)

    def _setting(i):
        def get(self):
            return self.c.settings[i]

        def put(self, value):
            s = list(self.c.settings)
            s[i] = value
            self.c.settings = tuple(s)
        return property(get, put)

    job_retries = _setting(1)
    round_robin = _setting(2)
    del _setting

    @property
    def spool_bytes(self) -> int:
        return self.c.spool_bytes

    # -- the journal (coordinator/loop.py _commit, durable/) ----------------------

    @property
    def journal(self):
        """This turn's records (a bytearray the loop clears), None when off."""
        buf = self._jbuf
        if buf is not None:
            buf += self.c.take_journal()
        return buf

    @journal.setter
    def journal(self, buf) -> None:
        self.c.take_journal()
        self.c.set_journal(buf is not None)
        self._jbuf = None if buf is None else bytearray(buf)

    @property
    def journal_ok(self) -> bool:
        return self.c.journal_ok

    @journal_ok.setter
    def journal_ok(self, ok: bool) -> None:
        self.c.journal_ok = ok

    @property
    def journal_jobs(self) -> int:
        return self.c.journaled[0]

    @property
    def journal_live(self) -> int:
        return self.c.journaled[1]

    def journal_failed(self) -> None:
        """This turn's journal could not be written (journaling.failed): its
        JOB_CREATED answers become errors, those jobs are no longer journaled
        nor background ones, and their records leave the turn's bytes."""
        buf = self.journal
        out, dropped = self.out, set()
        for i, (job, no) in self.acks:
            out[i] = out[i]._replace(data=JOURNAL_ERROR)
            dropped.add(no)
            self.call(self.c.journal_failed, job, no)
        self.acks.clear()
        self.c.journal_ok = False
        if dropped:
            buf[:] = without(buf, dropped)

    def restore(self, subs) -> None:
        """Background jobs read back from the journal (durable/replay.py)."""
        restore = self.c.restore
        for sub in subs:
            self.call(restore, sub.no, sub.handle, sub.fname, sub.unique, sub.prio, sub.when,
                      sub.data, sub.spooled, sub.size, sub.runs)

    def snapshot(self) -> bytes:
        """The records that rebuild the journaled jobs (durable/compact.py)."""
        return self.c.snapshot()

    # -- spool callbacks ------------------------------------------------------

    def _share(self, handle: bytes, name: str, size: int):
        try:
            return self.spool.share(SpoolRef(name, size)).name
        except OSError as exc:
            log.error("job %s: spool file %s is unusable (%s)",
                      handle.decode("ascii", "replace"), name, exc.strerror or exc)
            return None

    def _release(self, name: str, size: int) -> None:
        self.spool.release(SpoolRef(name, size))

    def _keep(self, handle: bytes, name: str, size: int, on: bool) -> bool:
        """Keep (or let go) a journaled job's spooled payload; False when it
        cannot be kept (the submission is refused)."""
        if not on:
            self.spool.unkeep(SpoolRef(name, size))
            return True
        try:
            self.spool.keep(SpoolRef(name, size))
        except OSError as exc:
            log.error("job %s: its payload cannot be kept in the data directory (%s); "
                      "refused", repr(handle)[2:-1], exc.strerror or exc)
            return False
        return True

    # -- entry points -----------------------------------------------------------

    def call(self, op, *args):
        """op(*args) on the C core, then its output onto `out` (even when op
        raised: what it sent before stays in order)."""
        try:
            return op(*args)
        finally:
            self._take()

    def _take(self) -> None:
        out = self.out
        if self._jbuf is not None:
            base = len(out)
            self.acks += [(base + i, (job, no)) for i, job, no in self.c.take_acks()]
        for item in self.c.drain():
            if len(item) == 2:
                conn, data = item
                out.append(Close(conn) if data is None else Send(conn, data))
            else:
                conn, head, name, size = item
                out.append(SendSpooled(conn, head, SpoolRef(name, size)))

    def connect(self, conn: int, peer, fd: int) -> None:
        self.call(self.c.connect, conn, peer, fd)

    def packet(self, conn: int, ptype: int, args: tuple) -> None:
        self.call(self.c.packet, conn, ptype, args)

    def disconnect(self, conn: int) -> None:
        self.call(self.c.disconnect, conn)

    def tick(self):
        return self.call(self.c.tick)

    def admin(self, conn: int, line: bytes, crlf: bool) -> None:
        if self.c.conn(conn) is not None:
            run_admin(self, _Conn(conn), line, crlf)

    # -- what admin.py and main.py call -----------------------------------------

    def close(self, c) -> None:
        self.out.append(Close(c.id))
        self.disconnect(c.id)

    def cancel(self, handle: bytes) -> bool:
        return self.call(self.c.cancel, handle)

    def drop_function(self, fn: FnView) -> bool:
        """Admin `drop function` after its checks (core.Core.drop_function)."""
        if self.call(self.c.drop, fn.index) != "ok":
            return False
        self.functions.views.pop(fn.index, None)     # a new name gets a new view
        return True

    def counts(self) -> tuple:
        return self.c.counts()
