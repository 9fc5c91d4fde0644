"""Small rings fill up under a burst; nothing is lost or reordered: the
acceptor stops reading until the coordinator catches up, and the
coordinator holds answers until the acceptor has drained its ring."""
import socket
import threading

from gearproto import PacketType as T
from gearproto import request, wait_for


def test_a_burst_through_tiny_rings(server_factory, fname):
    srv = server_factory("mpgearman", "--ring-size", "64K", "--spool-threshold", "8K")
    f = fname.encode()
    n, size = 1500, 4000
    payload = [bytes([i % 251]) * size for i in range(n)]

    def worker():
        with srv.connect(timeout=30) as w:
            w.send_packet(T.CAN_DO, f)
            for _ in range(n):
                w.send_packet(T.GRAB_JOB)
                p = w.expect(T.JOB_ASSIGN, timeout=30)
                handle, _, data = p.payload.split(b"\0", 2)
                w.send_packet(T.WORK_COMPLETE, handle, data[::-1])

    with srv.connect(timeout=30) as c:
        c.send(b"".join(request(T.SUBMIT_JOB, f, b"", p) for p in payload))
        t = threading.Thread(target=worker, daemon=True)
        t.start()
        created, results = c.created_and_completed(n, timeout=30)
        t.join(30)
    assert len(created) == n
    for handle, data in zip(created, payload):
        assert results[handle] == data[::-1]


def test_a_peer_that_does_not_read_is_dropped(server_factory, fname):
    srv = server_factory("mpgearman", "--max-queued-output", "1M")
    f = fname.encode()
    with srv.connect(timeout=30) as w, srv.connect() as lazy:
        lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        w.send_packet(T.CAN_DO, f)
        handle = lazy.submit(T.SUBMIT_JOB, f, b"", b"x")
        w.send_packet(T.GRAB_JOB)
        w.expect(T.JOB_ASSIGN)
        chunk = request(T.WORK_DATA, handle, b"d" * 8000)
        for _ in range(40):                      # 32 MB the client never reads
            w.send(chunk * 100)
        w.send_packet(T.ECHO_REQ, b"sync")
        w.expect(T.ECHO_RES, b"sync", timeout=30)
        err = srv.workdir / "mpgearman.err"
        assert "not reading" in err.read_text()
        # Gone from the server (the kernel may still be delivering what it had
        # buffered to the slow reader): `workers` lists the worker and itself.
        wait_for(lambda: srv.admin("workers").count(b"\n") == 3, 5,
                 message="the dropped connection to leave `workers`")
        # the worker and the server are fine
        assert w.call(T.ECHO_REQ, b"ok").payload == b"ok"
        w.send_packet(T.WORK_COMPLETE, handle, b"")
        w.assert_silent()


def test_spooled_results_count_for_a_peer_that_does_not_read(server_factory, fname):
    srv = server_factory("mpgearman", "--max-queued-output", "1M")
    f = fname.encode()
    with srv.connect(timeout=30) as w, srv.connect() as lazy:
        lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        w.send_packet(T.CAN_DO, f)
        handle = lazy.submit(T.SUBMIT_JOB, f, b"", b"x")
        w.send_packet(T.GRAB_JOB)
        w.expect(T.JOB_ASSIGN)
        for _ in range(200):                     # 20 MB of spooled results, never read
            w.send_packet(T.WORK_DATA, handle, b"d" * 100_000)
        w.send_packet(T.ECHO_REQ, b"sync")
        w.expect(T.ECHO_RES, b"sync", timeout=30)
        err = srv.workdir / "mpgearman.err"
        wait_for(lambda: "not reading" in err.read_text(), 5,
                 message="the non-reading client to be dropped")
        wait_for(lambda: srv.admin("workers").count(b"\n") == 3, 5,
                 message="the dropped connection to leave `workers`")
        assert w.call(T.ECHO_REQ, b"ok").payload == b"ok"
        w.send_packet(T.WORK_COMPLETE, handle, b"")


def test_one_big_spooled_payload_to_a_slow_reader_is_not_dropped(server_factory, fname):
    srv = server_factory("mpgearman", "--max-queued-output", "1M")
    f, data = fname.encode(), bytes(range(256)) * (4 << 12)      # 4 MiB, one packet
    with srv.connect(timeout=30) as c, srv.connect(timeout=30) as w:
        handle = c.submit(T.SUBMIT_JOB_BG, f, b"", data)
        w.send_packet(T.CAN_DO, f)
        w.send_packet(T.GRAB_JOB)
        w.send_packet(T.ECHO_REQ, b"behind it")   # queued behind the big one: counts
        p = w.read_packet(timeout=30)
        assert (p.type, p.payload == handle + b"\0" + f + b"\0" + data) == (T.JOB_ASSIGN, True)
        w.expect(T.ECHO_RES, b"behind it")
