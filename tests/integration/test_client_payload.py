"""Big payloads through the library: the client sends a file and streams
the result into a file, the worker spools the payload and streams its
result from disk, and the client's peak RSS stays small.

CI runs 200 MiB against both servers; MPGEARMAN_HUGE=1 runs 2 GiB."""
import hashlib
import os
import sys
import textwrap
import threading
import time

import psutil
import pytest

from conftest import REPO_ROOT

MIB = 1 << 20

CLIENT = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from mpgearman import Client
servers, function, src, dst = sys.argv[1:5]
with Client(servers, timeout=600) as client:
    job = client.submit(function, Path(src))
    written = job.result_to(dst)
# VmHWM: this process' own peak (ru_maxrss would carry the parent's over exec).
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(written, hwm * 1024)
"""

WORKER = """
import hashlib, sys
sys.path.insert(0, {root!r})
from mpgearman import Worker
worker = Worker(sys.argv[1])

@worker.function(sys.argv[2])
def echo(job):
    digest = hashlib.sha256()
    with job.open() as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    job.send_data(digest.hexdigest())
    return job.open()          # streamed back from the spool file

worker.run()
"""


def write_pattern(path, size):
    """A position-dependent pattern; returns its sha256."""
    digest = hashlib.sha256()
    block = os.urandom(MIB)
    with open(path, "wb") as f:
        for i in range(0, size, MIB):
            chunk = (i.to_bytes(8, "big") + block)[:min(MIB, size - i)]
            f.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def peak_rss(proc, stop, out):
    """Sample a process' RSS until `stop` is set; the largest value."""
    ps = psutil.Process(proc.pid)
    while not stop.is_set():
        try:
            out[0] = max(out[0], ps.memory_info().rss)
        except psutil.Error:
            return
        time.sleep(0.02)


def round_trip(server, spawn, tmp_path, fname, size):
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    expected = write_pattern(src, size)
    for name, text in (("client.py", CLIENT), ("worker.py", WORKER)):
        (tmp_path / name).write_text(textwrap.dedent(text.format(root=str(REPO_ROOT))))
    spawn([sys.executable, tmp_path / "worker.py", server.address, fname])
    server.wait_workers(fname)
    client = spawn([sys.executable, tmp_path / "client.py", server.address, fname, src, dst])
    stop, sampled = threading.Event(), [0]
    sampler = threading.Thread(target=peak_rss, args=(client, stop, sampled))
    sampler.start()
    try:
        rc = client.wait(600)
    finally:
        stop.set()
        sampler.join()
    assert rc == 0, client.err_path.read_text()
    written, hwm = map(int, client.out_path.read_text().split())
    # The result file holds the worker's WORK_DATA (the hex digest) then the data.
    assert written == size + 64 == dst.stat().st_size
    with open(dst, "rb") as f:
        assert f.read(64).decode() == expected
    digest = hashlib.sha256()
    with open(dst, "rb") as f:
        f.seek(64)
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
    assert digest.hexdigest() == expected
    peak = max(hwm, sampled[0])
    print(f"{size // MIB} MiB via {server.kind}: client peak RSS {peak / MIB:.1f} MiB")
    return peak


def test_200_mib_from_a_file_to_a_file(server, spawn, tmp_path, fname):
    peak = round_trip(server, spawn, tmp_path, fname, 200 * MIB)
    assert peak < 64 * MIB, f"client peak RSS {peak / MIB:.0f} MiB"


@pytest.mark.huge
@pytest.mark.skipif(os.environ.get("MPGEARMAN_HUGE") != "1",
                    reason="multi-GiB payloads: set MPGEARMAN_HUGE=1 to run")
def test_2_gib_from_a_file_keeps_the_client_small(mpgearman_server, spawn, tmp_path, fname):
    peak = round_trip(mpgearman_server, spawn, tmp_path, fname, 2048 * MIB)
    assert peak < 64 * MIB, f"client peak RSS {peak / MIB:.0f} MiB"
