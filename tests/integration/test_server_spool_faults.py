"""A spool file that vanished (a tmp cleaner, an operator) or that cannot
be linked (no inodes left) costs only the job whose payload it held:
WORK_FAIL to its client, a log line naming the job and the file, and the
server serves everything else."""
import os
import subprocess

import pytest

from gearproto import PacketType as T
from gearproto import wait_for


def spool_names(srv) -> list:
    return [p.name for p in spool_files(srv)]


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


@pytest.fixture
def spool_without_inodes(tmp_path):
    """A spool with inodes for its directory, the lock and one payload:
    the hard link that hands a payload to a worker fails with ENOSPC."""
    spool = tmp_path / "mpgearman-0" / "spool"
    spool.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=4", "tmpfs",
                              str(spool)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield spool
    subprocess.run(["umount", "-l", str(spool)], capture_output=True)


def test_no_inode_for_a_link_fails_only_its_job(spool_without_inodes, server_factory, fname):
    srv = server_factory("mpgearman")
    assert srv.workdir / "spool" == spool_without_inodes
    f = fname.encode()
    with srv.connect() as client:
        lost = client.submit(T.SUBMIT_JOB, f, b"", b"x" * 100_000)
        kept = client.submit(T.SUBMIT_JOB_BG, f, b"", b"small")
        with srv.connect() as w:
            w.send_packet(T.CAN_DO, f)
            w.send_packet(T.GRAB_JOB)
            w.expect(T.JOB_ASSIGN, kept + b"\0" + f + b"\0small")
            client.expect(T.WORK_FAIL, lost)
            w.send_packet(T.WORK_COMPLETE, kept, b"")
            assert w.call(T.ECHO_REQ, b"alive").payload == b"alive"
    assert srv.proc.poll() is None
    log = (srv.workdir / "mpgearman.err").read_text()
    assert any(lost.decode() in ln and "No space left on device" in ln
               for ln in log.splitlines()), log
    assert spool_names(srv) == []
