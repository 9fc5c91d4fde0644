"""The coordinator's loop: drain every inbound ring in batches, feed the
records to the Core (the single writer of jobs, queues and the worker
registry), route the Core's answers to the outbound ring of the acceptor
that owns each connection, and sleep on the doorbell when all is quiet.

It never touches a client socket and never reads a payload file: big
payloads arrive and leave as spool-file names.
"""
import logging
import select
import time

from .. import process
from ..durable import store
from ..durable.compact import Compactor
from ..durable.format import top as journal_top
from ..acceptor.spool import SpoolNames
from ..ipc import layout, messages
from ..protocol.encoder import encode
from ..protocol.packets import T, split_args
from .actions import Close, Send, SendSpooled
from .ccore import new_core
from .figures import Figures, extra_stats
from .native_rings import NativeRings, native_of
from .spoolref import SpoolRef

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 1.0   # safety net only: wake-ups come from the doorbell
RECOUNT_EVERY = 1.0  # seconds between counts of busy and idle workers
BATCH = 256
# A connection that registered more functions than this closed: hand the
# memory its registrations held back to the system at the end of the turn.
RELEASE_ABOVE = 10_000
# The answers to a request whose handling failed (before its connection closes).
INTERNAL_ERROR = encode(T.ERROR, b"SERVER_ERROR", b"Internal server error")
INTERNAL_ERROR_TEXT = b"ERR SERVER_ERROR Internal+server+error\r\n"


