"""The acceptor's event loop: one epoll over its listening socket(s), its
connections and its doorbell.

Each turn: accept, read and decode what arrived (records for the
coordinator collect in `pending`), apply the coordinator's answers from the
outbound ring, write to sockets, then publish `pending` on the inbound ring
in one batch and ring the coordinator's doorbell only if it sleeps.

When the inbound ring is full the acceptor stops reading sockets until the
coordinator has caught up (back-pressure instead of unbounded buffering).
"""
import errno
import logging
import select
import socket
import time

from ..ipc import messages
from ..protocol.encoder import encode
from ..protocol.packets import PacketType as T
from . import inbound, outbound
from .connection import Connection

log = logging.getLogger(__name__)

IN = select.EPOLLIN
OUT = select.EPOLLOUT
IDLE_TIMEOUT = 1.0   # safety net only: wake-ups come from the doorbell
ACCEPT_PAUSE = 0.1   # out of descriptors: stop accepting for this long
LINGER = 5.0         # after we close a connection, read and drop its input this long
OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Acceptor:
    def __init__(self, index, gen, config, listeners, ring_in, ring_out,
                 my_bell, coord_bell, spool, inbox, board=None, figures=None):
        self.index, self.gen, self.config = index, gen, config
        self.listeners = {s.fileno(): s for s in listeners}
        self.ring_in, self.ring_out = ring_in, ring_out   # to / from the coordinator
        self.bell, self.coord_bell = my_bell, coord_bell
        self.spool = spool
        self.conns = {}          # conn id -> Connection
        self.by_fd = {}          # fd -> Connection
        self.pending = []        # records not yet on the inbound ring
        self.sent = 0            # records ever queued for the coordinator
        self.ring_full = False   # the last publish left records behind
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
        self.accept_paused = 0.0     # monotonic time to accept again, 0 = accepting
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
            for fd, mask in events:
                self._event(fd, mask)
            self._drain_outbound()
            self._flush_touched()
            self._publish()
            if self.accept_paused and time.monotonic() >= self.accept_paused:
                self._pause_accepting(False)
            if self.lingering:
                self._end_lingering()
            if heartbeat:
                heartbeat()

    def _timeout(self) -> float:
        if self.ring_full:
            return 0.001      # retry soon
        if self.touched or not self.ring_out.reader_idle():
            return 0
        if self.accept_paused or self.lingering:
            return ACCEPT_PAUSE
        return IDLE_TIMEOUT

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
                if self.ring_full:
                    return      # back-pressure: read once the ring has room
                if not inbound.read(self, conn):
                    self.close_conn(conn)

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
            mask = (IN if conn.reading and not conn.closing else 0) | (0 if done else OUT)
            if mask != conn.mask:
                conn.mask = mask
                self.ep.modify(conn.fd, mask)

    def _publish(self) -> None:
        if self.pending:
            n = self.ring_in.push_many(self.pending)
            if n:
                del self.pending[:n]
                if self.ring_in.writer_should_ring():
                    self.coord_bell.ring()
        self.ring_full = bool(self.pending)

    # -- connections --------------------------------------------------------

    def _accept(self, lsock) -> None:
        for _ in range(256):
            try:
                sock, addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in OUT_OF_FDS:   # keep serving the connections we have
                    log.error("accept failed (%s); pausing new connections", exc.strerror)
                    self._pause_accepting(True)
                else:
                    log.warning("accept failed: %s", exc)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.serial += 1
            conn = Connection(sock, messages.conn_id(self.index, self.gen, self.serial),
                              self.config.max_payload, self.config.spool_threshold)
            self.conns[conn.id] = conn
            self.by_fd[conn.fd] = conn
            self.ep.register(conn.fd, IN)
            # An IPv4 peer of a dual-stack socket (socket activation with
            # BindIPv6Only=both) is shown as IPv4, as gearmand shows it.
            peer = addr[0].removeprefix("::ffff:")
            self.record(conn, messages.connect(conn.id, conn.fd, peer))
            if self.figures is not None:
                self.figures.connections(self.serial, len(self.conns))

    def _pause_accepting(self, pause: bool) -> None:
        """Out of descriptors: stop polling the listeners for a moment, or
        the level-triggered listen sockets would spin the loop."""
        for fd in self.listeners:
            if pause:
                self.ep.unregister(fd)
            else:
                self.ep.register(fd, IN)
        self.accept_paused = time.monotonic() + ACCEPT_PAUSE if pause else 0.0

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
        conn.linger = time.monotonic() + LINGER
        self.lingering.add(conn)
        if conn.mask != IN:
            conn.mask = IN
            self.ep.modify(conn.fd, IN)

    def _end_lingering(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self.lingering if c.linger <= now]:
            self.close_conn(conn)

    def close_conn(self, conn) -> None:
        self.lingering.discard(conn)
        if self.conns.pop(conn.id, None) is None:
            return
        del self.by_fd[conn.fd]
        try:
            self.ep.unregister(conn.fd)
        except OSError:
            pass
        conn.discard()
        if conn.reserved:
            self.reserve(conn, 0)
        conn.sock.close()
        self.record(conn, messages.closed(conn.id))
        if self.figures is not None:
            self.figures.connections(self.serial, len(self.conns))

    def close_all(self) -> None:
        for conn in list(self.conns.values()):
            self.close_conn(conn)
        for s in self.listeners.values():
            s.close()
