"""The behaviour options reach the job logic, on mpgearman as on gearmand
started with the same flags."""
import pytest

from gearproto import PacketType as T

BOTH = pytest.mark.parametrize("kind", ["mpgearman", "gearmand"])


@BOTH
def test_exceptions_option(server_factory, fname, kind):
    srv = server_factory(kind, "--exceptions")
    f = fname.encode()
    with srv.connect() as c, srv.connect() as w:
        handle = c.submit(T.SUBMIT_JOB, f, b"", b"x")
        w.send_packet(T.CAN_DO, f)
        w.send_packet(T.GRAB_JOB)
        w.expect(T.JOB_ASSIGN)
        w.send_packet(T.WORK_EXCEPTION, handle, b"boom")
        c.expect(T.WORK_EXCEPTION, handle + b"\0boom")


@BOTH
def test_job_retries(server_factory, fname, kind):
    srv = server_factory(kind, "--job-retries", "2")
    f = fname.encode()
    with srv.connect() as c:
        handle = c.submit(T.SUBMIT_JOB, f, b"", b"x")
        for attempt in range(2):
            with srv.connect() as w:
                w.send_packet(T.CAN_DO, f)
                _grab(w)
        c.expect(T.WORK_FAIL, handle)            # the second loss fails the job
        assert srv.admin("show jobs") == b".\n"


def _grab(w):
    """GRAB_JOB as a real worker does it: on NO_JOB sleep until a NOOP (the
    previous worker's loss may not have been handled yet)."""
    w.send_packet(T.GRAB_JOB)
    p = w.read_packet()
    if p.type == T.NO_JOB:
        w.send_packet(T.PRE_SLEEP)
        w.expect(T.NOOP)
        w.send_packet(T.GRAB_JOB)
        p = w.read_packet()
    assert p.type == T.JOB_ASSIGN, p
    return p


@BOTH
def test_round_robin(server_factory, fname, kind):
    srv = server_factory(kind, "--round-robin")
    a, b = (fname + "a").encode(), (fname + "b").encode()
    with srv.connect() as c, srv.connect() as w:
        for fn in (a, b):
            for i in range(2):
                c.submit(T.SUBMIT_JOB_BG, fn, b"", b"%s%d" % (fn[-1:], i))
        w.send_packet(T.CAN_DO, a)
        w.send_packet(T.CAN_DO, b)
        got = []
        for _ in range(4):
            w.send_packet(T.GRAB_JOB)
            got.append(w.expect(T.JOB_ASSIGN).payload.rsplit(b"\0", 1)[1])
        assert got == [b"b0", b"a0", b"b1", b"a1"]


@BOTH
def test_worker_wakeup(server_factory, fname, kind):
    srv = server_factory(kind, "--worker-wakeup", "1")
    f = fname.encode()
    sleepers = [srv.connect() for _ in range(2)]
    try:
        for w in sleepers:
            w.send_packet(T.CAN_DO, f)
            w.send_packet(T.PRE_SLEEP)
            w.send_packet(T.ECHO_REQ, b"sync")
            w.expect(T.ECHO_RES, b"sync")
        with srv.connect() as c:
            c.submit(T.SUBMIT_JOB_BG, f, b"", b"one")
        woken = []
        for w in sleepers:
            data = w.read_available(0.3)
            woken.append(data)
        assert sorted(woken) == sorted([b"\0RES\0\0\0\x06\0\0\0\0", b""])
    finally:
        for w in sleepers:
            w.close()