class CoordinatorLoop:
    def __init__(self, config, segment, board, my_bell, acceptor_bells, control, inbox,
                 pid, version, counters=None):
        n = segment.pairs         # acceptor slots, spares for a reload included
        self.spool = SpoolNames(config.spool_dir, store.payloads_dir(config))
        self.board = board
        self.core = new_core(config, self.spool, pid=pid, version=version, board=board)
        # Per-function figures for monitoring, published once per turn.
        self.figures = Figures(counters) if counters is not None else None
        # Busy/idle workers are counted again (a walk over the registrations)
        # at most every RECOUNT_EVERY s, when something changed since.
        self.recount, self.counted = False, 0.0
        # The spool held by jobs, for the acceptors' --max-spool-bytes check.
        self.counters, self.spool_shown = counters, -1
        if counters is not None:
            self.core.extra_stats = lambda: extra_stats(counters) + self._journal_stats()
        self.rings_in = [segment.inbound(i) for i in range(n)]
        self.rings_out = [segment.outbound(i) for i in range(n)]
        # (slot, inbound ring) of the slots with an acceptor, attached by the
        # supervisor before it starts one: the spare slots a reload rolls
        # into cost the loop nothing meanwhile.
        self.live = []
        self.bell, self.acceptor_bells = my_bell, acceptor_bells
        self.control, self.inbox = control, inbox
        self.pending = [[] for _ in range(n)]     # records waiting for ring space
        self.conns = [set() for _ in range(n)]    # live connection ids per acceptor
        self.gens = [0] * n
        self.consumed = [0] * n    # records taken from each inbound ring
        self.done = [0] * n        # ... of which the answers are published
        # A merged SEND record stays within what one packet may take, so it
        # always fits the ring (the config keeps spool_threshold <= ring/8).
        self.merge_limit = config.spool_threshold
        # Bigger sends are cut into records of this size (half what one
        # record may carry, so the record head always fits too).
        self.piece = max(layout.max_payload(self.rings_out[0].capacity) // 2, self.merge_limit) \
            if n else self.merge_limit
        # The journal (durable/): replayed into the Core now, before any
        # request is read; None with --durability none.
        self.writer = store.open_journal(config, self.core)
        self.compactor = Compactor(self.writer) if self.writer is not None else None
        self.retry_at = 0.0       # when to try the journal again after a failure
        # the highest handle number in the journal
        self.top = self.core.jobs.count if self.writer is not None else 0
        self.running = True
        self.release = False      # give freed memory back at the end of the turn
        self.deadline = None
        self.ep = select.epoll()
        # The doorbell is edge-triggered: every ring is one event and the
        # counter is never read back (one syscall less per wake-up).
        self.ep.register(my_bell.fileno(), select.EPOLLIN | select.EPOLLET)
        for fd in (control.fileno(), inbox.fileno()):
            self.ep.register(fd, select.EPOLLIN)
        self.inbound = {
            messages.CONNECT: self._on_connect,
            messages.SPOOLED: self._on_spooled,
            messages.ADMIN: self._on_admin,
            messages.CLOSED: self._on_closed,
            messages.RELAY: self._on_relay,
        }
        # The C core serves the rings itself: PACKET records never reach Python.
        native = native_of(self.core)
        self.fast = NativeRings(self, native) if native is not None else None

    # -- the loop ---------------------------------------------------------------

    def run(self, heartbeat=None) -> None:
        while self.running:
            for fd, _ in self.ep.poll(self._timeout(), 16):
                if fd == self.bell.fileno():
                    pass
                elif fd == self.control.fileno():
                    self._on_control()
                else:
                    self._on_signals()
            for _, ring in self.live:
                ring.reader_awake()
            self._drain()
            # With the rings served in C, the timers' output stays in C too.
            self.deadline = (self.fast or self.core).tick()
            if self.writer is not None:
                self._commit()
            if self.counters is not None and self.core.spool_bytes != self.spool_shown:
                # Before the answers go out: whoever saw a job end sees its room.
                self.spool_shown = self.core.spool_bytes
                self.counters.set_spool_held(self.spool_shown)
            self._route()
            self._publish()
            if self.figures is not None:
                self._publish_figures()
            if self.release:
                self.release = False
                process.release_freed_memory()
            if heartbeat:
                heartbeat()

    def _commit(self) -> None:
        """Write this turn's journal before any answer leaves (JOB_CREATED
        only for what is in the file); a failed write turns the turn's
        JOB_CREATED answers into errors (Core.journal_failed) and is tried
        again every second (with a TOP record when nothing else waits)."""
        core, writer = self.core, self.writer
        buf = core.journal
        if not core.journal_ok:
            now = time.monotonic()
            if now < self.retry_at:
                return
            self.retry_at = now + 1.0
            if not buf:
                self.top = -1     # a TOP record tries the file
        count = core.jobs.count
        if count != self.top and buf is not None:
            # Foreground handles too: a restart never gives one out again.
            self.top = count
            buf += journal_top(count)
        if buf:
            if writer.commit(buf):
                buf.clear()
                core.acks.clear()
                core.journal_ok = True
            else:
                self.top = -1
                core.journal_failed()
                self.retry_at = time.monotonic() + 1.0
        if writer.unsynced:
            writer.tick()
        if self.counters is not None:
            self.counters.set_journal(writer.size, core.journal_jobs,
                                      int(writer.synced_wall * 1e6),
                                      int(writer.sync_seconds * 1e6))
        comp = self.compactor
        if comp.child is not None:
            comp.poll()
        elif core.journal_ok and comp.due(core.journal_live):
            comp.start(core)      # everything the Core holds is in the file now

    def _journal_stats(self) -> list:
        writer = self.writer
        if writer is None:
            return [("journal.durability", "none")]
        comp = self.compactor
        return [("journal.durability", self.core.config.durability),
                *writer.stats(self.core.journal_jobs),
                ("journal.compactions", comp.runs),
                ("journal.compaction_longest_pause_seconds", f"{comp.longest_pause:.6f}")]

    def _publish_figures(self) -> None:
        """Monitoring figures: a failure there must not stop the serving."""
        dirty = self.core.functions.dirty
        if dirty:
            self.recount = True
        try:
            if dirty:               # first: a new function gets its slot
                self.figures.publish(dirty)
            now = time.monotonic()
            if self.recount and now - self.counted >= RECOUNT_EVERY:
                self.recount, self.counted = False, now
                self.figures.count_workers(self.core.conns.values(), dirty)
                if dirty:
                    self.figures.publish(dirty)
        except Exception:
            log.exception("publishing the function figures failed; they may be stale")
            dirty.clear()

    def _timeout(self) -> float:
        if self.fast.waiting if self.fast is not None else any(self.pending):
            return 0.001
        timeout = IDLE_TIMEOUT if self.deadline is None else min(self.deadline, IDLE_TIMEOUT)
        if self.writer is not None and self.writer.unsynced:
            timeout = min(timeout, max(0.0, self.writer.synced_at + 1.0 - time.monotonic()))
        for _, ring in self.live:
            if not ring.reader_idle():
                return 0
        return max(timeout, 0)

    def _drain(self) -> None:
        if self.fast is not None:
            self.fast.drain()
            return
        for i, ring in self.live:
            for _ in range(16):
                batch = ring.pop_batch(BATCH)
                if not batch:
                    break
                self.consumed[i] += len(batch)
                at = 0
                while at < len(batch):
                    at = self._apply(i, batch, at)

    def _apply(self, i: int, batch: list, at: int) -> int:
        """Feed batch[at:] to the Core. A record whose handling raises costs
        only its connection (see _contain); returns where to go on."""
        packet, unpack, split = self.core.packet, messages.unpack_packet_head, split_args
        kind_packet, start = messages.PACKET, messages.PACKET_HEAD_SIZE
        rec = None
        try:
            for rec in batch[at:] if at else batch:
                if rec[0] == kind_packet:     # the common case, inline
                    _, conn, ptype = unpack(rec)
                    packet(conn, ptype, split(ptype, rec[start:]))
                else:
                    kind, conn, *fields = messages.parse(rec)
                    self.inbound[kind](i, conn, *fields)
        except Exception:
            # Found by identity (each record is its own object), so the
            # loop above pays nothing for knowing where it was.
            k = next(j for j in range(at, len(batch)) if batch[j] is rec)
            self._contain(i, rec)
            return k + 1
        return len(batch)

    def _contain(self, i: int, rec: bytes) -> None:
        """The handling of `rec` raised: log the traceback, answer the
        request with an error and close its connection (the Core forgets
        it; jobs it ran are requeued), as a web server answers 500 and
        serves on. A failure to forget it is logged and the rest goes on."""
        kind, conn = rec[0], messages.conn_of(rec)
        log.exception("request of kind %d from connection %#x failed; closing that "
                      "connection", kind, conn)
        if kind != messages.CLOSED:
            reply = INTERNAL_ERROR_TEXT if kind == messages.ADMIN else INTERNAL_ERROR
            self.core.out.append(Send(conn, reply))
        self.core.out.append(Close(conn))
        self.conns[i].discard(conn)
        try:
            self.core.disconnect(conn)
        except Exception:
            log.exception("forgetting connection %#x failed too; dropped as it is", conn)
            self.core.conns.pop(conn, None)

    # -- inbound records ------------------------------------------------------

    def _on_connect(self, i, conn, fd, peer):
        self.conns[i].add(conn)
        self.core.connect(conn, peer, fd)

    def _on_spooled(self, i, conn, ptype, name, size, args):
        self.core.packet(conn, ptype, tuple(args.split(b"\0")[:-1]) + (SpoolRef(name, size),))

    def _on_admin(self, i, conn, crlf, line):
        self.core.admin(conn, line, crlf)

    def _on_relay(self, i, conn, close_after, data):
        # Into the Core's output, so it follows the answers to earlier requests.
        self.core.out.append(Send(conn, data))
        if close_after:
            self.core.out.append(Close(conn))

    def _on_closed(self, i, conn, _rest):
        self.conns[i].discard(conn)
        c = self.core.conns.get(conn)
        if c is not None and len(c.funcs) > RELEASE_ABOVE:
            self.release = True
        self.core.disconnect(conn)

    # -- outbound -------------------------------------------------------------

    def _route(self) -> None:
        if self.fast is not None:
            self.fast.route()
            return
        out = self.core.out
        if not out:
            return
        gens, pending, limit = self.gens, self.pending, self.merge_limit
        # Sends to one connection become one SEND record (fewer records to
        # push, pop and apply) as long as nothing else for it comes between,
        # so its bytes keep their order. A run is [size, head, data...],
        # joined into its record as soon as it is complete, and each action
        # is dropped from `out` once its bytes are in a record: a big reply
        # (an admin listing) is held whole only once, as records.
        runs = {}
        for k, action in enumerate(out):
            out[k] = None
            conn = action[0]
            i = conn >> 56
            if (conn >> messages.SERIAL_BITS) & 0xFFFF != gens[i]:   # a dead acceptor's
                if type(action) is SendSpooled:
                    self.spool.release(action.ref)
                continue
            kind = type(action)
            if kind is Send:
                data = action[1]
                run = runs.get(conn)
                if run is not None and run[0] + len(data) <= limit:
                    run[0] += len(data)
                    run.append(data)
                    continue
                if run is not None:
                    _close_run(run)
                if len(data) > self.piece:
                    runs.pop(conn, None)
                    self._pieces(pending[i], conn, data)
                    continue
                recs = pending[i]
                runs[conn] = [len(data), recs, len(recs), messages.send_head(conn), data]
                recs.append(None)
                continue
            run = runs.pop(conn, None)
            if run is not None:
                _close_run(run)
            if kind is SendSpooled:
                pending[i].append(messages.sendfile(conn, action.head, action.ref.name,
                                                    action.ref.size))
            elif kind is Close:
                pending[i].append(messages.close(conn))
        out.clear()
        for run in runs.values():
            _close_run(run)

    def _pieces(self, recs: list, conn: int, data: bytes) -> None:
        """More bytes than one record may carry: several SEND records, in order."""
        view, head, step = memoryview(data), messages.send_head(conn), self.piece
        for at in range(0, len(data), step):
            recs.append(head + view[at:at + step])

    def _publish(self) -> None:
        if self.fast is not None:
            self.fast.publish()
            return
        for i, recs in enumerate(self.pending):
            if recs:
                ring = self.rings_out[i]
                n = ring.push_many(recs)
                if n:
                    del recs[:n]
                    if ring.writer_should_ring():
                        self.acceptor_bells[i].ring()
            if not recs and self.done[i] != self.consumed[i]:
                # Everything acceptor i sent so far is answered and on its ring.
                self.done[i] = self.consumed[i]
                self.board.set_done(i, self.done[i])

    # -- control: an acceptor died ----------------------------------------------

    def _on_control(self) -> None:
        lines = self.control.receive()
        if lines is None:          # the supervisor is gone
            self.running = False
            return
        for words in lines:
            if words and words[0] == "lost":
                self.acceptor_lost(int(words[1]), retired=words[2:] == ["retired"])

    def acceptor_lost(self, i: int, retired: bool = False) -> None:
        """Finish what the dead acceptor had published, drop its connections
        (their jobs are requeued by the Core), clear its rings, and tell the
        supervisor it may start a new one."""
        self._drain()
        for conn in sorted(self.conns[i]):
            self.core.disconnect(conn)
        self.conns[i].clear()
        self._route()
        held = self.fast.take_pending(i) if self.fast is not None else self.pending[i]
        leftovers = held + self.rings_out[i].pop_batch(1 << 30)
        for rec in leftovers:
            fields = messages.parse(rec)
            if fields[0] == messages.SENDFILE:
                self.spool.release(SpoolRef(fields[3], fields[4]))
        self.pending[i] = []
        self.live = [(j, ring) for j, ring in self.live if j != i]
        self.rings_in[i].reset()
        self.rings_out[i].reset()
        self.consumed[i] = self.done[i] = 0
        self.board.set_done(i, 0)
        self.gens[i] = (self.gens[i] + 1) & 0xFFFF
        if self.fast is not None:
            self.fast.set_gen(i, self.gens[i])
        self.control.send("reset", i, self.gens[i])
        if retired:     # a reload replaced it: expected, not a fault
            log.info("acceptor %d retired; its connections were closed and their jobs requeued", i)
        else:
            log.warning("acceptor %d lost; its connections were dropped and their jobs requeued", i)

    def attach(self, i: int) -> None:
        """An acceptor is about to start in slot i."""
        if all(j != i for j, _ in self.live):
            self.live = sorted(self.live + [(i, self.rings_in[i])], key=lambda pair: pair[0])

    def close(self) -> None:
        """Let go of the segment (the C core holds it while serving the rings)."""
        if self.fast is not None:
            self.fast.close()
            self.fast = None
        self.ep.close()

    def _on_signals(self) -> None:
        if self.inbox.take():
            self.running = False


def _close_run(run: list) -> None:
    """Join a run of sends (see CoordinatorLoop._route) into its SEND record."""
    recs, at = run[1], run[2]
    run[0] = run[1] = run[2] = b""
    recs[at] = b"".join(run)
