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
