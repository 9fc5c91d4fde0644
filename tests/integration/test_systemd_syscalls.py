"""The unit's syscall filter, MemoryDenyWriteExecute= and ExecPaths=
against what the server really does: run it under strace through
start-up, a spooled job (sendfile), a reload that rolls the acceptors, and
a stop; every syscall seen must be allowed by the SystemCallFilter= lines
of systemd/mpgearman.service, no mapping may be writable and executable at
once, and every program run or file mapped executable must lie under the
unit's ExecPaths= (NoExecPaths=/ covers the rest)."""
import os
import re
import shutil
import signal
import subprocess
import sys

import psutil
import pytest

from conftest import REPO_ROOT
from gearproto import Conn, PacketType as T, wait_for
from systemd_helpers import server_env, start

SYSCALL = re.compile(r"^\d+\s+([a-z0-9_]+)\(", re.M)
WRITE_EXEC = re.compile(r"PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE")
# with strace -y a descriptor shows its path: 3</usr/lib/.../libc.so.6>
EXEC_MAP = re.compile(r"^\d+\s+mmap\([^\n]*PROT_EXEC[^\n]*?, \d+<([^>\n]+)>", re.M)
EXECVE = re.compile(r'^\d+\s+execve\("([^"]+)"', re.M)


def _exec_roots():
    """The unit's ExecPaths=, with its venv (/opt/mpgearman) standing for
    where this test runs the server from: the interpreter's prefixes and
    the source tree."""
    unit = (REPO_ROOT / "systemd" / "mpgearman.service").read_text()
    listed = re.search(r"(?m)^ExecPaths=(.*)$", unit).group(1).split()
    roots = [p.lstrip("-") for p in listed if p != "/opt/mpgearman"]
    assert len(roots) == len(listed) - 1, listed
    roots += [sys.prefix, sys.base_prefix, str(REPO_ROOT)]
    return {os.path.realpath(r) for r in roots} | set(roots)


def _outside(paths, roots):
    return sorted({p for p in paths
                   if not any(os.path.realpath(p).startswith(r.rstrip("/") + "/")
                              for r in roots)})


def _filter_groups(analyze):
    listing = subprocess.run([analyze, "syscall-filter"], capture_output=True, text=True,
                             timeout=60).stdout
    groups, current = {}, None
    for line in listing.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.split()[0], set())
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.add(line.split()[0])
    return groups


def _expand(groups, name):
    out = set()
    for item in groups.get(name, ()):
        out |= _expand(groups, item) if item.startswith("@") else {item}
    return out


def _allowed_by_unit(analyze):
    """The syscalls the service's SystemCallFilter= lines allow (an allow
    list first, then ~ lines taking groups or calls away)."""
    groups = _filter_groups(analyze)
    unit = (REPO_ROOT / "systemd" / "mpgearman.service").read_text()
    allowed = set()
    for value in re.findall(r"(?m)^SystemCallFilter=(.*)$", unit):
        deny = value.startswith("~")
        names = set()
        for word in value.lstrip("~").split():
            names |= _expand(groups, word) if word.startswith("@") else {word}
        allowed = allowed - names if deny else allowed | names
    assert allowed, "the unit has no SystemCallFilter= allow list"
    return allowed


def test_the_units_filter_allows_what_the_server_needs():
    """Without strace: the calls the server is known to make (fork, memfd
    shared memory, eventfd doorbells, prctl, prlimit64 (glibc's setrlimit), sendfile, epoll)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    needed = {"memfd_create", "eventfd2", "prctl", "sendfile", "clone",
              "prlimit64", "epoll_wait", "epoll_ctl", "socketpair", "sched_getaffinity",
              "mmap", "ftruncate", "wait4", "kill", "setsockopt", "accept4"}
    allowed = _allowed_by_unit(analyze)
    assert needed <= allowed, needed - allowed


def test_everything_the_server_calls_passes_the_units_filter(spawn, tmp_path, fname):
    strace, analyze = shutil.which("strace"), shutil.which("systemd-analyze")
    if strace is None or analyze is None:
        pytest.skip("needs strace and systemd-analyze")
    trace = tmp_path / "strace.out"
    conf = tmp_path / "mpgearman.toml"
    conf.write_text("")
    argv = [strace, "-f", "-qq", "-y", "-o", str(trace), sys.executable, "-m", "mpgearman",
            "serve", "--listen", "127.0.0.1", "--port", "0", "--acceptors", "2",
            "--spool-dir", str(tmp_path / "spool"), "--config", str(conf)]
    proc, [(host, port)] = start(spawn, tmp_path, argv=argv, env=server_env())
    supervisor = psutil.Process(proc.pid).children()[0]

    data = bytes(range(256)) * 400            # 100 KiB: spooled, sent with sendfile
    with Conn(host, port) as client, Conn(host, port) as worker:
        handle = client.submit(T.SUBMIT_JOB, fname.encode(), b"", data)
        worker.send_packet(T.CAN_DO, fname.encode())
        worker.send_packet(T.GRAB_JOB)
        job = worker.expect(T.JOB_ASSIGN, timeout=20)
        assert job.payload == handle + b"\0" + fname.encode() + b"\0" + data
        worker.send_packet(T.WORK_COMPLETE, handle, b"done")
        client.expect(T.WORK_COMPLETE, handle + b"\0done", timeout=20)

    conf.write_text("max-queued-output = \"2M\"\n")
    supervisor.send_signal(signal.SIGHUP)
    wait_for(lambda: "acceptors 2-3 serve" in proc.err_path.read_text(), 30, 0.1, "the roll")
    supervisor.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0

    text = trace.read_text()
    used = set(SYSCALL.findall(text))
    assert {"memfd_create", "eventfd2", "sendfile", "prctl", "clone"} <= used
    assert used - _allowed_by_unit(analyze) == set()
    assert not WRITE_EXEC.search(text)
    mapped = EXEC_MAP.findall(text)
    assert any("libc" in p for p in mapped), mapped[:5]       # the pattern reads -y output
    roots = _exec_roots()
    assert _outside(mapped + EXECVE.findall(text), roots) == []
