"""The stock `gearman` and `gearadmin` CLIs (Debian gearman-tools, built on
libgearman 1.1.20) against both servers. Output formats are those of
PROTOCOL.md 4.2 and 4.4; `version` and `getpid` values differ between
servers, so only their shape is checked.
"""
from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from gearproto import PacketType as T, wait_for

CLI_TIMEOUT = 30


def run(argv, input: bytes | None = None, timeout: float = CLI_TIMEOUT):
    return subprocess.run([str(a) for a in argv], input=input, capture_output=True,
                          timeout=timeout)


@pytest.fixture
def gearman(server, gearman_cli):
    """gearman(*args, input=b"") -> CompletedProcess, connected to `server`."""
    def call(*args, input: bytes | None = b"", timeout: float = CLI_TIMEOUT):
        return run([gearman_cli, "-h", server.host, "-p", server.port, *args],
                   input=input, timeout=timeout)
    return call


@pytest.fixture
def gearadmin(server, gearadmin_cli):
    def call(*args, timeout: float = CLI_TIMEOUT):
        return run([gearadmin_cli, "-h", server.host, "-p", server.port, *args],
                   timeout=timeout)
    return call


@pytest.fixture
def cli_worker(server, gearman_cli, spawn):
    """cli_worker(function, *command, count=None) starts `gearman -w` running
    `command` per job and waits until the server lists it as a worker."""
    def start(function: str, *command: str, count: int | None = None, wait: bool = True):
        argv = [gearman_cli, "-h", server.host, "-p", server.port, "-w", "-f", function]
        if count is not None:
            argv += ["-c", count]
        proc = spawn([*argv, "--", *command])
        if wait:
            server.wait_workers(function)
        return proc
    return start


def lines(data: bytes) -> list[str]:
    return data.decode().splitlines()


# ---------------------------------------------------------------------------
# gearman client and worker

def test_foreground_job(server, gearman, cli_worker, fname):
    cli_worker(fname, "rev")
    out = gearman("-f", fname, input=b"hello\n")
    assert (out.returncode, out.stdout, out.stderr) == (0, b"olleh\n", b"")


def test_foreground_job_from_argument(server, gearman, cli_worker, fname):
    cli_worker(fname, "tr", "a-z", "A-Z")
    out = gearman("-f", fname, "from argv", input=None)
    assert (out.returncode, out.stdout) == (0, b"FROM ARGV")


def test_foreground_job_with_prefix(server, gearman, cli_worker, fname):
    cli_worker(fname, "rev")
    out = gearman("-P", "-f", fname, input=b"abc\n")
    assert out.stdout == f"{fname}: cba\n".encode()


def test_several_jobs_one_per_line(server, gearman, cli_worker, fname):
    cli_worker(fname, "rev")
    words = [f"word{i}" for i in range(10)]
    out = gearman("-n", "-f", fname, input="".join(w + "\n" for w in words).encode())
    assert out.returncode == 0, out.stderr
    assert sorted(lines(out.stdout)) == sorted(w[::-1] for w in words)


def test_several_clients_in_parallel(server, gearman, cli_worker, fname):
    cli_worker(fname, "rev")
    cli_worker(fname, "rev", wait=False)
    server.wait_workers(fname, 2)
    payloads = [f"payload-{i}-{'x' * i}\n".encode() for i in range(12)]
    with ThreadPoolExecutor(6) as pool:
        outs = list(pool.map(lambda p: gearman("-f", fname, input=p), payloads))
    for payload, out in zip(payloads, outs):
        assert out.stdout == payload[:-1][::-1] + b"\n", out.stderr


@pytest.mark.parametrize("flag", ["-I", "-L"], ids=["high", "low"])
def test_foreground_priority(server, gearman, cli_worker, fname, flag):
    cli_worker(fname, "rev")
    out = gearman(flag, "-f", fname, "priority", input=None)
    assert (out.returncode, out.stdout) == (0, b"ytiroirp")


