"""A spool file that vanished (a tmp cleaner, an operator) costs only the
job whose payload it held: WORK_FAIL to its client, a log line naming the
job and the file, and the server serves everything else."""
import os

from gearproto import PacketType as T
from gearproto import wait_for


def spool_files(srv) -> list:
    spool = srv.workdir / "spool" / f"port-{srv.port}"
    return [spool / n for n in os.listdir(spool) if n != "lock"]


def test_deleted_spool_file_fails_only_its_job(server_factory, fname):
    srv = server_factory("mpgearman")
    f = fname.encode()
    with srv.connect() as client, srv.connect() as other:
        lost = client.submit(T.SUBMIT_JOB, f, b"", b"x" * 100_000)
        lost_bg = other.submit(T.SUBMIT_JOB_BG, f, b"", b"y" * 100_000)
        wait_for(lambda: len(spool_files(srv)) == 2, 5, 0.02, "two spool files")
        names = sorted(p.name for p in spool_files(srv))
        for path in spool_files(srv):
            path.unlink()
        kept = other.submit(T.SUBMIT_JOB_BG, f, b"", b"z" * 100_000)
        with srv.connect() as w:
            w.send_packet(T.CAN_DO, f)
            w.send_packet(T.GRAB_JOB)
            w.expect(T.JOB_ASSIGN, kept + b"\0" + f + b"\0" + b"z" * 100_000)
            client.expect(T.WORK_FAIL, lost)
            w.send_packet(T.WORK_COMPLETE, kept, b"")
            assert w.call(T.GRAB_JOB).type == T.NO_JOB
        assert client.call(T.ECHO_REQ, b"alive").payload == b"alive"
    assert srv.proc.poll() is None
    assert srv.status()[fname] == (0, 0, 0)
    log = (srv.workdir / "mpgearman.err").read_text()
    named = set()
    for handle in (lost, lost_bg):
        line = next(ln for ln in log.splitlines() if handle.decode() in ln)
        assert "unusable" in line, line
        named |= {name for name in names if name in line}
    assert named == set(names), log
