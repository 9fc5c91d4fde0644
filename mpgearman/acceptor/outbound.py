"""Records from the coordinator -> bytes queued on connections.

A record for a connection that has gone already is dropped; a spool file it
names is unlinked so nothing is left behind.
"""
import logging
import os

from ..ipc import messages

log = logging.getLogger(__name__)


def on_send(acc, conn_id, data):
    conn = acc.conns.get(conn_id)
    if conn is not None and not conn.closing:
        conn.queue(data)
        acc.touched.add(conn)
        if conn.out_bytes > acc.config.max_queued_output:
            _check_backlog(acc, conn)


def _check_backlog(acc, conn):
    """A peer that stopped reading must not make us hold unbounded memory
    or spool: what waits behind the packet being written counts, spooled
    payloads included."""
    backlog = conn.backlog()
    if backlog > acc.config.max_queued_output:
        log.warning("dropping connection %d: %d bytes queued and it is not reading",
                    conn.fd, backlog)
        acc.close_conn(conn)


def on_sendfile(acc, conn_id, head, name, size):
    conn = acc.conns.get(conn_id)
    if conn is None or conn.closing:
        _drop(acc, name)
        return
    try:
        fd = acc.spool.take(name)
    except OSError as exc:
        # The payload is gone: this connection cannot go on (a worker's job
        # is requeued when it closes), the others are not concerned.
        log.error("closing connection %d: spool file %s is unusable (%s)",
                  conn.fd, name, exc.strerror or exc)
        conn.closing = True
    else:
        conn.queue_file(head, fd, size)
    acc.touched.add(conn)
    if conn.out_bytes > acc.config.max_queued_output:
        _check_backlog(acc, conn)


def on_close(acc, conn_id, _rest):
    conn = acc.conns.get(conn_id)
    if conn is not None:
        conn.closing = True
        acc.touched.add(conn)


def _drop(acc, name):
    try:
        os.unlink(os.path.join(acc.spool.dir, name))
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.error("cannot remove spool file %s: %s", name, exc.strerror or exc)


HANDLERS = {
    messages.SEND: on_send,
    messages.SENDFILE: on_sendfile,
    messages.CLOSE: on_close,
}


def apply(acc, records) -> None:
    send, unpack = messages.SEND, messages.unpack_send
    for rec in records:
        if rec[0] == send:        # the common case, without the generic parse
            conn_id, data = unpack(rec)
            on_send(acc, conn_id, data)
        else:
            kind, *fields = messages.parse(rec)
            HANDLERS[kind](acc, *fields)
