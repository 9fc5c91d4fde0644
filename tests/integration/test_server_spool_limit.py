"""--max-spool-bytes bounds the spooled payloads of queued jobs as a whole:
a submission that would pass it gets a clear ERROR and nothing stays on
disk for it; once jobs finish, room comes back."""
import os

from gearproto import PacketType as T
from gearproto import wait_for

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
