"""Worker against real servers: concurrency, stop() and SIGTERM finish the
jobs in hand, no polling while idle, reconnect after a server restart, and
one worker serving several servers."""
import signal
import sys
import textwrap
import threading
import time

import psutil
import pytest

from clientlib import worker_thread
from conftest import GEARMAND, HOST, REPO_ROOT, free_port
from gearproto import wait_for
from mpgearman import Client


def sleepy(job):
    time.sleep(float(job.data))
    return job.data


def test_concurrency_runs_jobs_at_once(server, fname):
    with worker_thread(server.address, {fname: sleepy}, [(server, fname)], concurrency=4), \
            Client(server.address, timeout=20) as client:
        started = time.monotonic()
        assert client.map(fname, [b"0.5"] * 4) == [b"0.5"] * 4
        assert time.monotonic() - started < 1.5


def test_stop_finishes_the_job_in_hand(server, fname):
    running = threading.Event()

    def slow(job):
        running.set()
        time.sleep(0.5)
        return b"finished"
    with Client(server.address, timeout=20) as client:
        with worker_thread(server.address, {fname: slow}, [(server, fname)]) as worker:
            job = client.submit(fname, b"x")
            assert running.wait(10)
            worker.stop()
        assert job.result() == b"finished"


WORKER_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
from mpgearman import Worker
worker = Worker({servers!r}, concurrency=2)

@worker.function({fname!r})
def slow(job):
    print("started", flush=True)
    time.sleep(float(job.data))
    return b"done " + job.data

worker.run()
print("stopped", flush=True)
"""


def start_worker_process(spawn, tmp_path, servers, fname):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER_SCRIPT.format(
        root=str(REPO_ROOT), servers=servers, fname=fname)))
    return spawn([sys.executable, str(script)])


def test_sigterm_finishes_jobs_and_idle_worker_does_not_poll(server, fname, spawn, tmp_path):
    proc = start_worker_process(spawn, tmp_path, server.address, fname)
    server.wait_workers(fname)
    ps = psutil.Process(proc.pid)
    before = ps.cpu_times()
    time.sleep(1.0)
    after = ps.cpu_times()
    assert (after.user + after.system) - (before.user + before.system) < 0.1
    with Client(server.address, timeout=20) as client:
        job = client.submit(fname, b"0.7")
        wait_for(lambda: b"started" in proc.out_path.read_bytes(), 10, 0.02, "job start")
        proc.send_signal(signal.SIGTERM)
        assert job.result() == b"done 0.7"
    assert proc.wait(10) == 0
    assert proc.out_path.read_bytes().endswith(b"stopped\n")


def _gearmand(spawn, port):
    if GEARMAND is None:
        pytest.skip("gearmand is not installed")
    proc = spawn([GEARMAND, "--listen", HOST, "--port", str(port), "--log-file", "stderr"])
    wait_for(lambda: _answers(port), 10, 0.05, f"gearmand on {port}")
    return proc


def _answers(port):
    try:
        with Client(f"{HOST}:{port}", connect_timeout=1, timeout=2) as client:
            return client.echo(b"x") == b"x"
    except Exception:
        return False


def test_worker_reconnects_after_a_server_restart(spawn, fname):
    port = free_port()
    first = _gearmand(spawn, port)
    address = f"{HOST}:{port}"
    with worker_thread(address, {fname: lambda job: job.data.upper()}):
        with Client(address, timeout=10) as client:
            wait_for(lambda: client.call(fname, b"a") == b"A", 10, 0.1,
                     "first job")
        first.kill()
        first.wait(5)
        time.sleep(0.3)                 # the worker sees the loss and backs off
        _gearmand(spawn, port)
        with Client(address, timeout=15) as client:
            assert client.call(fname, b"b") == b"B"


def test_one_worker_serves_every_server(server_factory, fname):
    servers = [server_factory("mpgearman"), server_factory("gearmand")]
    addresses = [s.address for s in servers]
    with worker_thread(addresses, {fname: lambda job: job.data + b"!"},
                       [(s, fname) for s in servers]):
        for address in addresses:
            with Client(address, timeout=10) as client:
                assert client.call(fname, address) == address.encode() + b"!"


def test_client_id_is_set(server, fname, unique_name):
    client_id = unique_name("wid")
    with worker_thread(server.address, {fname: lambda job: b""}, [(server, fname)],
                       client_id=client_id):
        assert client_id.encode() in server.admin("workers")
