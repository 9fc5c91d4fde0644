"""Failover: two mpgearman servers, our Worker (clients/py_worker.py)
connected to both, and a client configured with both. One server's whole
process tree is SIGKILLed while jobs run: every job must still end exactly
once from the client's view, with the right value or an exception, none
lost or hung. A server restarted on the same port is used again.
(test_client_failover.py covers the library's placement rules one by one.)"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from clientproc import env, start_py_worker
from gearproto import wait_for
from mpgearman import Client
from mpgearman.client import GearmanError

JOBS = 200
RUN_TIMEOUT = 90


@pytest.fixture
def pair(server_factory, spawn, unique_name):
    """Two servers and a worker (4 jobs at once) connected to both."""
    a, b = server_factory("mpgearman"), server_factory("mpgearman")
    worker = start_py_worker(spawn, [a, b], unique_name("fo"), concurrency=4)
    worker.function = f"{worker.prefix}_square"
    return a, b, worker


def started(worker) -> int:
    """Jobs the worker has started so far (it logs one line per start)."""
    return Path(worker.out_path).read_bytes().count(b"start ")


def kill_server_when(server, worker, count: int) -> None:
    """SIGKILL the server's whole tree once the worker has started `count` jobs."""
    wait_for(lambda: started(worker) >= count, 30, 0.005, f"{count} jobs to start")
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)


def check_results(results, numbers) -> int:
    """Every job has one outcome, the right value or an exception; returns
    how many failed."""
    assert len(results) == len(numbers)
    failed = 0
    for n, result in zip(numbers, results):
        if isinstance(result, GearmanError):
            failed += 1
        else:
            assert result == str(n * n).encode(), (n, result)
    return failed


def test_map_survives_a_server_killed_mid_run(pair):
    a, b, worker = pair
    numbers = list(range(JOBS))
    outcome = {}

    def run():
        with Client([a.address, b.address], timeout=RUN_TIMEOUT) as client:
            outcome["results"] = client.map(worker.function, [str(n) for n in numbers],
                                            concurrency=16, return_exceptions=True)
    thread = threading.Thread(target=run, daemon=True)
    began = time.monotonic()
    thread.start()
    kill_server_when(a, worker, JOBS // 4)
    thread.join(RUN_TIMEOUT)
    assert not thread.is_alive(), "map() did not return after a server was killed"
    failed = check_results(outcome["results"], numbers)
    # Jobs queued on the dead server are resubmitted to the live one, so
    # only those whose resubmissions ran out may fail.
    assert failed < JOBS // 4, f"{failed} of {JOBS} jobs failed"
    print(f"\n{JOBS} jobs in {time.monotonic() - began:.2f} s, {failed} failed, "
          f"{started(worker) - JOBS} started more than once")


def test_concurrent_submits_survive_a_server_killed_mid_run(pair):
    """The same with jobs submitted one by one from several threads, each
    with its own Client, every job followed to its end."""
    a, b, worker = pair
    outcomes: dict[int, object] = {}

    def run(numbers):
        with Client([a.address, b.address], timeout=RUN_TIMEOUT) as client:
            jobs = [(n, client.submit(worker.function, str(n))) for n in numbers]
            for n, job in jobs:
                try:
                    outcomes[n] = job.result()
                except GearmanError as exc:
                    outcomes[n] = exc
    threads = [threading.Thread(target=run, args=(range(i, JOBS, 4),), daemon=True)
               for i in range(4)]
    for t in threads:
        t.start()
    kill_server_when(b, worker, JOBS // 3)
    for t in threads:
        t.join(RUN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a job never ended"
    assert sorted(outcomes) == list(range(JOBS))
    failed = check_results([outcomes[n] for n in range(JOBS)], range(JOBS))
    assert failed < JOBS // 3


def test_cli_batch_survives_a_server_killed_mid_run(pair, tmp_path):
    a, b, worker = pair
    src = tmp_path / "numbers"
    src.write_text("".join(f"{n}\n" for n in range(JOBS)))
    proc = subprocess.Popen([sys.executable, "-m", "mpgearman", "submit", worker.function,
                             "--batch", src, "-s", f"{a.address},{b.address}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    try:
        kill_server_when(a, worker, JOBS // 4)
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        proc.kill()
    lines = out.split(b"\n")
    assert lines[-1] == b"" and len(lines) == JOBS + 1, err
    empty = [n for n in range(JOBS) if lines[n] == b""]
    assert all(lines[n] == str(n * n).encode() for n in range(JOBS) if n not in empty)
    errors = [line for line in err.decode().splitlines() if ": error: line " in line]
    assert [int(e.split("line ")[1].split(":")[0]) - 1 for e in errors] == empty
    assert proc.returncode == 0 if not empty else proc.returncode in (1, 3, 4)
    assert err.decode().splitlines()[-1].startswith(
        f"mpgearman: succeeded {JOBS - len(empty)}, failed {len(empty)}, ")


def test_restarted_server_is_used_again(pair, server_factory):
    a, b, worker = pair
    with Client([a.address, b.address], timeout=30) as client:
        assert client.call(worker.function, "3") == b"9"
        os.killpg(a.proc.pid, signal.SIGKILL)
        a.proc.wait(10)
        # With one server dead, jobs go to the other.
        servers = {client.submit(worker.function, str(n)).server for n in range(10)}
        assert servers == {b.address}
        again = server_factory("mpgearman", "--port", str(a.port))
        assert again.address == a.address
        # The worker reconnects (its backoff is at most 10 s) ...
        wait_for(lambda: again.status().get(worker.function, (0, 0, 0))[2] >= 1,
                 30, 0.1, "the worker to reconnect to the restarted server")

        # ... and the client places jobs there again once its backoff ends.
        def lands_on_restarted():
            job = client.submit(worker.function, "7")
            assert job.result() == b"49"
            return job.server == again.address
        wait_for(lands_on_restarted, 30, 0.1, "a job on the restarted server")
