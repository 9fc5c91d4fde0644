"""Socket bytes -> decoder events -> records for the coordinator.

A table maps each event type to a small handler. Every request goes to the
coordinator, even ECHO_REQ and the ERRORs the acceptor makes itself (as
RELAY records): answers must leave in the order the requests came, and the
coordinator is the one place that orders them. The exception is GET_STATUS
once the coordinator has answered everything the connection sent before:
it is read from the shared status board (Acceptor.local_status). Bodies
above the stream threshold go into a spool file as they arrive. After each
read, a connection left in the middle of a request has its clock set or
moved on (deadlines.py); one between requests has none.
"""
import logging

from ..ipc import messages
from ..protocol import errors, events
from ..protocol.encoder import encode
from ..protocol.errors import SPOOL_FULL, ProtocolError
from ..protocol.packets import PacketType as T

log = logging.getLogger(__name__)

RECV_SIZE = 256 * 1024     # the size of the acceptor's receive buffer (loop.py)


GET_STATUS = int(T.GET_STATUS)   # a plain int: an IntEnum member read is slow


def on_packet(acc, conn, ev):
    """ev: (type, payload) of a whole request (the decoder's raw mode)."""
    ptype, body = ev
    if ptype == GET_STATUS and acc.local_status(conn, body):
        acc.local_answers += 1
        return
    acc.record(conn, messages.packet(conn.id, ptype, body))


SUBMISSIONS = frozenset(map(int, (
    T.SUBMIT_JOB, T.SUBMIT_JOB_BG, T.SUBMIT_JOB_HIGH, T.SUBMIT_JOB_HIGH_BG, T.SUBMIT_JOB_LOW,
    T.SUBMIT_JOB_LOW_BG, T.SUBMIT_JOB_SCHED, T.SUBMIT_JOB_EPOCH, T.SUBMIT_REDUCE_JOB,
    T.SUBMIT_REDUCE_JOB_BACKGROUND)))


class Refused:
    """The body of a submission the full spool cannot take: read and
    dropped, then answered with an ERROR (the coordinator checks again
    what does come through)."""
    @staticmethod
    def write(data) -> None:
        pass

    @staticmethod
    def abort() -> None:
        pass


def on_head(acc, conn, ev):
    conn.head = ev
    if ev.type in SUBMISSIONS and spool_full(acc, ev.size):
        conn.writer = Refused
        return
    conn.writer = acc.spool.writer()
    acc.reserve(conn, ev.size)


def spool_full(acc, size) -> bool:
    limit = acc.config.max_spool_bytes
    return bool(limit and acc.figures is not None
                and acc.figures.spool_in_use() + size > limit)


def on_chunk(acc, conn, ev):
    conn.writer.write(ev.data)


def on_end(acc, conn, ev):
    head, writer = conn.head, conn.writer
    conn.head = conn.writer = None
    if writer is Refused:
        acc.record(conn, messages.relay(conn.id, encode(T.ERROR, *SPOOL_FULL), False))
        return
    acc.reserve(conn, 0)
    name = writer.finish()
    acc.record(conn, messages.spooled(conn.id, head.type, head.args, name, head.size))
    if acc.figures is not None:
        acc.figures.add_spooled(head.size)


def on_admin(acc, conn, ev):
    acc.record(conn, messages.admin(conn.id, ev.line, ev.crlf))


def on_rejected(acc, conn, ev):
    acc.record(conn, messages.relay(conn.id, encode(T.ERROR, ev.code, ev.text), False))


HANDLERS = {
    tuple: on_packet,
    events.PacketHead: on_head,
    events.BodyChunk: on_chunk,
    events.PacketEnd: on_end,
    events.AdminLine: on_admin,
    events.Rejected: on_rejected,
}


def discard(acc, conn) -> bool:
    """A lingering connection: throw away what the peer still sends. False
    once it has closed its side (or failed)."""
    for _ in range(64):
        try:
            if not conn.sock.recv_into(acc.recv_buf):
                return False
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
    return True


def read(acc, conn) -> bool:
    """Read what the socket has and handle every complete event.
    Returns False when the connection is finished (peer closed, error)."""
    # Into one reused buffer: recv(256 KiB) would malloc (mmap, above glibc's
    # threshold) and free 256 KiB per call, however few bytes came. The
    # decoder copies what it keeps, so the buffer is free again after feed().
    try:
        n = conn.sock.recv_into(acc.recv_buf)
    except (BlockingIOError, InterruptedError):
        return True
    except OSError:
        return False
    if not n:
        return False
    acc.turn_read += n
    decoder = conn.decoder
    decoder.feed(acc.recv_view[:n])
    answered = acc.sent + acc.local_answers
    try:
        while True:
            ev = decoder.next_event()
            if ev is events.NEED_DATA:
                if not decoder.idle:
                    acc.deadlines.after_read(conn, acc.now, n,
                                             acc.sent + acc.local_answers != answered)
                elif conn.due:
                    acc.deadlines.done(conn)
                return True
            HANDLERS[type(ev)](acc, conn, ev)
    except ProtocolError as exc:
        log.info("closing connection %s: %s", conn.number, exc)
        error = encode(T.ERROR, exc.code, exc.text)
    except OSError as exc:  # the spool: disk full, permissions, ...
        log.error("spool write failed, closing connection %s: %s", conn.number, exc)
        error = encode(T.ERROR, b"QUEUE_ERROR", f"Spool write failed: {exc.strerror}".encode())
    refuse(acc, conn, error)
    return True


def time_out(acc, conn) -> None:
    """`conn` left a request unfinished too long (deadlines.py)."""
    log.info("closing connection %s: its unfinished request made no progress in %d s",
             conn.number, acc.deadlines.limit)
    refuse(acc, conn, encode(T.ERROR, *errors.REQUEST_TIMEOUT))


def refuse(acc, conn, error: bytes) -> None:
    """Read nothing more from `conn`; the coordinator sends `error` after
    the answers to its earlier requests and then tells us to close."""
    conn.reading = False
    acc.touched.add(conn)      # so the loop stops polling it for input
    acc.deadlines.done(conn)
    if conn.writer is not None:
        conn.writer.abort()
        conn.writer = None
        acc.reserve(conn, 0)
    acc.record(conn, messages.relay(conn.id, error, True))
