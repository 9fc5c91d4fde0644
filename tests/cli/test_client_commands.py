"""`mpgearman submit`, `work` and `job-status` without a server: argument
errors are click usage errors (exit 2), an unreachable server is exit 3,
and every error is one line, never a traceback."""
import socket
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from mpgearman import cli
from mpgearman.client import commands


def invoke(*args, env=None, input=None):
    return CliRunner().invoke(cli.main, [str(a) for a in args], env=env, input=input)


@pytest.fixture
def dead_server():
    """An address where nothing listens (bound, never listening: refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{s.getsockname()[1]}"


def run(*args, input=b"", env=None, timeout=30):
    return subprocess.run([sys.executable, "-m", "mpgearman", *map(str, args)],
                          input=input, capture_output=True, timeout=timeout, env=env)


@pytest.mark.parametrize("command", ["submit", "work", "job-status"])
def test_help_documents_the_exit_statuses(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Exit status: 0" in result.output
    assert "2 bad arguments" in result.output
    assert "3 (no server reachable)" in result.output if command == "work" else \
        "3 no server reachable" in result.output


@pytest.mark.parametrize("args, message", [
    (["submit"], "Missing argument 'FUNCTION'"),
    (["submit", "f", "data", "--file", __file__], "give DATA or --file, not both"),
    (["submit", "f", "--file", "/nonexistent/x"], "does not exist"),
    (["submit", "f", "--batch", "-", "data"], "--batch takes its data from FILE"),
    (["submit", "f", "--batch", "-", "--file", __file__], "--batch takes its data from FILE"),
    (["submit", "f", "--batch", "-", "--unique", "u"], "--unique would make every line"),
    (["submit", "f", "--priority", "urgent"], "'urgent' is not one of"),
    (["submit", "f", "--when", "tomorrow"], "neither a Unix time nor an ISO date-time"),
    (["submit", "f", "--when", "-5"], "is not a Unix time"),
    (["submit", "f", "x", "--when", "1767225600"],
     "--when schedules a background job: add --background"),
    (["submit", "f", "--timeout", "0"], "x>0"),
    (["submit", "f", "--concurrency", "0"], "1<=x"),
    (["submit", "f", "x", "-s", "host:notaport"], "--server"),
    (["work", "f"], "Missing argument 'COMMAND...'"),
    (["work", "f", "--", "no-such-command-here"], "command not found: no-such-command-here"),
    (["work", "f", "--concurrency", "0", "--", "cat"], "1<=x"),
    (["job-status"], "Missing argument 'HANDLE'"),
    (["job-status", "H:x:1", "--bogus"], "No such option"),
])
def test_bad_arguments_exit_2_with_one_clear_error(args, message):
    result = invoke(*args, input=b"")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_when_accepts_unix_and_iso_times():
    when = commands.When()
    assert when.convert("1767225600", None, None) == 1767225600
    assert when.convert("1767225600.5", None, None) == 1767225600.5
    utc = when.convert("2026-01-01T00:00:00Z", None, None)
    assert utc == datetime(2026, 1, 1, tzinfo=timezone.utc)
    local = when.convert("2026-01-01 12:30", None, None)
    assert local.tzinfo is not None and (local.hour, local.minute) == (12, 30)


def test_servers_from_repeats_commas_and_spaces():
    assert commands.split_servers(()) == ["127.0.0.1:4730"]
    assert commands.split_servers(("a:1,b:2", "c", " d:4 e ")) == \
        ["a:1", "b:2", "c", "d:4", "e"]


@pytest.mark.parametrize("args", [
    ["submit", "f", "data"],
    ["submit", "f", "data", "--background"],
    ["job-status", "H:x:1"],
])
def test_unreachable_server_is_exit_3_and_one_line(dead_server, args):
    proc = run(*args, "-s", dead_server, "--connect-timeout", "2")
    assert proc.returncode == 3, proc.stderr
    err = proc.stderr.decode()
    assert err.startswith("mpgearman: error: ") and err.count("\n") == 1, err
    assert dead_server in err
    assert proc.stdout == b""


def test_servers_from_the_environment(dead_server):
    import os
    proc = run("submit", "f", "x", "--connect-timeout", "2",
               env={**os.environ, "MPGEARMAN_SERVERS": dead_server})
    assert proc.returncode == 3
    assert dead_server in proc.stderr.decode()


def test_batch_with_no_server_stops_and_summarises(dead_server, tmp_path):
    source = tmp_path / "lines"
    source.write_bytes(b"a\nb\nc\n")
    proc = run("submit", "f", "--batch", source, "-s", dead_server,
               "--connect-timeout", "2")
    assert proc.returncode == 3
    err = proc.stderr.decode().splitlines()
    assert err[0].startswith("mpgearman: error: line 1: ")
    assert "Traceback" not in proc.stderr.decode()
    assert err[-1].startswith("mpgearman: succeeded 0, failed 1, elapsed ")
    assert proc.stdout == b"\n"


def test_work_names_an_unreachable_server_and_stops_cleanly(dead_server):
    """`work` keeps retrying (servers may start later) but says so once;
    SIGTERM still stops it with status 0."""
    import os
    import select
    import signal
    import time
    proc = subprocess.Popen([sys.executable, "-m", "mpgearman", "work", "f", "-s", dead_server,
                             "--", "cat"], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 15)
        line = proc.stderr.readline().decode() if ready else "<nothing within 15 s>"
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(15)
    finally:
        proc.kill()
    assert line.startswith("mpgearman: warning: ") and dead_server in line, line
    assert line.rstrip().endswith("the worker keeps trying")
    assert rc == 0
    assert proc.stderr.read() == b""
