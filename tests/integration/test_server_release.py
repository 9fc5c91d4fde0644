"""What a connection held goes back when it closes: the output a client
that never reads made the acceptor queue is returned to the system, not
kept in the acceptor's heap."""
import socket

import psutil

from gearproto import PacketType as T
from gearproto import request, wait_for

MIB = 1 << 20


def _rss(pid) -> int:
    return psutil.Process(pid).memory_info().rss


def test_output_queued_for_a_closed_client_is_released(server_factory, fname):
    srv = server_factory("mpgearman", "--max-queued-output", "1G", acceptors=1)
    f = fname.encode()
    with srv.connect(timeout=30) as w:
        lazy = srv.connect()
        lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        acceptor = srv.acceptor_of(lazy)
        w.send_packet(T.CAN_DO, f)
        handle = lazy.submit(T.SUBMIT_JOB, f, b"", b"x")
        w.send_packet(T.GRAB_JOB)
        w.expect(T.JOB_ASSIGN)
        assert w.call(T.ECHO_REQ, b"warm").payload == b"warm"
        before = _rss(acceptor)
        chunk = request(T.WORK_DATA, handle, b"d" * 8000) * 100
        for _ in range(100):                 # 80 MB the client never reads
            w.send(chunk)
        w.send_packet(T.ECHO_REQ, b"sync")
        w.expect(T.ECHO_RES, b"sync", timeout=60)
        peak = _rss(acceptor)
        assert peak - before > 60 * MIB      # it was queued in the acceptor
        lazy.close()
        wait_for(lambda: srv.admin("workers").count(b"\n") == 3, 10,
                 message="the closed client to leave `workers`")
        assert w.call(T.ECHO_REQ, b"after").payload == b"after"
        after = _rss(acceptor)
        assert after - before < 16 * MIB, (before >> 20, peak >> 20, after >> 20)


def test_registrations_of_a_closed_worker_are_released(server_factory):
    """The registrations of a worker that registered many functions go back
    to the system when it closes (the functions themselves stay listed, as
    gearmand lists them, at a few hundred bytes each)."""
    srv = server_factory("mpgearman", acceptors=1)
    coordinator = next(p for p in psutil.Process(srv.proc.pid).children(recursive=True)
                       if p.name() == "mpg-coordinator")
    n = 200_000
    worker = srv.connect(timeout=60)
    worker.send(b"".join(request(T.CAN_DO, b"reg-%d" % i) for i in range(n)))
    assert worker.call(T.ECHO_REQ, b"sync", timeout=60).payload == b"sync"
    registered = coordinator.memory_info().rss
    worker.close()
    with srv.connect(timeout=30) as other:
        wait_for(lambda: srv.admin("workers").count(b"\n") == 3, 30,
                 message="the closed worker to leave `workers`")
        assert other.call(T.ECHO_REQ, b"after").payload == b"after"
    freed = registered - coordinator.memory_info().rss
    assert freed > 4 * MIB, (registered >> 20, freed >> 20)