def test_background_job(server, gearman, cli_worker, fname, tmp_path):
    out = gearman("-b", "-f", fname, "bg-payload", input=None)
    assert (out.returncode, out.stdout, out.stderr) == (0, b"", b"")
    assert server.status()[fname] == (1, 0, 0)
    sink = tmp_path / "sink"
    cli_worker(fname, "sh", "-c", f"cat > {sink}", count=1, wait=False)
    wait_for(lambda: sink.exists() and sink.read_bytes() == b"bg-payload",
             10, message="the worker to run the background job")
    wait_for(lambda: server.status()[fname][:2] == (0, 0), 10,
             message="the job to leave the queue")


def test_background_unique_coalesces(server, gearman, gearadmin, cli_worker, fname,
                                     unique_name, tmp_path):
    uniq = unique_name("u")
    for data in ("first", "second"):
        out = gearman("-b", "-u", uniq, "-f", fname, data, input=None)
        assert out.returncode == 0, out.stderr
    assert server.status()[fname] == (1, 0, 0)
    assert gearadmin("--show-unique-jobs").stdout == f"{uniq}\n.\n".encode()
    sink = tmp_path / "sink"
    cli_worker(fname, "sh", "-c", f"cat >> {sink}", count=1, wait=False)
    wait_for(lambda: server.status()[fname][0] == 0, 10, message="the job to finish")
    assert sink.read_bytes() == b"first"


def test_background_priorities_order(server, gearman, gearadmin, cli_worker, fname,
                                     tmp_path):
    """-I/-L set the priority: prioritystatus counts them, and one worker
    gets high, then normal, then low, FIFO within each (PROTOCOL.md 3.6)."""
    submissions = [("-L", "low1"), (None, "normal1"), ("-I", "high1"),
                   ("-L", "low2"), ("-I", "high2"), (None, "normal2")]
    for flag, data in submissions:
        out = gearman(*([flag] if flag else []), "-b", "-f", fname, data, input=None)
        assert out.returncode == 0, out.stderr
    prio = gearadmin("--priority-status")
    assert prio.stdout == f"{fname}\t2\t2\t2\t0\n.\n".encode()
    order = tmp_path / "order"
    cli_worker(fname, "sh", "-c", f"cat >> {order}; echo >> {order}", count=6,
               wait=False)
    wait_for(lambda: order.exists() and len(lines(order.read_bytes())) == 6, 15,
             message="six jobs to run")
    assert lines(order.read_bytes()) == ["high1", "high2", "normal1", "normal2",
                                         "low1", "low2"]


# ---------------------------------------------------------------------------
# gearadmin

def test_gearadmin_status(server, gearadmin, gearman, cli_worker, fname):
    cli_worker(fname + "_w", "rev")
    gearman("-b", "-f", fname + "_q", "x", input=None)
    out = gearadmin("--status")
    assert out.returncode == 0 and out.stderr == b""
    got = lines(out.stdout)
    assert got[-1] == "."
    assert sorted(got[:-1]) == sorted([f"{fname}_q\t1\t0\t0", f"{fname}_w\t0\t0\t1"])


def test_gearadmin_status_empty(server, gearadmin):
    assert gearadmin("--status").stdout == b".\n"


def test_gearadmin_workers(server, gearadmin, cli_worker, fname):
    cli_worker(fname, "rev")
    out = lines(gearadmin("--workers").stdout)
    assert out[-1] == "."
    pattern = re.compile(r"^\d+ 127\.0\.0\.1 (\S+) :( \S+)*$")
    for line in out[:-1]:
        assert pattern.match(line), line
    # the gearman worker and gearadmin's own connection
    assert any(line.endswith(f" : {fname}") for line in out)
    assert any(line.endswith(" :") for line in out)


def test_gearadmin_priority_status(server, gearadmin, gearman, cli_worker, fname):
    cli_worker(fname, "rev")
    for flag in ("-I", "-I", "-L"):
        gearman(flag, "-b", "-f", fname + "_q", "x", input=None)
    got = lines(gearadmin("--priority-status").stdout)
    assert got[-1] == "."
    assert sorted(got[:-1]) == sorted([f"{fname}_q\t2\t0\t1\t0", f"{fname}\t0\t0\t0\t1"])


