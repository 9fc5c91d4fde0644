"""Unfinished requests time out, idle connections never do, and
--max-connections caps what the server holds."""
import struct
import time

import psutil

from gearproto import PacketType as T
from gearproto import request, wait_for

HEADER = struct.Struct(">4sII")


def _cut(conn) -> bool:
    """Closed by the server, after an ERROR TIMEOUT."""
    if not conn.is_closed(0.01):
        return False
    magic, ptype, size = HEADER.unpack(conn.buf[:12])
    assert (magic, ptype) == (b"\0RES", T.ERROR), conn.buf
    assert conn.buf[12:12 + size].startswith(b"TIMEOUT\0"), conn.buf
    return True


def test_unfinished_requests_time_out_idle_connections_do_not(server_factory, fname):
    srv = server_factory("mpgearman", "--request-timeout", "2")
    f = fname.encode()
    slow = {
        "header, one byte at a time": request(T.ECHO_REQ, b"x" * 20),
        "admin line, one byte at a time": b"status" + b" " * 30 + b"\n",
        "packet, one byte at a time": request(T.SUBMIT_JOB, f, b"", b"y"),
    }
    trickling = {name: srv.connect() for name in slow}
    stuck = srv.connect()                 # a 4 GiB body announced, then nothing
    stuck.send(HEADER.pack(b"\0REQ", T.SUBMIT_JOB_BG, (1 << 32) - 1) + f + b"\0\0" + b"z" * 10)
    idle = srv.connect()
    assert idle.call(T.ECHO_REQ, b"before").payload == b"before"
    steady = srv.connect()                # a big body that keeps coming
    body = b"s" * (25 * 70_000)
    big = request(T.SUBMIT_JOB_BG, f, b"", body)
    cut_at = {}
    start = time.monotonic()
    for step in range(25):                # 0.3 s apart: 7.5 s
        for name, data in slow.items():
            conn = trickling[name]
            if name not in cut_at and step < len(data):
                try:
                    conn.send(data[step:step + 1])
                except OSError:
                    pass
        steady.send(big[step * 70_000:(step + 1) * 70_000])
        time.sleep(0.3)
        for name, conn in [*trickling.items(), ("stuck", stuck)]:
            if name not in cut_at and _cut(conn):
                cut_at[name] = time.monotonic() - start
    steady.send(big[25 * 70_000:])
    assert steady.expect(T.JOB_CREATED).payload       # never cut, completed
    assert set(cut_at) == set(slow) | {"stuck"}, cut_at
    assert max(cut_at.values()) < 4.5, cut_at
    assert idle.call(T.ECHO_REQ, b"after").payload == b"after"   # 7.5 s idle: fine
    for conn in (*trickling.values(), stuck, idle, steady):
        conn.close()
    assert list((srv.workdir / "spool").rglob("*.part")) == []   # the aborted body is gone


def test_max_connections_pauses_accepting(server_factory):
    srv = server_factory("mpgearman", "--max-connections", "3", acceptors=1)
    held = [srv.connect() for _ in range(3)]
    for c in held:
        assert c.call(T.ECHO_REQ, b"in").payload == b"in"
    waiting = srv.connect()               # in the backlog, not accepted
    waiting.send_packet(T.ECHO_REQ, b"late")
    waiting.assert_silent(0.5)
    err = srv.workdir / "mpgearman.err"
    assert err.read_text().count("not accepting new ones") == 1
    acceptor = psutil.Process(srv.acceptor_pids()[0])
    before = acceptor.cpu_times()
    time.sleep(0.5)
    after = acceptor.cpu_times()
    assert (after.user + after.system) - (before.user + before.system) < 0.2, "spinning"
    held.pop().close()
    waiting.expect(T.ECHO_RES, b"late", timeout=10)     # accepted once one closed
    wait_for(lambda: "below 3 connections again: accepting" in err.read_text(), 5,
             message="the log line saying it accepts again")
    # Full again: logged once a minute at most, however often it happens.
    held.pop().close()
    with srv.connect() as again:
        assert again.call(T.ECHO_REQ, b"again", timeout=10).payload == b"again"
    assert err.read_text().count("not accepting new ones") == 1
    for c in (*held, waiting):
        c.close()
