"""Non-blocking socket I/O of one blocking-API connection (Client's and
Worker's): send what its sans-IO session has queued, feed the session what
the server sent. What a lost connection means is the caller's business: it
passes `lost(conn, reason)`.

A connection here is anything with `.sock`, `.session` and `.pending` (the
unsent rest of the session's last output, or None)."""
from collections.abc import Callable
from typing import Any

from .errors import GearmanError

Lost = Callable[[Any, str], None]

RECV_SIZE = 256 << 10


def send_pending(conn: Any, lost: Lost) -> None:
    """Send until the session has nothing more or the socket is full."""
    while True:
        if conn.pending is None:
            chunk = conn.session.output()
            if chunk is None:
                return
            conn.pending = memoryview(chunk).cast("B")
        try:
            sent = conn.sock.send(conn.pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            lost(conn, exc.strerror or str(exc))
            return
        conn.pending = conn.pending[sent:] if sent < len(conn.pending) else None
        if conn.pending is not None:
            return


def receive(conn: Any, lost: Lost) -> Any:
    """Read once and feed the session; what session.receive() returned, or
    None when nothing was read or the connection was lost."""
    try:
        data = conn.sock.recv(RECV_SIZE)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError as exc:
        lost(conn, exc.strerror or str(exc))
        return None
    if not data:
        lost(conn, "connection closed by the server")
        return None
    try:
        return conn.session.receive(data)
    except GearmanError as exc:
        lost(conn, str(exc))
        return None
