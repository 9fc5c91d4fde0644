"""GET_STATUS, partly answered by acceptors from the shared status board:
the same answers as gearmand, in request order even when pipelined behind
requests the coordinator answers."""
import pytest

from gearproto import PacketType as T
from gearproto import request


def _status(handle, known, running, num, den):
    return b"\0".join([handle, b"%d" % known, b"%d" % running, b"%d" % num, b"%d" % den])


@pytest.mark.parametrize("kind", ["mpgearman", "gearmand"])
def test_status_through_a_job_life(server_factory, fname, kind):
    srv = server_factory(kind, "--job-handle-prefix", "P")
    f = fname.encode()
    with srv.connect() as c, srv.connect() as w:
        # submit and ask in one write: the answer must already know the job
        c.send(request(T.SUBMIT_JOB_BG, f, b"", b"x") + request(T.GET_STATUS, b"P:1")
               + request(T.GET_STATUS, b"P:2") + request(T.ECHO_REQ, b"e"))
        c.expect(T.JOB_CREATED, b"P:1")
        c.expect(T.STATUS_RES, _status(b"P:1", 1, 0, 0, 0))
        c.expect(T.STATUS_RES, _status(b"P:2", 0, 0, 0, 0))
        c.expect(T.ECHO_RES, b"e")
        w.send_packet(T.CAN_DO, f)
        w.send_packet(T.GRAB_JOB)
        w.expect(T.JOB_ASSIGN)
        w.send_packet(T.WORK_STATUS, b"P:1", b"3", b"7")
        w.send_packet(T.ECHO_REQ, b"sync")
        w.expect(T.ECHO_RES, b"sync")
        assert c.call(T.GET_STATUS, b"P:1").payload == _status(b"P:1", 1, 1, 3, 7)
        w.send_packet(T.WORK_COMPLETE, b"P:1", b"")
        w.send_packet(T.ECHO_REQ, b"sync")
        w.expect(T.ECHO_RES, b"sync")
        assert c.call(T.GET_STATUS, b"P:1").payload == _status(b"P:1", 0, 0, 0, 0)
        # handles in other shapes are answered too
        for odd in (b"P:01", b"Q:1", b"P:", b"nonsense"):
            assert c.call(T.GET_STATUS, odd).payload == _status(odd, 0, 0, 0, 0)


def test_pipelined_status_keeps_request_order(server_factory, fname):
    srv = server_factory("mpgearman", "--job-handle-prefix", "P")
    f = fname.encode()
    n = 300
    with srv.connect(timeout=20) as c:
        burst = b"".join(request(T.SUBMIT_JOB_BG, f, b"", b"%d" % i)
                         + request(T.GET_STATUS, b"P:%d" % (i + 1))
                         + request(T.GET_STATUS, b"P:%d" % (i + 2)) for i in range(n))
        c.send(burst)
        for i in range(n):
            c.expect(T.JOB_CREATED, b"P:%d" % (i + 1))
            c.expect(T.STATUS_RES, _status(b"P:%d" % (i + 1), 1, 0, 0, 0))
            c.expect(T.STATUS_RES, _status(b"P:%d" % (i + 2), 0, 0, 0, 0))


def test_two_servers_on_one_host_hand_out_different_handles(server_factory, fname):
    """The default prefix names host and port; GET_STATUS answers it."""
    import socket
    host = socket.gethostname()
    handles = []
    for srv in (server_factory("mpgearman"), server_factory("mpgearman")):
        want = f"H:{host}:{srv.port}:1".encode()
        with srv.connect() as c:
            c.send(request(T.SUBMIT_JOB_BG, fname.encode(), b"", b"x")
                   + request(T.GET_STATUS, want))
            c.expect(T.JOB_CREATED, want)
            c.expect(T.STATUS_RES, _status(want, 1, 0, 0, 0))
        handles.append(want)
    assert handles[0] != handles[1]
