"""The blocking client's I/O: one socket per server, driven with selectors.

It owns sockets, connecting with a timeout, and moving bytes between the
sockets and each connection's Session until a condition holds or a
deadline passes (no busy loop: it sleeps in select()). It must not decide
about retries: a lost connection is handed to `on_lost`.
"""
import selectors
import socket
import time
from collections.abc import Callable

from . import sockio
from .errors import GearmanError
from .session import Session
from .servers import ServerPool


class Connection:
    def __init__(self, address: str, sock: socket.socket):
        self.address = address
        self.sock = sock
        self.session = Session(address)
        self.pending: memoryview | None = None     # a chunk partly sent
        self.mask = 0


def open_socket(host: str, port: int, timeout: float | None) -> socket.socket:
    """A connected TCP socket (IPv4 or IPv6), or OSError."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


class SelectLoop:
    def __init__(self, pool: ServerPool, connect_timeout: float | None,
                 on_lost: Callable[[Connection, str], None]) -> None:
        self.pool = pool
        self.connect_timeout = connect_timeout
        self.on_lost = on_lost     # on_lost(connection, reason)
        self.conns: dict[str, Connection] = {}
        self.selector = selectors.DefaultSelector()
        self._dropped = False

    def connection(self, address: str) -> Connection:
        """The open connection to `address`, connecting if needed. Raises
        OSError (the server is marked down) when it cannot connect."""
        conn = self.conns.get(address)
        if conn is not None:
            return conn
        state = self.pool.states[address]
        try:
            sock = open_socket(state.host, state.port, self.connect_timeout)
        except socket.timeout:
            self.pool.mark_down(address, f"connect timed out after {self.connect_timeout}s")
            raise
        except OSError as exc:
            self.pool.mark_down(address, exc.strerror or str(exc))
            raise
        self.pool.mark_up(address)
        conn = self.conns[address] = Connection(address, sock)
        conn.mask = selectors.EVENT_READ
        self.selector.register(sock, conn.mask, conn)
        return conn

    def run_until(self, done: Callable[[], object], deadline: float | None) -> bool:
        """Move bytes until done() is true (True) or the deadline passes
        (False). Returns True at once if nothing is connected and done()."""
        while not done():
            self._flush()
            if done():
                return True
            if not self.conns:
                raise GearmanError("nothing to wait for: no open connection")
            timeout = None
            if deadline is not None:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    return False
            for key, mask in self.selector.select(timeout):
                conn = key.data
                if conn.address not in self.conns:
                    continue
                if mask & selectors.EVENT_READ:
                    sockio.receive(conn, self.drop)
                if mask & selectors.EVENT_WRITE and conn.address in self.conns:
                    sockio.send_pending(conn, self.drop)
        return True

    def _flush(self) -> None:
        """Write what can be written now; watch for writability where
        output is left. A connection lost meanwhile may have moved its jobs
        onto others (on_lost): go round again until nothing was dropped."""
        self._dropped = True
        while self._dropped:
            self._dropped = False
            self._flush_once()

    def _flush_once(self) -> None:
        for conn in list(self.conns.values()):
            sockio.send_pending(conn, self.drop)
            if conn.address not in self.conns:
                continue
            want = selectors.EVENT_READ
            if conn.pending is not None:
                want |= selectors.EVENT_WRITE
            if want != conn.mask:
                conn.mask = want
                self.selector.modify(conn.sock, want, conn)

    def drop(self, conn: Connection, reason: str) -> None:
        if self.conns.get(conn.address) is not conn:
            return
        del self.conns[conn.address]
        self.selector.unregister(conn.sock)
        conn.sock.close()
        self._dropped = True
        self.on_lost(conn, reason)

    def close(self) -> None:
        for conn in list(self.conns.values()):
            self.selector.unregister(conn.sock)
            conn.sock.close()
        self.conns.clear()
        self.selector.close()
