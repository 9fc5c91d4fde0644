"""Bad input costs only the connection that sent it: it gets an ERROR (or
is closed, as gearmand does) and every other client and queued job is
untouched. Each case is followed by a normal round trip on another
connection and a look at a job queued before it."""
import os
import struct
import time

import pytest

from gearproto import PacketType as T
from gearproto import parse_status, total_rss, wait_for

HDR = struct.Struct(">4sII")


def _roundtrip_still_works(srv, fname, queued_handle):
    with srv.connect() as w, srv.connect() as c:
        w.send_packet(T.CAN_DO, fname.encode() + b"-rt")
        handle = c.submit(T.SUBMIT_JOB, fname.encode() + b"-rt", b"", b"abc")
        w.send_packet(T.GRAB_JOB)
        w.expect(T.JOB_ASSIGN, handle + b"\0" + fname.encode() + b"-rt\0abc")
        w.send_packet(T.WORK_COMPLETE, handle, b"cba")
        c.expect(T.WORK_COMPLETE, handle + b"\0cba")
        assert c.call(T.ECHO_REQ, b"still here").payload == b"still here"
    jobs = srv.admin("show jobs")
    assert queued_handle in jobs
    assert parse_status(srv.admin("status"))[fname][0] == 1


CASES = {
    # name: (bytes to send, expected ERROR code or None when only closed)
    "bad magic": (b"\0XYZ" + struct.pack(">II", 7, 0), b"INVALID_MAGIC"),
    "type zero": (HDR.pack(b"\0REQ", 0, 0), b"INVALID_COMMAND"),
    "type 43": (HDR.pack(b"\0REQ", 43, 0), b"INVALID_COMMAND"),
    "type with top bit set": (HDR.pack(b"\0REQ", 0x80000007, 4) + b"abcd", b"INVALID_COMMAND"),
    "size above max payload": (HDR.pack(b"\0REQ", T.SUBMIT_JOB, (2 << 20)), b"ARGUMENT_TOO_LARGE"),
    "missing NUL": (HDR.pack(b"\0REQ", T.SUBMIT_JOB, 5) + b"abcde", b"INVALID_PACKET"),
    "arguments above 8 KiB": (HDR.pack(b"\0REQ", T.CAN_DO, 9000) + b"f" * 9000,
                              b"ARGUMENT_TOO_LARGE"),
    "huge admin line": (b"s" * 10000, b"ARGUMENT_TOO_LARGE"),
    "garbage": (b"\0\xff\xfe\xfd" + os.urandom(64), b"INVALID_MAGIC"),
}


@pytest.fixture
def srv_with_job(server_factory, fname):
    srv = server_factory("mpgearman", "--max-payload", "1M")
    with srv.connect() as c:
        handle = c.submit(T.SUBMIT_JOB_BG, fname.encode(), b"keep-me", b"queued before")
    return srv, handle


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_costs_only_that_connection(srv_with_job, fname, case):
    srv, handle = srv_with_job
    data, code = CASES[case]
    with srv.connect() as bad:
        bad.send(data)
        reply = bad.read_packet()
        assert reply.type == T.ERROR
        assert reply.payload.split(b"\0")[0] == code
        assert bad.is_closed(5)
    _roundtrip_still_works(srv, fname, handle)


def test_rejected_packets_keep_the_connection(srv_with_job, fname):
    srv, handle = srv_with_job
    with srv.connect() as c:
        c.send(HDR.pack(b"\0RES", T.ECHO_REQ, 3) + b"abc")
        c.expect(T.ERROR, b"INVALID_MAGIC\0Request magic expected")
        c.send_packet(T.NOOP)
        c.expect(T.ERROR, b"INVALID_COMMAND\0Command not expected")
        assert c.call(T.ECHO_REQ, b"ok").payload == b"ok"
    _roundtrip_still_works(srv, fname, handle)


def test_truncated_packet_then_vanishing_client(srv_with_job, fname):
    srv, handle = srv_with_job
    for body in (b"", b"fn\0", b"fn\0uniq\0part of the"):
        c = srv.connect()
        c.send(HDR.pack(b"\0REQ", T.SUBMIT_JOB, 100) + body)
        c.close()
    _roundtrip_still_works(srv, fname, handle)
    assert fname.encode() + b"\t1\t0\t0" in srv.admin("status")


def test_client_vanishing_mid_spooled_body_leaves_no_file(srv_with_job, fname):
    srv, handle = srv_with_job
    spool = srv.workdir / "spool" / f"port-{srv.port}"
    files_before = set(os.listdir(spool))
    c = srv.connect()
    c.send(HDR.pack(b"\0REQ", T.SUBMIT_JOB, 900_000) + b"big\0\0" + b"x" * 300_000)
    wait_for(lambda: any(n.endswith(".part") for n in os.listdir(spool)), 5,
             message="the body to start spooling")
    c.close()
    wait_for(lambda: set(os.listdir(spool)) == files_before, 5,
             message="the partial spool file to go")
    _roundtrip_still_works(srv, fname, handle)


def test_a_huge_declared_size_allocates_nothing(server_factory, fname):
    srv = server_factory("mpgearman")
    with srv.connect() as c:
        handle = c.submit(T.SUBMIT_JOB_BG, fname.encode(), b"u", b"queued")
    time.sleep(0.3)
    before = total_rss(srv.pids())
    conns = []
    for _ in range(8):
        c = srv.connect()
        c.send(HDR.pack(b"\0REQ", T.SUBMIT_JOB, 0xFFFFFFF0) + b"f\0\0" + b"y" * 1000)
        conns.append(c)
    time.sleep(0.5)
    assert total_rss(srv.pids()) - before < 32 << 20
    for c in conns:
        c.close()
    _roundtrip_still_works(srv, fname, handle)


def test_unknown_admin_command_and_binary_on_same_connection(srv_with_job, fname):
    srv, handle = srv_with_job
    with srv.connect() as c:
        c.send(b"bogus\r\n")
        assert c.read_line() == b"ERR UNKNOWN_COMMAND Unknown+server+commandbogus\r\n"
        assert c.call(T.ECHO_REQ, b"x").payload == b"x"
    _roundtrip_still_works(srv, fname, handle)


def test_the_error_reaches_a_client_that_is_still_sending(srv_with_job, fname):
    """The connection is closed on our side only after the peer's input has
    been drained for a while, so the ERROR is not destroyed by a reset and a
    client still writing its packet does not fail mid-write."""
    srv, handle = srv_with_job
    body = b"x" * (64 << 20)           # more than the socket buffers hold
    for _ in range(3):
        with srv.connect() as bad:
            bad.send(HDR.pack(b"\0REQ", 0x80000007, len(body)) + body)
            reply = bad.read_packet()
            assert reply.payload == b"INVALID_COMMAND\0Bad packet type"
            assert bad.is_closed(5)
    _roundtrip_still_works(srv, fname, handle)
