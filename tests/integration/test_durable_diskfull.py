"""A full disk under the journal: background submissions get an ERROR
(nothing is acknowledged that is not written), foreground jobs go on, and
durability resumes by itself once there is room again. Needs root to mount
a small tmpfs as the data directory."""
import os
import subprocess
import time

import pytest

from gearproto import PacketType as T
from test_durable_kill import _kill_all


@pytest.fixture
def small_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(data)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield data
    subprocess.run(["umount", "-l", str(data)], capture_output=True)


def _fill(path) -> None:
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass


def test_full_journal_disk_refuses_background_only_and_recovers(small_data, server_factory,
                                                                fname):
    f = fname.encode()
    srv = server_factory("mpgearman", "--data-dir", str(small_data))
    acked = []
    with srv.connect() as c:
        acked.append(c.submit(T.SUBMIT_JOB_BG, f, b"", b"before"))
        _fill(small_data / "filler")
        for k in range(2000):          # the journal's last page may still take a few
            c.send_packet(T.SUBMIT_JOB_BG, f, b"", b"x" * 100)
            p = c.read_packet()
            if p.type == T.ERROR:
                assert p.payload == b"QUEUE_ERROR\0Job queue could not be written to disk"
                break
            acked.append(p.payload)
        else:
            pytest.fail("background submissions never failed on a full disk")
        p = c.call(T.SUBMIT_JOB_BG, f, b"", b"still full")
        assert p.type == T.ERROR
        fg = c.submit(T.SUBMIT_JOB, f + b"-fg", b"", b"foreground")   # goes on
        with srv.connect() as w:
            w.send_packet(T.CAN_DO, f + b"-fg")
            w.send_packet(T.GRAB_JOB)
            w.expect(T.JOB_ASSIGN, fg + b"\0" + f + b"-fg\0foreground")
            w.send_packet(T.WORK_COMPLETE, fg, b"ok")
        c.expect(T.WORK_COMPLETE, fg + b"\0ok")
        os.unlink(small_data / "filler")
        deadline = time.monotonic() + 5
        while True:                    # retried within a second
            p = c.call(T.SUBMIT_JOB_BG, f, b"", b"after")
            if p.type == T.JOB_CREATED:
                acked.append(p.payload)
                break
            assert time.monotonic() < deadline, "durability did not resume"
            time.sleep(0.1)
    _kill_all(srv)
    again = server_factory("mpgearman", "--data-dir", str(small_data))
    assert again.status()[fname][0] == len(acked)     # every acknowledged job, no other
