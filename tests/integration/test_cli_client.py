"""`mpgearman submit`, `work` and `job-status` end to end, against both
servers: data from the argument, stdin and a file, results and WORK_DATA on
stdout, the exit statuses (0 done, 1 failed, 4 timed out; 2 and 3 are in
tests/cli), background jobs and their status, batches, and a `work`
process stopped with SIGTERM while it runs a job."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clientproc import env, start_py_worker, start_work
from gearproto import wait_for

TIMEOUT = 30


def run_mpg(*args, input: bytes | None = b"", timeout: float = TIMEOUT):
    return subprocess.run([sys.executable, "-m", "mpgearman", *map(str, args)], input=input,
                          capture_output=True, timeout=timeout, env=env())


@pytest.fixture
def mpg(server):
    """mpg(*args, input=b"") -> CompletedProcess of `mpgearman ARGS -s SERVER`."""
    def call(*args, **kwargs):
        return run_mpg(*args, "-s", server.address, **kwargs)
    return call


@pytest.fixture
def work(server, spawn):
    """work(function, *command, concurrency=1) starts `mpgearman work`."""
    def start(function: str, *command: str, concurrency: int = 1):
        return start_work(spawn, server, function, *command, concurrency=concurrency)
    return start


@pytest.fixture
def py_worker(server, spawn, unique_name):
    """Starts clients/py_worker.py (our Worker); returns its function prefix."""
    return start_py_worker(spawn, [server], unique_name("py")).prefix


def err_lines(proc) -> list[str]:
    return proc.stderr.decode().splitlines()


# ---------------------------------------------------------------------------
# submit: where the data comes from, where the result goes

def test_data_from_argument_stdin_and_dash(work, mpg, fname):
    work(fname, "tr", "a-z", "A-Z")
    assert mpg("submit", fname, "from argv", input=None).stdout == b"FROM ARGV"
    assert mpg("submit", fname, input=b"from a pipe").stdout == b"FROM A PIPE"
    out = mpg("submit", fname, "-", input=b"dash")
    assert (out.returncode, out.stdout, out.stderr) == (0, b"DASH", b"")


@pytest.mark.parametrize("priority", ["high", "normal", "low"])
def test_priorities(work, mpg, fname, priority):
    work(fname, "rev")
    out = mpg("submit", fname, "--priority", priority, "abc", input=None)
    assert (out.returncode, out.stdout) == (0, b"cba")


def test_big_file_both_ways(work, mpg, fname, tmp_path):
    """3 MiB through --file, `mpgearman work` running cat, and back to
    stdout: above every in-memory threshold on the way."""
    data = os.urandom(3 << 20)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    work(fname, "cat")
    out = mpg("submit", fname, "--file", src)
    assert out.returncode == 0, out.stderr
    assert out.stdout == data


def test_work_data_chunks_then_result(py_worker, mpg):
    out = mpg("submit", f"{py_worker}_data")
    assert (out.returncode, out.stdout) == (0, b"part1,part2,end")


def test_status_and_warnings_go_to_stderr(py_worker, mpg, tmp_path):
    release = tmp_path / "released"
    release.touch()
    out = mpg("submit", f"{py_worker}_status", str(release))
    assert (out.returncode, out.stdout) == (0, b"released"), out.stderr
    assert err_lines(out) == ["mpgearman: status 1/2 (50%)", "mpgearman: status 2/2 (100%)"]
    out = mpg("submit", f"{py_worker}_data")
    assert (out.returncode, out.stdout) == (0, b"part1,part2,end")
    assert err_lines(out) == ["mpgearman: warning: careful"]


def read_terminal(master: int) -> bytes:
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:          # EIO: the terminal's other side is closed
            return shown
        if not chunk:
            return shown
        shown += chunk


@pytest.mark.parametrize("data, shown", [("abc", b"cba\r\n"), ("\nabc", b"cba\r\n")])
def test_result_ends_with_a_newline_on_a_terminal(py_worker, server, data, shown):
    import pty
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "mpgearman", "submit",
                               f"{py_worker}_rev", data, "-s", server.address],
                              stdin=subprocess.DEVNULL, stdout=slave,
                              stderr=subprocess.PIPE, timeout=TIMEOUT, env=env())
        os.close(slave)
        output = read_terminal(master)
    finally:
        os.close(master)
    assert proc.returncode == 0, proc.stderr
    assert output == shown
    # Not on a pipe: the result exactly as the worker sent it.
    assert run_mpg("submit", f"{py_worker}_rev", "abc", "-s", server.address,
                   input=None).stdout == b"cba"


# ---------------------------------------------------------------------------
# exit statuses

def test_job_failed_and_exception_exit_1(py_worker, mpg):
    failed = mpg("submit", f"{py_worker}_fail", "x")
    assert failed.returncode == 1 and failed.stdout == b""
    assert re.fullmatch(rf"mpgearman: error: job \S+ \({py_worker}_fail\) failed: no",
                        failed.stderr.decode().rstrip("\n")), failed.stderr
    raised = mpg("submit", f"{py_worker}_exc", "x")
    assert raised.returncode == 1
    assert err_lines(raised) == ["mpgearman: error: job raised an exception: "
                                 "ValueError: boom: x"]


def test_command_exit_status_becomes_fail_or_exception(work, mpg, unique_name):
    noisy, quiet = unique_name("noisy"), unique_name("quiet")
    noisy_worker = work(noisy, "sh", "-c",
                        "cat >/dev/null; echo first >&2; echo 'the last line' >&2; exit 3")
    work(quiet, "false")
    out = mpg("submit", noisy, "x")
    assert out.returncode == 1
    assert err_lines(out) == ["mpgearman: error: job raised an exception: "
                              "CommandError: the last line"]
    # The command's failure is the job's outcome, not an error of `work`.
    assert Path(noisy_worker.err_path).read_bytes() == b""
    out = mpg("submit", quiet, "x")
    assert out.returncode == 1
    # WorkFailed's reason (`work` names the exit status) reaches the client.
    assert re.fullmatch(rf"mpgearman: error: job \S+ \({quiet}\) failed: "
                        r"false exited with status 1",
                        out.stderr.decode().rstrip("\n")), out.stderr


def test_work_timeout_kills_the_command_and_the_job_runs_again(server, spawn, mpg, fname,
                                                               tmp_path):
    mark = tmp_path / "first-run"
    script = f'if [ -e {mark} ]; then tr a-z A-Z; else touch {mark}; exec sleep 60; fi'
    worker = spawn([sys.executable, "-m", "mpgearman", "work", fname, "-s", server.address,
                    "--timeout", "1", "--", "sh", "-c", script], env=env())
    server.wait_workers(fname)
    started = time.monotonic()
    out = mpg("submit", fname, "again")
    assert (out.returncode, out.stdout) == (0, b"AGAIN"), out.stderr
    assert time.monotonic() - started < 20          # not the 60 s of the first run
    wait_for(lambda: b"timeout" in Path(worker.err_path).read_bytes(), 10,
             message="the overrun warning")
    assert "was stopped at its 1 s timeout" in Path(worker.err_path).read_text()


def test_timeout_exit_4(py_worker, mpg):
    started = time.monotonic()
    out = mpg("submit", f"{py_worker}_slow", "5", "--timeout", "0.5")
    assert out.returncode == 4, out.stderr
    assert time.monotonic() - started < 4.5
    assert re.fullmatch(rf"mpgearman: error: job \S+ \({py_worker}_slow\): "
                        r"no result within 0\.5 s", out.stderr.decode().rstrip()), out.stderr


def test_lost_server_exit_3(py_worker, server):
    proc = subprocess.Popen([sys.executable, "-m", "mpgearman", "submit", f"{py_worker}_slow",
                             "10", "-s", server.address], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env())
    try:
        wait_for(lambda: server.status().get(f"{py_worker}_slow", (0, 0, 0))[1] == 1, 10,
                 message="the job to start")
        server.stop()
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert (proc.returncode, out) == (3, b""), err
    assert err.decode().startswith("mpgearman: error: ") and err.count(b"\n") == 1, err
    assert server.address.encode() in err


# ---------------------------------------------------------------------------
# background jobs and job-status

def status_json(mpg, handle) -> tuple[int, dict]:
    out = mpg("job-status", handle, "--json")
    return out.returncode, json.loads(out.stdout)


def test_background_job_status_while_it_runs(py_worker, mpg, server, tmp_path):
    release = tmp_path / "release"
    out = mpg("submit", "--background", f"{py_worker}_status", str(release))
    assert out.returncode == 0, out.stderr
    handle = out.stdout.decode().strip()
    assert handle.startswith("H:") and out.stdout.endswith(b"\n")
    running = wait_for(lambda: (lambda s: s[1]["running"] and s)(status_json(mpg, handle)),
                       15, 0.1, "the job to run")
    assert running == (0, {"handle": handle, "server": server.address, "known": True,
                           "running": True, "numerator": 1, "denominator": 2})
    text = mpg("job-status", handle)
    assert text.returncode == 0
    assert text.stdout.decode().splitlines()[2:] == [
        "known:    yes", "running:  yes", "progress: 1/2 (50%)"]
    release.touch()
    wait_for(lambda: status_json(mpg, handle)[0] == 1, 15, 0.1, "the job to end")
    gone = mpg("job-status", handle)
    assert "known:    no" in gone.stdout.decode()


def test_queued_and_future_jobs(mpg, fname, unique_name, server):
    queued = mpg("submit", "-b", fname, "later").stdout.decode().strip()
    assert status_json(mpg, queued) == (0, {
        "handle": queued, "server": server.address,
        "known": True, "running": False, "numerator": 0, "denominator": 0})
    for when in (str(int(time.time()) + 3600), "2099-01-01T00:00:00+00:00"):
        future = mpg("submit", "-b", unique_name("epoch"), "x", "--when", when)
        assert future.returncode == 0, future.stderr
        code, status = status_json(mpg, future.stdout.decode().strip())
        assert (code, status["known"], status["running"]) == (0, True, False)


def test_when_without_background_is_a_usage_error(mpg, fname, server):
    out = mpg("submit", fname, "x", "--when", str(int(time.time()) + 3600))
    assert out.returncode == 2 and out.stdout == b""
    assert "--when schedules a background job: add --background" in out.stderr.decode()
    assert fname not in server.status()


def test_unique_coalesces(mpg, fname, unique_name, server):
    uniq = unique_name("u")
    first = mpg("submit", "-b", "--unique", uniq, fname, "one")
    second = mpg("submit", "-b", "--unique", uniq, fname, "two")
    other = mpg("submit", "-b", "--unique", uniq + "x", fname, "three")
    assert first.stdout == second.stdout != other.stdout
    assert server.status()[fname][0] == 2


def test_unknown_handle_exit_1(mpg):
    out = mpg("job-status", "H:nowhere:987654321")
    assert out.returncode == 1
    assert "known:    no" in out.stdout.decode()
    assert err_lines(out) == ["mpgearman: error: no server knows job H:nowhere:987654321 "
                              "(it has ended, or never existed)"]


# ---------------------------------------------------------------------------
# batches

UPPER_UNLESS_BAD = ('x=$(cat); case "$x" in *bad*) echo "refused $x" >&2; exit 1;; esac; '
                    'printf %s "$x" | tr a-z A-Z')


def test_batch_results_in_input_order(work, mpg, fname, tmp_path):
    work(fname, "sh", "-c", UPPER_UNLESS_BAD, concurrency=4)
    words = [f"word{i}" if i % 9 != 4 else f"bad{i}" for i in range(40)]
    src = tmp_path / "words"
    src.write_text("".join(w + "\n" for w in words))
    out = mpg("submit", fname, "--batch", src, "--concurrency", 8)
    assert out.returncode == 1
    expected = [b"" if w.startswith("bad") else w.upper().encode() for w in words]
    assert out.stdout.split(b"\n") == expected + [b""]
    errors = [line for line in err_lines(out) if "error" in line]
    bad = [i + 1 for i, w in enumerate(words) if w.startswith("bad")]
    assert errors == [f"mpgearman: error: line {n}: job raised an exception: "
                      f"CommandError: refused bad{n - 1}" for n in bad]
    summary = err_lines(out)[-1]
    assert summary.startswith(f"mpgearman: succeeded {40 - len(bad)}, failed {len(bad)}, elapsed ")
    assert summary.endswith(" jobs/s")


def test_batch_from_stdin_with_progress_lines(work, mpg, fname):
    work(fname, "rev", concurrency=2)
    lines = b"".join(b"line%d\n" % i for i in range(20))
    out = mpg("submit", fname, "--batch", "-", "--progress-interval", "0.000001", input=lines)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(b"\n")[:-1] == [(b"line%d" % i)[::-1] for i in range(20)]
    progress = [line for line in err_lines(out) if line.startswith("mpgearman: progress: ")]
    assert progress and progress[-1].startswith("mpgearman: progress: 20, 0 failed, ")
    assert err_lines(out)[-1].startswith("mpgearman: succeeded 20, failed 0, ")


def test_batch_in_background_prints_handles(mpg, fname, server):
    out = mpg("submit", fname, "--batch", "-", "--background", input=b"a\nb\nc")
    assert out.returncode == 0, out.stderr
    handles = out.stdout.decode().splitlines()
    assert len(handles) == 3 and len(set(handles)) == 3
    assert server.status()[fname][0] == 3


# ---------------------------------------------------------------------------
# work

def test_work_sigterm_finishes_the_job_in_hand(work, server, fname):
    worker = work(fname, "sh", "-c", "sleep 1; tr a-z A-Z")
    client = subprocess.Popen([sys.executable, "-m", "mpgearman", "submit", fname, "busy",
                               "-s", server.address], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env())
    try:
        wait_for(lambda: server.status().get(fname, (0, 0, 0))[1] == 1, 10,
                 message="the job to start")
        worker.send_signal(signal.SIGTERM)
        out, err = client.communicate(timeout=TIMEOUT)
    finally:
        client.kill()
    assert (client.returncode, out) == (0, b"BUSY"), err
    assert worker.wait(TIMEOUT) == 0
    assert Path(worker.err_path).read_bytes() == b""


def test_work_says_when_it_loses_its_server(work, server, fname):
    worker = work(fname, "cat")
    server.stop()
    wait_for(lambda: b"mpgearman: warning: " in Path(worker.err_path).read_bytes(), 15,
             message="a warning about the lost server")
    lines = Path(worker.err_path).read_text().splitlines()
    assert len(lines) == 1 and server.address in lines[0], lines
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(TIMEOUT) == 0


def test_batch_progress_bar_on_a_terminal(work, server, fname, tmp_path):
    """stderr a terminal: click's bar (with the total for a file), then the summary."""
    import pty
    work(fname, "rev", concurrency=2)
    src = tmp_path / "lines"
    src.write_text("".join(f"l{i}\n" for i in range(30)))
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "mpgearman", "submit", fname, "--batch",
                               src, "-s", server.address], stdout=subprocess.PIPE,
                              stderr=slave, timeout=TIMEOUT, env=env())
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:          # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0
    assert proc.stdout.split(b"\n")[:-1] == [f"l{i}"[::-1].encode() for i in range(30)]
    text = shown.decode()
    assert "jobs  [" in text and "30/30" in text, text
    assert "mpgearman: succeeded 30, failed 0, " in text
    assert "mpgearman: progress:" not in text


def test_job_status_asks_each_server(server_factory, fname):
    """The first server that knows the handle answers; an unknown handle
    with a server down is exit 3 (it may live there), not 1."""
    a, b = server_factory("mpgearman"), server_factory("mpgearman")
    handle = run_mpg("submit", "-b", fname, "x", "-s", b.address).stdout.decode().strip()
    both = ["-s", f"{a.address},{b.address}"]
    listed = run_mpg("job-status", handle, "--json", *both)
    status = json.loads(listed.stdout)
    assert (listed.returncode, status["server"], status["known"]) == (0, b.address, True)
    a.stop()
    found = run_mpg("job-status", handle, *both)
    assert found.returncode == 0 and f"server:   {b.address}" in found.stdout.decode()
    missing = run_mpg("job-status", "H:nowhere:1", *both)
    assert missing.returncode == 3
    assert err_lines(missing)[0].startswith("mpgearman: error: job H:nowhere:1 is unknown "
                                            "to the servers that answered; ")
    assert a.address in missing.stderr.decode()
