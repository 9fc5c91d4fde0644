"""--max-spool-bytes bounds the spooled payloads of queued jobs as a whole:
a submission that would pass it gets a clear ERROR and nothing stays on
disk for it; once jobs finish, room comes back."""
import os
import time

from gearproto import PacketType as T
from gearproto import request, wait_for

SPOOL_FULL = b"QUEUE_ERROR\0Spool is full (--max-spool-bytes)"


def spool_names(srv) -> list:
    spool = srv.workdir / "spool" / f"port-{srv.port}"
    return [n for n in os.listdir(spool) if n != "lock"]


def test_a_full_spool_refuses_submissions(server_factory, fname):
    srv = server_factory("mpgearman", "--max-spool-bytes", "1M")
    f = fname.encode()
    with srv.connect() as c, srv.connect() as other:
        handles = [c.submit(T.SUBMIT_JOB_BG, f, b"", bytes([i]) * 300_000) for i in range(3)]
        other.send_packet(T.SUBMIT_JOB, f, b"", b"x" * 300_000)
        other.expect(T.ERROR, SPOOL_FULL)
        # Small payloads never touch the spool; the refused one left nothing.
        small = other.submit(T.SUBMIT_JOB_BG, f, b"", b"small")
        wait_for(lambda: len(spool_names(srv)) == 3, 5, 0.02, "three spool files")
        with srv.connect() as w:
            w.send_packet(T.CAN_DO, f)
            w.send_packet(T.GRAB_JOB)
            p = w.expect(T.JOB_ASSIGN)
            assert p.payload.split(b"\0")[0] == handles[0]
            w.send_packet(T.WORK_COMPLETE, handles[0], b"")
            assert w.call(T.ECHO_REQ, b"sync").payload == b"sync"
        # Room for one more again.
        other.submit(T.SUBMIT_JOB_BG, f, b"", b"y" * 300_000)
        other.send_packet(T.SUBMIT_JOB_BG, f, b"", b"z" * 300_000)
        other.expect(T.ERROR, SPOOL_FULL)
        assert other.call(T.ECHO_REQ, b"alive").payload == b"alive"
    assert srv.status()[fname][0] == 4 and small


def spooled_bytes(srv) -> int:
    with srv.connect() as c:
        c.send(b"stats\n")
        listing = c.read_listing()
    for line in listing.decode().splitlines():
        if line.startswith("spooled_bytes "):
            return int(line.split()[1])
    raise AssertionError("no spooled_bytes in stats")


def test_a_full_spool_refuses_a_body_before_writing_it(server_factory, fname):
    srv = server_factory("mpgearman", "--max-spool-bytes", "1M")
    f = fname.encode()
    with srv.connect() as c:
        for i in range(3):
            c.submit(T.SUBMIT_JOB_BG, f, b"", bytes([i]) * 300_000)
        before = spooled_bytes(srv)
        c.send_packet(T.SUBMIT_JOB_BG, f, b"", b"b" * (8 << 20))
        c.expect(T.ERROR, SPOOL_FULL, timeout=30)
        assert spooled_bytes(srv) == before        # the 8 MiB never reached the disk
        # A worker's result is never refused, however full the spool is.
        with srv.connect() as w:
            handle = c.submit(T.SUBMIT_JOB_HIGH, f, b"", b"small")
            w.send_packet(T.CAN_DO, f)
            w.send_packet(T.GRAB_JOB)
            w.expect(T.JOB_ASSIGN, handle + b"\0" + f + b"\0small")
            w.send_packet(T.WORK_COMPLETE, handle, b"r" * 500_000)
            c.expect(T.WORK_COMPLETE, handle + b"\0" + b"r" * 500_000)


def test_bodies_being_written_count_too(server_factory, fname):
    srv = server_factory("mpgearman", "--max-spool-bytes", "1M")
    f = fname.encode()
    body = b"a" * 900_000
    with srv.connect() as b:
        with srv.connect() as a:
            packet = request(T.SUBMIT_JOB_BG, f, b"", body)
            a.send(packet[:200_000])                 # 900 KB announced, not all sent
            time.sleep(0.5)
            b.send_packet(T.SUBMIT_JOB_BG, f, b"", b"b" * 300_000)
            b.expect(T.ERROR, SPOOL_FULL)
        # a left: what it was writing is no longer counted
        wait_for(lambda: srv.admin("workers").count(b"\n") == 3, 5, 0.05, "a to leave")
        b.submit(T.SUBMIT_JOB_BG, f, b"", b"b" * 300_000)
