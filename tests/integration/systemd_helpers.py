"""Helpers for the systemd integration tests: start `mpgearman serve` with
a chosen environment (NOTIFY_SOCKET, WATCHDOG_USEC, LISTEN_FDS,
JOURNAL_STREAM) and listen for its sd_notify datagrams."""
from __future__ import annotations

import os
import re
import socket
import sys
import time
from pathlib import Path

import psutil

from conftest import READY_RE, REPO_ROOT, mpgearman_argv
from gearproto import wait_for

READY_TIMEOUT = 20.0
# One log line: no timestamp under journald, role and pid, level, message.
JOURNAL_LINE = re.compile(
    r"<[2-7]>mpgearman (supervisor|coordinator|acceptor-\d+)\[(\d+)\] "
    r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) \S.*")


def server_env(**extra) -> dict:
    env = dict(os.environ)
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID",
                "LISTEN_FDS", "LISTEN_FDNAMES", "JOURNAL_STREAM"):
        env.pop(key, None)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def start(spawn, workdir: Path, *args: str, env=None, argv=None, **popen):
    """Spawn the server; returns (proc, [(host, port), ...]) once it has
    printed its listening line(s)."""
    spool = workdir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    proc = spawn(argv or mpgearman_argv(spool, *args), env=env or server_env(), **popen)

    def ready():
        text = proc.out_path.read_text("utf-8", "replace")
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n"
                                 f"{proc.err_path.read_text()}")
        return READY_RE.findall(text)

    found = wait_for(ready, READY_TIMEOUT, 0.02, "the server's listening line")
    return proc, [(host, int(port)) for host, port in found]


def children(proc) -> dict:
    """{process name: [pids]} of the server's children."""
    out = {}
    for child in psutil.Process(proc.pid).children():
        try:
            out.setdefault(child.name(), []).append(child.pid)
        except psutil.Error:
            pass
    return out


class NotifyListener:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []        # (monotonic time, {key: value})

    def poll(self, until: float) -> list:
        """Collect datagrams until the monotonic time `until`; returns the new ones."""
        new = []
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return new
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return new
            fields = dict(line.split("=", 1) for line in data.decode().split("\n"))
            new.append((time.monotonic(), fields))
            self.messages.extend(new[-1:])

    def wait(self, key: str, timeout: float, value: str | None = None) -> dict:
        """The next message carrying `key` (and `value`), within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, fields in self.poll(min(deadline, time.monotonic() + 0.1)):
                if key in fields and (value is None or fields[key] == value):
                    return fields
        raise AssertionError(f"no {key} within {timeout}s; got {self.messages[-5:]}")

    def close(self) -> None:
        self.sock.close()


def python_launcher() -> list:
    """argv prefix that execs the rest with the listening socket moved to
    fd 3 and LISTEN_PID set to the exec'd process's own pid, as systemd
    does (usage: [*python_launcher(), str(fd), "name", *server argv])."""
    code = ("import os, sys\n"
            "fd = int(sys.argv[1])\n"
            "if fd != 3:\n"
            "    os.dup2(fd, 3)\n"
            "    os.close(fd)\n"
            "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1',"
            " LISTEN_FDNAMES=sys.argv[2])\n"
            "os.execv(sys.argv[3], sys.argv[3:])\n")
    return [sys.executable, "-c", code]
