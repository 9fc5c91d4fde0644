"""An acceptor whose ring to the coordinator is full waits without
spinning: it stops polling its connections for input until the
coordinator has made room, and one turn reads a bounded amount, so what
waits in the acceptor for the ring stays small however many connections
are sending."""
import os
import signal
import threading
import time

import psutil

from gearproto import PacketType as T
from gearproto import request, wait_for

MIB = 1 << 20


def _named(srv, name):
    for p in psutil.Process(srv.proc.pid).children():
        if p.name() == name:
            return p
    raise AssertionError(f"no {name} process")


def _cpu(proc) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def _send_all(conn, data, done):
    conn.sock.settimeout(60)
    conn.sock.sendall(data)
    done.set()


def test_a_full_ring_does_not_spin_and_loses_nothing(server_factory):
    srv = server_factory("mpgearman", "--ring-size", "64K", "--spool-threshold", "8K",
                         acceptors=1)
    coordinator = _named(srv, "mpg-coordinator")
    acceptor = _named(srv, "mpg-acceptor-0")
    n = 4000
    burst = b"".join(request(T.ECHO_REQ, b"%06d" % i + b"e" * 500) for i in range(n))
    with srv.connect(timeout=60) as c:
        assert c.call(T.ECHO_REQ, b"warm").payload == b"warm"
        os.kill(coordinator.pid, signal.SIGSTOP)
        done = threading.Event()
        try:
            threading.Thread(target=_send_all, args=(c, burst, done), daemon=True).start()
            time.sleep(0.5)                  # the ring fills, the acceptor waits
            before = _cpu(acceptor)
            time.sleep(1.0)
            spent = _cpu(acceptor) - before
        finally:
            os.kill(coordinator.pid, signal.SIGCONT)
        assert spent < 0.25, f"the acceptor used {spent:.2f} s of CPU in 1 s waiting"
        for i in range(n):                   # everything arrives, in order
            c.expect(T.ECHO_RES, b"%06d" % i + b"e" * 500, timeout=60)
        assert done.wait(10)


def test_one_turn_reads_a_bounded_amount(server_factory):
    srv = server_factory("mpgearman", "--ring-size", "64K", "--spool-threshold", "8K",
                         acceptors=1)
    coordinator = _named(srv, "mpg-coordinator")
    acceptor = _named(srv, "mpg-acceptor-0")
    with srv.connect() as c:
        assert c.call(T.ECHO_REQ, b"warm").payload == b"warm"
    base = acceptor.memory_info().rss
    chunk = request(T.ECHO_REQ, b"e" * 4000) * 64          # 256 KB per connection
    conns = []
    os.kill(coordinator.pid, signal.SIGSTOP)
    os.kill(acceptor.pid, signal.SIGSTOP)
    try:
        for _ in range(96):               # complete in the backlog, data in the kernel
            c = srv.connect()
            c.sock.setblocking(False)
            try:
                c.sock.send(chunk)
            except BlockingIOError:
                pass
            conns.append(c)
        os.kill(acceptor.pid, signal.SIGCONT)
        time.sleep(1.5)
        grown = acceptor.memory_info().rss - base
    finally:
        os.kill(acceptor.pid, signal.SIGCONT)
        os.kill(coordinator.pid, signal.SIGCONT)
        for c in conns:
            c.close()
    assert grown < 6 * MIB, f"the acceptor took {grown / MIB:.1f} MiB while the ring was full"
    wait_for(lambda: srv.admin("workers").count(b"\n") == 2, 20,
             message="the connections to close")