def test_gearadmin_show_jobs(server, gearadmin, gearman, fname, unique_name):
    uniq = unique_name("u")
    gearman("-b", "-u", uniq, "-f", fname, "x", input=None)
    shown = lines(gearadmin("--show-jobs").stdout)
    assert len(shown) == 2 and shown[1] == "."
    assert re.fullmatch(r"H:[^:\s]+(:\d+)?:\d+\t0\t0\t1", shown[0]), shown
    assert gearadmin("--show-unique-jobs").stdout == f"{uniq}\n.\n".encode()


def test_gearadmin_show_unique_jobs_generated(server, gearadmin, gearman, fname):
    """Without -u the CLI sends a generated UUID as the unique (4.4)."""
    gearman("-b", "-f", fname, "x", input=None)
    shown = lines(gearadmin("--show-unique-jobs").stdout)
    assert len(shown) == 2 and shown[1] == "."
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                        shown[0]), shown


def test_gearadmin_server_version(server, gearadmin):
    out = gearadmin("--server-version")
    version = out.stdout.decode()
    if server.kind == "gearmand":
        assert version == "1.1.20+ds\n" or re.fullmatch(r"1\.1\.\d+\S*\n", version)
    assert re.fullmatch(r"\d+\.\d+\S*\n", version), version


def test_gearadmin_server_verbose(server, gearadmin):
    out = gearadmin("--server-verbose").stdout.decode()
    assert out.rstrip("\n") in {"FATAL", "ALERT", "CRITICAL", "ERROR", "WARNING",
                                "NOTICE", "INFO", "DEBUG"}, out


def test_gearadmin_getpid(server, gearadmin):
    out = gearadmin("--getpid").stdout.decode()
    assert re.fullmatch(r"\d+\n", out), out
    assert int(out) in server.pids()


def test_gearadmin_create_drop_function(server, gearadmin, fname):
    out = gearadmin("--create-function", fname)
    assert (out.stdout, out.stderr) == (b"OK\n", b"")
    assert server.status() == {fname: (0, 0, 0)}
    out = gearadmin("--drop-function", fname)
    assert (out.stdout, out.stderr) == (b"OK\n", b"")
    assert server.status() == {}


def test_gearadmin_drop_function_not_found(server, gearadmin, fname):
    out = gearadmin("--drop-function", fname)
    assert out.stdout == b""
    # gearadmin prints the ERR line's text, its \r included, and exits 0
    assert out.stderr.decode().strip() == "Error: function not found"


def test_gearadmin_cancel_job(server, gearadmin, gearman, fname):
    gearman("-b", "-f", fname, "x", input=None)
    handle = gearadmin("--show-jobs").stdout.decode().split("\t")[0]
    out = gearadmin("--cancel-job", handle)
    assert (out.stdout, out.stderr) == (b"OK\n", b"")


def test_gearadmin_cancel_job_not_found(server, gearadmin):
    out = gearadmin("--cancel-job", "H:nosuchhost:999")
    assert out.stdout == b""
    assert out.stderr.decode().strip() == "Error: UNKNOWN_JOB"


def test_cancel_job_fails_waiting_cli_client(server, gearadmin, gearman_cli, fname):
    """A cancelled foreground job ends the waiting `gearman` client (it gets
    WORK_FAIL with the bare handle, PROTOCOL.md 4.2)."""
    client = subprocess.Popen([gearman_cli, "-h", server.host, "-p", str(server.port),
                               "-f", fname, "x"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True)
    try:
        handle = wait_for(lambda: gearadmin("--show-jobs").stdout.decode().split("\t")[0]
                          if server.status().get(fname) else None,
                          10, message="the job to be queued")
        assert gearadmin("--cancel-job", handle).stdout == b"OK\n"
        out, err = client.communicate(timeout=10)
        assert out == b""
        assert b"fail" in err.lower(), err
    finally:
        client.kill()
        client.wait(5)


def test_wire_format_of_cli_worker(server, cli_worker, fname):
    """`gearman -w` uses GRAB_JOB_ALL and gets JOB_ASSIGN_UNIQ (PROTOCOL.md
    2, #39): a raw client sees its result forwarded unchanged."""
    cli_worker(fname, "tr", "a-z", "A-Z")
    with server.connect() as c:
        handle = c.submit(T.SUBMIT_JOB, fname.encode(), b"raw-uniq", b"abc\n")
        c.expect(T.WORK_COMPLETE, handle + b"\0ABC\n", timeout=10)
