"""The acceptor's event loop: one epoll over its listening socket(s), its
connections and its doorbell.

Each turn: accept, read and decode what arrived (records for the
coordinator collect in `pending`), apply the coordinator's answers from the
outbound ring, write to sockets, then publish `pending` on the inbound ring
in one batch and ring the coordinator's doorbell only if it sleeps.

When the inbound ring is full the acceptor stops reading sockets until the
coordinator has caught up (back-pressure instead of unbounded buffering):
a connection that has input meanwhile is taken out of the poll for input
("muted", or level-triggered epoll would wake the loop at once, for ever)
and put back once everything pending is published. One turn reads at most
about half a ring's worth, so what waits in `pending` stays bounded however
many connections have input at once.

A connection that leaves a request unfinished too long is cut
(deadlines.py); an idle one never is. At its share of --max-connections,
or out of descriptors, the acceptor takes its listeners out of the poll
until it can accept again.
"""
import errno
import logging
import select
import socket
import time

from .. import process
from ..ipc import messages
from ..protocol.encoder import encode
from ..protocol.packets import PacketType as T
from . import inbound, outbound
from .connection import Connection
from .deadlines import Deadlines

log = logging.getLogger(__name__)

IN = select.EPOLLIN
OUT = select.EPOLLOUT
IDLE_TIMEOUT = 1.0   # safety net only: wake-ups come from the doorbell
ACCEPT_PAUSE = 0.1   # out of descriptors: stop accepting for this long
LINGER = 5.0         # after we close a connection, read and drop its input this long
FULL_WAIT = (0.001, 0.016)   # ring full: retry after this long, doubling while it stays full
LOG_EVERY = 60.0     # at capacity again and again: one log line per this long
SWEEP = 0.5          # look for requests past their deadline this often (at most)
RELEASE_ABOVE = 1 << 20  # a connection closed holding more: return the memory to the system
OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Acceptor:
    def __init__(self, index, gen, config, listeners, ring_in, ring_out,
                 my_bell, coord_bell, spool, inbox, board=None, figures=None, slots=1):
        self.index, self.gen, self.config = index, gen, config
        # The number a connection is shown as (`workers`, logs): its
        # descriptor * slots + our slot, unique among all acceptors' and
        # small, as gearmand's fd column.
        self.slots = slots
        self.listeners = {s.fileno(): s for s in listeners}
        self.ring_in, self.ring_out = ring_in, ring_out   # to / from the coordinator
        self.bell, self.coord_bell = my_bell, coord_bell
        self.spool = spool
        self.conns = {}          # conn id -> Connection
        self.by_fd = {}          # fd -> Connection
        self.pending = []        # records not yet on the inbound ring
        self.sent = 0            # records ever queued for the coordinator
        self.ring_full = False   # the last publish left records behind
        self.full_wait = FULL_WAIT[0]
        self.muted = set()       # connections not polled for input while the ring is full
        # Socket bytes one turn may read (inbound.read counts them).
        self.budget = max(ring_in.capacity // 2, 1)
        self.turn_read = 0
        self.board = board       # job status board, for local GET_STATUS answers
        # This acceptor's line of the counters mapping (connections, spooled
        # bytes), written on each accept and close, never per packet.
        self.figures = figures
        self.prefix = config.handle_prefix + b":"
        self.touched = set()     # connections with output to flush
        self.recv_buf = bytearray(inbound.RECV_SIZE)   # every socket read lands here
        self.recv_view = memoryview(self.recv_buf)
        self.serial = 0
        self.writing = 0         # bytes of the bodies being spooled now
        self.running = True
        self.lingering = set()       # connections closed on our side, draining input
        self.accept_paused = 0.0     # out of descriptors: monotonic time to accept again
        # --max-connections is split among the acceptors of a set; at this
        # many connections we stop accepting until one closes.
        self.capacity = share(config.max_connections, config.acceptor_count, index)
        self.at_capacity = False
        self.capacity_logged = None   # monotonic time the last pause was logged
        self.log_resume = False       # ... and its end is not yet
        self.listening = True        # the listeners are in the poll
        self.deadlines = Deadlines(config.request_timeout)
        self.now = time.monotonic()  # as of this turn's poll
        self.next_sweep = 0.0
        self.local_answers = 0       # GET_STATUS answered here, not by the coordinator
        self.release = False         # a connection that held much memory has closed
        self.ep = select.epoll()
        for fd in self.listeners:
            self.ep.register(fd, IN)
        self.bell_fd = my_bell.fileno()
        self.ep.register(self.bell_fd, IN)
        self.inbox = inbox       # signals: SIGTERM stops the loop
        self.inbox_fd = inbox.fileno()
        self.ep.register(self.inbox_fd, IN)

    # -- the loop ---------------------------------------------------------

    def run(self, heartbeat=None) -> None:
        while self.running:
            timeout = self._timeout()
            events = self.ep.poll(timeout, 512)
            self.ring_out.reader_awake()
            self.now = time.monotonic()
            self.turn_read = 0
            for fd, mask in events:
                self._event(fd, mask)
            self._drain_outbound()
            self._flush_touched()
            self._publish()
            if self.accept_paused and self.now >= self.accept_paused:
                self.accept_paused = 0.0
                self._update_listening()
            if self.deadlines.open and self.now >= self.next_sweep:
                self._sweep()
            if self.lingering:
                self._end_lingering()
            if self.release:
                self.release = False
                process.release_freed_memory()
            if heartbeat:
                heartbeat()

    def _timeout(self) -> float:
        if self.touched or not self.ring_out.reader_idle():
            return 0
        if self.ring_full:
            return self.full_wait    # retry soon (the coordinator rings no bell for room)
        if self.accept_paused or self.lingering:
            return ACCEPT_PAUSE
        return SWEEP if self.deadlines.open else IDLE_TIMEOUT

    def _event(self, fd, mask) -> None:
        if fd in self.listeners:
            self._accept(self.listeners[fd])
        elif fd == self.bell_fd:
            self.bell.drain()
        elif fd == self.inbox_fd:
            if self.inbox.take():
                self.running = False
        else:
            conn = self.by_fd.get(fd)
            if conn is None:
                return
            if conn.linger:
                if not inbound.discard(self, conn):
                    self.close_conn(conn)
                return
            if mask & OUT:
                self.touched.add(conn)
            if mask & (IN | select.EPOLLHUP | select.EPOLLERR) and conn.reading:
                self._input(conn, mask)

    def _input(self, conn, mask) -> None:
        if self.ring_full or self.turn_read >= self.budget:
            if not mask & (select.EPOLLHUP | select.EPOLLERR):
                if self.ring_full:       # back-pressure: read once the ring has room
                    self._mute(conn)
                return                   # else: next turn (it stays readable)
            # A hung-up socket is polled whatever its mask: read it to its end
            # (no more than the kernel holds for it) rather than spin.
        if not inbound.read(self, conn):
            self.close_conn(conn)

    def _mute(self, conn) -> None:
        self.muted.add(conn)
        self._set_mask(conn, conn.mask & ~IN)

    def _unmute_all(self) -> None:
        muted, self.muted = self.muted, set()
        self.deadlines.restart(muted, self.now)
        for conn in muted:
            if conn.id in self.conns and conn.reading and not conn.closing:
                self._set_mask(conn, conn.mask | IN)

    def _set_mask(self, conn, mask) -> None:
        if mask != conn.mask:
            conn.mask = mask
            self.ep.modify(conn.fd, mask)

    def _drain_outbound(self, rounds=64) -> None:
        for _ in range(rounds):
            batch = self.ring_out.pop_batch(256)
            if not batch:
                return
            outbound.apply(self, batch)

    def record(self, conn, rec) -> None:
        """Queue a record for the coordinator on behalf of `conn`."""
        self.pending.append(rec)
        self.sent += 1
        conn.last = self.sent

    def reserve(self, conn, size: int) -> None:
        """`conn` is writing a body of `size` bytes to the spool (0: no
        more); shown to every process for --max-spool-bytes."""
        self.writing += size - conn.reserved
        conn.reserved = size
        if self.figures is not None:
            self.figures.writing(self.writing)

    def local_status(self, conn, arg) -> bool:
        """Answer GET_STATUS from the status board if that keeps replies in
        order (the coordinator has answered all of `conn`'s earlier records)
        and the board knows the answer. False = ask the coordinator."""
        board = self.board
        if board is None or board.done(self.index) < conn.last:
            return False
        handle = arg.partition(b"\0")[0]
        digits = handle[len(self.prefix):]
        if not (handle.startswith(self.prefix) and digits.isdigit()
                and digits[0] != 48 and len(handle) <= 63):
            return False
        status = board.lookup(int(digits))
        if status is None:
            return False
        self._drain_outbound(rounds=1 << 30)   # the earlier answers go first
        conn.queue(encode(T.STATUS_RES, handle, *(b"%d" % v for v in status)))
        self.touched.add(conn)
        return True

    def _flush_touched(self) -> None:
        touched, self.touched = self.touched, set()
        for conn in touched:
            if conn.id not in self.conns:
                continue
            try:
                done = conn.flush()
            except (BlockingIOError, InterruptedError):
                done = False
            except OSError:
                self.close_conn(conn)
                continue
            if done and conn.closing:
                self._linger(conn)
                continue
            reading = conn.reading and not conn.closing and conn not in self.muted
            self._set_mask(conn, (IN if reading else 0) | (0 if done else OUT))

    def _publish(self) -> None:
        if self.pending:
            n = self.ring_in.push_many(self.pending)
            if n:
                del self.pending[:n]
                if self.ring_in.writer_should_ring():
                    self.coord_bell.ring()
                self.full_wait = FULL_WAIT[0]
            else:
                self.full_wait = min(self.full_wait * 2, FULL_WAIT[1])
        self.ring_full = bool(self.pending)
        if self.muted and not self.ring_full:
            self._unmute_all()

    # -- connections --------------------------------------------------------

    def _accept(self, lsock) -> None:
        for _ in range(256):
            if self.capacity and len(self.conns) >= self.capacity:
                self._set_at_capacity(True)
                return
            try:
                sock, addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in OUT_OF_FDS:   # keep serving the connections we have
                    log.error("accept failed (%s); pausing new connections", exc.strerror)
                    self.accept_paused = time.monotonic() + ACCEPT_PAUSE
                    self._update_listening()
                else:
                    log.warning("accept failed: %s", exc)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.serial += 1
            conn = Connection(sock, messages.conn_id(self.index, self.gen, self.serial),
                              self.config.max_payload, self.config.spool_threshold)
            conn.number = conn.fd * self.slots + self.index
            self.conns[conn.id] = conn
            self.by_fd[conn.fd] = conn
            self.ep.register(conn.fd, IN)
            # An IPv4 peer of a dual-stack socket (socket activation with
            # BindIPv6Only=both) is shown as IPv4, as gearmand shows it.
            peer = addr[0].removeprefix("::ffff:")
            self.record(conn, messages.connect(conn.id, conn.number, peer))
            if self.figures is not None:
                self.figures.connections(self.serial, len(self.conns))

    def _set_at_capacity(self, full: bool) -> None:
        if full == self.at_capacity:
            return
        self.at_capacity = full
        now = time.monotonic()
        last = self.capacity_logged
        if full and (last is None or now - last >= LOG_EVERY):
            self.capacity_logged, self.log_resume = now, True
            log.warning("%d connections, this acceptor's share of --max-connections %d: "
                        "not accepting new ones until one closes",
                        len(self.conns), self.config.max_connections)
        elif not full and self.log_resume:
            self.log_resume = False
            log.info("below %d connections again: accepting", self.capacity)
        self._update_listening()

    def _update_listening(self) -> None:
        """Out of descriptors or at capacity: the listeners leave the poll,
        or the level-triggered listen sockets would spin the loop (waiting
        connections stay in the kernel's backlog meanwhile)."""
        listen = not (self.accept_paused or self.at_capacity)
        if listen == self.listening:
            return
        self.listening = listen
        for fd in self.listeners:
            if listen:
                self.ep.register(fd, IN)
            else:
                self.ep.unregister(fd)

    def _sweep(self) -> None:
        """Cut the connections whose unfinished request ran out of time."""
        self.next_sweep = self.now + min(SWEEP, self.deadlines.limit)
        for conn in self.deadlines.expired(self.now, self.muted):
            if conn.id in self.conns and conn.reading and not conn.closing:
                inbound.time_out(self, conn)
            else:
                self.deadlines.done(conn)

    def _linger(self, conn) -> None:
        """Close our side, but keep reading (and dropping) what the peer is
        still sending for a while: closing a socket with unread input sends
        a RST, which can destroy the reply we just sent (an ERROR saying
        why) before the peer reads it, and fails a peer still writing."""
        if conn.linger:
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close_conn(conn)
            return
        conn.reading = False
        self.deadlines.done(conn)
        conn.linger = time.monotonic() + LINGER
        self.lingering.add(conn)
        self.muted.discard(conn)
        self._set_mask(conn, IN)

    def _end_lingering(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self.lingering if c.linger <= now]:
            self.close_conn(conn)

    def close_conn(self, conn) -> None:
        self.lingering.discard(conn)
        self.muted.discard(conn)
        self.deadlines.done(conn)
        if self.conns.pop(conn.id, None) is None:
            return
        del self.by_fd[conn.fd]
        try:
            self.ep.unregister(conn.fd)
        except OSError:
            pass
        if conn.out_bytes + conn.decoder.buffered > RELEASE_ABOVE:
            self.release = True
        conn.discard()
        if conn.reserved:
            self.reserve(conn, 0)
        conn.sock.close()
        self.record(conn, messages.closed(conn.id))
        if self.figures is not None:
            self.figures.connections(self.serial, len(self.conns))
        if self.at_capacity and self.running and len(self.conns) < self.capacity:
            self._set_at_capacity(False)

    def close_all(self) -> None:
        for conn in list(self.conns.values()):
            self.close_conn(conn)
        for s in self.listeners.values():
            s.close()


def share(total: int, acceptors: int, index: int) -> int:
    """Acceptor `index`'s part of `total` connections (0 = no limit): an
    even split, the first ones taking one more for a remainder, and at
    least one each. A reload's fresh set (slots N..2N-1) splits it again."""
    if not total:
        return 0
    part, extra = divmod(total, acceptors)
    return max(1, part + (index % acceptors < extra))
