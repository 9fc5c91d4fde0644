"""The benchmark's C load generator (bench/loadgen.c) against both servers:
libgearman worker threads, raw workers with pipelined grabs, and raw clients
pipelining SUBMIT_JOB / SUBMIT_JOB_BG on several connections. Small counts,
so this is a correctness check of heavy pipelining (and keeps the benchmark
tool from rotting), not a measurement."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "bench" / "loadgen.c"


@pytest.fixture(scope="session")
def loadgen(tmp_path_factory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    binary = tmp_path_factory.mktemp("loadgen") / "loadgen"
    proc = subprocess.run([cc, "-O2", "-o", str(binary), str(SOURCE), "-lgearman",
                           "-lpthread"], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        if "gearman.h" in proc.stderr or "-lgearman" in proc.stderr:
            pytest.skip("libgearman-dev is not installed")
        pytest.fail(f"loadgen.c does not build:\n{proc.stderr}")
    return binary


def run(argv, timeout: float = 60) -> dict:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


@pytest.mark.parametrize("impl", ["libgearman", "raw"])
def test_loadgen_foreground(server, loadgen, spawn, fname, impl):
    base = ["-h", server.host, "-p", server.port, "-f", fname]
    spawn([loadgen, "worker", *base, "-t", 3, "-W", impl, "-g", 4 if impl == "raw" else 1])
    server.wait_workers(fname, 3)
    out = run([loadgen, "fg", *base, "-c", 3, "-k", 16, "-n", 3000, "-s", 100])
    assert (out["jobs"], out["failures"]) == (3000, 0)
    assert server.status()[fname][:2] == (0, 0)


@pytest.mark.parametrize("impl", ["libgearman", "raw"])
def test_loadgen_background_drain(server, loadgen, fname, impl):
    out = run([loadgen, "bg", "-h", server.host, "-p", server.port, "-f", fname,
               "-c", 3, "-k", 64, "-n", 3000, "-t", 3, "-W", impl])
    assert (out["jobs"], out["failures"], out["queued_before_drain"]) == (3000, 0, 3000)
    assert out["worker_jobs"] == 3000
    assert server.status()[fname][:2] == (0, 0)
