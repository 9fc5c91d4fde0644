"""Our Python `Client` and `Worker` with other implementations, on both
servers: php-gearman's and Perl's workers serve our Client (results,
failures, exceptions, data and warning chunks, status), and our Worker
(clients/py_worker.py) serves the stock `gearman` CLI (libgearman)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from clientproc import start_py_worker
from gearproto import wait_for
from mpgearman import Client
from mpgearman.client import JobException, JobFailed, WorkData, WorkWarning

CLIENTS = Path(__file__).parent / "clients"
TIMEOUT = 20


@pytest.fixture
def client(server):
    with Client(server.address, timeout=TIMEOUT) as c:
        yield c


def start_foreign_worker(server, spawn, unique_name, interpreter, script, functions):
    prefix = unique_name("w")
    spawn([interpreter, CLIENTS / script, server.host, server.port, prefix])
    for fn in functions:
        server.wait_workers(f"{prefix}_{fn}")
    return prefix


@pytest.fixture
def php_worker(server, php_gearman, spawn, unique_name):
    return start_foreign_worker(server, spawn, unique_name, php_gearman, "php_worker.php",
                                ("rev", "status", "fail", "exc", "data"))


@pytest.fixture
def perl_worker(server, perl_gearman, spawn, unique_name):
    return start_foreign_worker(server, spawn, unique_name, perl_gearman, "perl_worker.pl",
                                ("rev", "fail", "exc"))


@pytest.fixture(params=["php", "perl"])
def foreign_worker(request):
    return request.getfixturevalue(f"{request.param}_worker")


# ---------------------------------------------------------------------------
# foreign workers, our Client

def test_foreign_worker_results(foreign_worker, client):
    prefix = foreign_worker
    assert client.call(f"{prefix}_rev", "hello world") == b"dlrow olleh"
    # No empty payload here: Perl's Gearman::Worker never takes such a job.
    assert client.map(f"{prefix}_rev", [b"abc", "x" * 5000 + "y", "\u00e9"]) == \
        [b"cba", b"y" + b"x" * 5000, "\u00e9".encode()[::-1]]
    with pytest.raises(JobFailed):
        client.call(f"{prefix}_fail", "x")
    with pytest.raises(JobException) as raised:
        client.call(f"{prefix}_exc", "payload")
    assert raised.value.message == "boom: payload"


def test_php_worker_data_warning_and_status(php_worker, client, tmp_path):
    job = client.submit(f"{php_worker}_data")
    events = list(job.events(timeout=TIMEOUT))
    assert events == [WorkData(b"part1,"), WorkWarning(b"careful"), WorkData(b"part2,")]
    assert job.result(timeout=TIMEOUT) == b"end"
    assert client.submit(f"{php_worker}_data").result_to(tmp_path / "out") == 15
    assert (tmp_path / "out").read_bytes() == b"part1,part2,end"

    release = tmp_path / "release"
    bg = client.submit(f"{php_worker}_status", str(release), background=True)
    running = wait_for(lambda: (lambda s: s.numerator and s)(client.status(bg.handle)),
                       TIMEOUT, 0.05, "the job to report 1/2")
    assert (running.known, running.running, running.numerator, running.denominator) == \
        (True, True, 1, 2)
    release.touch()
    wait_for(lambda: not client.status(bg.handle).known, TIMEOUT, 0.05, "the job to end")


# ---------------------------------------------------------------------------
# our Worker, the gearman CLI

@pytest.fixture
def py_worker(server, spawn, unique_name):
    return start_py_worker(spawn, [server], unique_name("py"))


def gearman(cli, server, *args, input=None, timeout=TIMEOUT):
    return subprocess.run([cli, "-h", server.host, "-p", str(server.port), *map(str, args)],
                          input=input, capture_output=True, timeout=timeout)


def test_gearman_cli_served_by_our_worker(server, gearman_cli, py_worker):
    prefix = py_worker.prefix
    out = gearman(gearman_cli, server, "-f", f"{prefix}_rev", "hello world")
    assert (out.returncode, out.stdout) == (0, b"dlrow olleh"), out.stderr
    out = gearman(gearman_cli, server, "-f", f"{prefix}_sum", input=b"1 2 3 4")
    assert (out.returncode, out.stdout) == (0, b"10")
    # -n keeps each line's newline, which `rev` puts first.
    out = gearman(gearman_cli, server, "-n", "-f", f"{prefix}_rev", input=b"ab\ncd\nef\n")
    assert sorted(out.stdout.split(b"\n")) == [b"", b"ba", b"dc", b"fe"]
    # WORK_DATA chunks are printed as they come, then the result.
    out = gearman(gearman_cli, server, "-f", f"{prefix}_data", "x")
    assert (out.returncode, out.stdout) == (0, b"part1,part2,end")


def test_gearman_cli_background_job_reaches_our_worker(server, gearman_cli, py_worker):
    prefix = py_worker.prefix
    out = gearman(gearman_cli, server, "-b", "-f", f"{prefix}_rev", "in the background")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: b" in the background\n" in Path(py_worker.out_path).read_bytes(),
             TIMEOUT, 0.05, "the worker to run the background job")


def test_gearman_cli_sees_our_workers_failures(server, gearman_cli, py_worker):
    """WorkFailed is WORK_FAIL: "Job failed". An exception is WORK_EXCEPTION,
    which a client without the `exceptions` option (the gearman CLI) gets
    as WORK_FAIL from mpgearman; gearmand's WORK_FAIL carries a trailing NUL
    that libgearman does not match (PROTOCOL.md 6 #16), so the CLI waits
    until its timeout there, as with any other worker library."""
    prefix = py_worker.prefix
    failed = gearman(gearman_cli, server, "-t", 3000, "-f", f"{prefix}_fail", "x")
    assert (failed.returncode, failed.stdout) == (1, b"")
    assert b"Job failed" in failed.stderr
    raised = gearman(gearman_cli, server, "-t", 3000, "-f", f"{prefix}_exc", "x")
    assert raised.stdout == b""
    if server.kind == "gearmand":
        assert b"timeout" in raised.stderr.lower(), raised.stderr
    else:
        assert raised.returncode == 1 and b"Job failed" in raised.stderr, raised.stderr
