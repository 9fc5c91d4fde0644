"""A full spool disk costs only the connection whose payload did not fit:
it gets a clear ERROR, its partial file is removed, and every other client
and queued job carries on. Needs root to mount a small tmpfs as the spool."""
import os
import subprocess

import pytest

from gearproto import PacketType as T


@pytest.fixture
def small_spool(tmp_path):
    spool = tmp_path / "mpgearman-0" / "spool"
    spool.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(spool)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield spool
    subprocess.run(["umount", "-l", str(spool)], capture_output=True)


def test_full_spool_disk(small_spool, server_factory, fname):
    srv = server_factory("mpgearman")
    assert srv.workdir / "spool" == small_spool
    f = fname.encode()
    kept = os.urandom(1 << 20)
    with srv.connect() as c:
        handle = c.submit(T.SUBMIT_JOB_BG, f, b"", kept)          # 1 MiB spooled: fits
    with srv.connect() as big:
        big.send_packet(T.SUBMIT_JOB, f, b"", b"z" * (4 << 20))    # 4 MiB: does not
        reply = big.read_packet()
        assert reply.type == T.ERROR
        assert reply.payload == b"QUEUE_ERROR\0Spool write failed: No space left on device"
        assert big.is_closed(5)
    spool = small_spool / f"port-{srv.port}"
    assert not [n for n in os.listdir(spool) if n.endswith(".part")]
    with srv.connect() as w:
        w.send_packet(T.CAN_DO, f)
        w.send_packet(T.GRAB_JOB)
        w.expect(T.JOB_ASSIGN, handle + b"\0" + f + b"\0" + kept)
        w.send_packet(T.WORK_COMPLETE, handle, b"")
        assert w.call(T.ECHO_REQ, b"fine").payload == b"fine"
