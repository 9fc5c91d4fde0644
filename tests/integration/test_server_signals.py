"""Signals and process ids the server meets in the field: a SIGHUP that
reaches a child (a closing terminal hangs up the whole process group), and
the supervisor running as pid 1 (a container's entrypoint)."""
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from conftest import MPGEARMAN_READY_TIMEOUT, READY_RE, REPO_ROOT, MpgearmanServer, kill_tree
from gearproto import PacketType as T
from gearproto import wait_for


def _run_one_job(srv, fname):
    with srv.connect() as worker, srv.connect() as client:
        worker.send_packet(T.CAN_DO, fname.encode())
        handle = client.submit(T.SUBMIT_JOB, fname.encode(), b"", b"ping")
        worker.send_packet(T.GRAB_JOB)
        worker.expect(T.JOB_ASSIGN, handle + b"\0" + fname.encode() + b"\0ping")
        worker.send_packet(T.WORK_COMPLETE, handle, b"pong")
        client.expect(T.WORK_COMPLETE, handle + b"\0pong")


def _coordinator(srv):
    return next(p.pid for p in psutil.Process(srv.proc.pid).children()
                if p.name() == "mpg-coordinator")


@pytest.mark.parametrize("target", ["coordinator", "acceptor", "group"])
def test_sighup_to_a_child_or_the_process_group_is_harmless(server_factory, fname, target):
    srv = server_factory("mpgearman")
    pids = srv.pids()
    if target == "coordinator":
        os.kill(_coordinator(srv), signal.SIGHUP)
    elif target == "acceptor":
        os.kill(srv.acceptor_pids()[0], signal.SIGHUP)
    else:       # what a closing terminal sends to a foreground `mpgearman serve`
        os.killpg(srv.proc.pid, signal.SIGHUP)
    gone, _ = psutil.wait_procs([psutil.Process(p) for p in pids], timeout=1.0)
    assert not gone, [(p.pid, p.returncode) for p in gone]
    _run_one_job(srv, fname)
    assert srv.pids() == pids
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(10) == 0
    err = (srv.workdir / "mpgearman.err").read_text()
    assert "exited" not in err and "Traceback" not in err, err


def _unshare_works():
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    try:
        probe = subprocess.run([unshare, "-pf", "--mount-proc", "true"],
                               capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return unshare if probe.returncode == 0 else None


def test_the_server_runs_as_pid_1_of_a_pid_namespace(spawn, tmp_path, fname):
    unshare = _unshare_works()
    if unshare is None:
        pytest.skip("unshare -pf --mount-proc is not available or not permitted here")
    spool = tmp_path / "spool"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    proc = spawn([unshare, "-pf", "--mount-proc", sys.executable, "-m", "mpgearman", "serve",
                  "--listen", "127.0.0.1", "--port", "0", "--acceptors", "2",
                  "--spool-dir", str(spool)], env=env)
    deadline = time.monotonic() + MPGEARMAN_READY_TIMEOUT
    while not (match := READY_RE.search(proc.out_path.read_text("utf-8", "replace"))):
        assert proc.poll() is None, proc.err_path.read_text()
        assert time.monotonic() < deadline, proc.err_path.read_text()
        time.sleep(0.05)
    supervisor = wait_for(lambda: psutil.Process(proc.pid).children(), 5,
                          message="the supervisor under unshare")[0]
    srv = MpgearmanServer(match.group(1), int(match.group(2)), proc, tmp_path)
    assert srv.admin("getpid") == b"OK 1\n"        # the server is pid 1 where it runs
    _run_one_job(srv, fname)
    assert len(psutil.Process(supervisor.pid).children()) == 3
    os.kill(supervisor.pid, signal.SIGTERM)
    assert proc.wait(10) == 0
    err = proc.err_path.read_text()
    assert "exited" not in err and "cannot start" not in err, err
    kill_tree(proc, 1)


def _on_a_terminal(argv, ignore_hangup=False, err_path=None):
    """Start argv as the foreground of a new terminal (a pty); returns (pid,
    the terminal's master fd). `ignore_hangup`: as `nohup` does, until the
    server sets its own handler. `err_path`: stderr to that file instead."""
    import pty
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    pid, master = pty.fork()
    if pid == 0:    # pragma: no cover - the child becomes the server at once
        if ignore_hangup:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        if err_path is not None:
            os.dup2(os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
        os.write(1, b"+")
        os.execve(argv[0], argv, env)
    assert os.read(master, 1) == b"+"       # the terminal is the child's now
    return pid, master


def _stop_and_reap(pid):
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    pytest.fail("the server did not stop on SIGTERM")


def _kill_tree_of(pid):
    try:
        for p in psutil.Process(pid).children(recursive=True):
            p.kill()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (psutil.Error, ProcessLookupError, ChildProcessError):
        pass


def _serve_argv(tmp_path, port=0):
    return [sys.executable, "-m", "mpgearman", "serve", "--listen", "127.0.0.1",
            "--port", str(port), "--acceptors", "2", "--spool-dir", str(tmp_path / "spool")]


def test_a_closing_terminal_neither_kills_nor_stops_the_server(tmp_path, fname):
    """`mpgearman serve` in the foreground of a terminal that goes away:
    the kernel sends SIGHUP to the session leader (the supervisor; a shell
    in between passes it to the whole group, as tested above), and writes
    to the terminal fail from then on."""
    import select
    pid, master = _on_a_terminal(_serve_argv(tmp_path))
    try:
        out, deadline = b"", time.monotonic() + MPGEARMAN_READY_TIMEOUT
        while not (match := READY_RE.search(out.decode("utf-8", "replace"))) \
                or not out.endswith(b"\n"):
            assert time.monotonic() < deadline, out
            if select.select([master], [], [], 0.1)[0]:
                out += os.read(master, 4096).replace(b"\r", b"")
        supervisor = psutil.Process(pid)
        pids = {pid} | {p.pid for p in supervisor.children()}
        os.close(master)
        master = -1
        gone, _ = psutil.wait_procs([psutil.Process(p) for p in pids], timeout=1.0)
        assert not gone, [(p.pid, p.returncode) for p in gone]
        srv = MpgearmanServer(match.group(1), int(match.group(2)), None, tmp_path)
        _run_one_job(srv, fname)
        assert {pid} | {p.pid for p in supervisor.children()} == pids
        assert _stop_and_reap(pid) == 0
        pid = 0
    finally:
        if master >= 0:
            os.close(master)
        if pid:
            _kill_tree_of(pid)


def test_a_terminal_gone_before_the_ready_line_is_no_reason_to_stop(tmp_path, fname):
    """The ready line goes to a terminal that hung up already (EIO)."""
    from conftest import free_port
    port = free_port()
    err = tmp_path / "server.err"
    pid, master = _on_a_terminal(_serve_argv(tmp_path, port), ignore_hangup=True,
                                 err_path=err)
    os.close(master)
    try:
        def serving():      # logged after the ready line
            done, status = os.waitpid(pid, os.WNOHANG)
            assert not done, f"the server exited ({os.waitstatus_to_exitcode(status)}):\n" \
                             f"{err.read_text()}"
            return "INFO serving on" in err.read_text()
        wait_for(serving, MPGEARMAN_READY_TIMEOUT, 0.05, "the server to serve")
        _run_one_job(MpgearmanServer("127.0.0.1", port, None, tmp_path), fname)
        assert _stop_and_reap(pid) == 0
        pid = 0
    finally:
        if pid:
            _kill_tree_of(pid)
