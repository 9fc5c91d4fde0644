"""Fixtures that run real servers: Debian's gearmand and mpgearman.

Everything here is safe under `pytest -n auto`: servers listen on ports
chosen at run time (never a fixed one), every wait is bounded, and every
process a fixture starts is killed in its teardown. Tests should name their
functions with `fname`/`unique_name` so nothing depends on a fresh server.

Fixtures
--------
gearmand_server   Debian gearmand on 127.0.0.1 (skips if not installed)
mpgearman_server  `python -m mpgearman serve` with 2 acceptors
server            parametrized ["mpgearman", "gearmand"]; use
                  @pytest.mark.parametrize("server", [...], indirect=True)
                  to narrow it
server_factory    server_factory("gearmand"|"mpgearman", *extra_args) for
                  tests that need several servers or special options
spawn             spawn(argv, ...) -> Popen, killed (whole group) at teardown
fname             a fresh function name per test (bytes-safe ASCII str)
unique_name       unique_name(prefix) -> another fresh name
gearman_cli, gearadmin_cli, php_gearman, perl_gearman
                  paths of the third-party tools; skip when one is missing

The yielded server objects have .kind .host .port .proc .workdir,
.connect() -> gearproto.Conn, .admin(line) -> raw reply bytes,
.pids() (the server's process tree) and .stop(); MpgearmanServer adds
.acceptor_pids() and .acceptor_of(sock).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from gearproto import Conn, parse_status, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
GEARMAND = shutil.which("gearmand") or (
    "/usr/sbin/gearmand" if os.access("/usr/sbin/gearmand", os.X_OK) else None)
READY_RE = re.compile(r"^mpgearman listening on (\S+):(\d+)$", re.M)
MPGEARMAN_READY_TIMEOUT = 20.0
GEARMAND_READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
HOST = "127.0.0.1"


# ---------------------------------------------------------------------------
# process helpers

def _connections(proc: psutil.Process):
    getter = getattr(proc, "net_connections", None) or proc.connections
    return getter(kind="tcp")


def kill_tree(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT,
              sig: int = signal.SIGTERM) -> int | None:
    """Send `sig` to `proc`, wait up to `timeout`, then SIGKILL it and every
    descendant (collected before signalling) and its process group."""
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    rc = proc.poll()
    # The group was created for this process (start_new_session), so killing
    # it reaches only what this fixture started.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for child in descendants:
        try:
            child.kill()
        except psutil.Error:
            pass
    if rc is None:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
    psutil.wait_procs(descendants, timeout=5)
    return rc


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return "<none>"
    return data[-limit:].decode("utf-8", "replace") or "<empty>"


# ---------------------------------------------------------------------------
# server objects

class Server:
    kind = "?"

    def __init__(self, host: str, port: int, proc: subprocess.Popen, workdir: Path):
        self.host = host
        self.port = port
        self.proc = proc
        self.workdir = workdir
        self.returncode: int | None = None

    def __repr__(self) -> str:
        return f"<{self.kind} {self.host}:{self.port} pid={self.proc.pid}>"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self, timeout: float = 5.0) -> Conn:
        return Conn(self.host, self.port, timeout)

    def admin(self, line: bytes | str, timeout: float = 5.0) -> bytes:
        """One admin command on a fresh connection; the raw reply."""
        with self.connect(timeout) as c:
            return c.admin(line, timeout)

    def status(self) -> dict[str, tuple[int, ...]]:
        return parse_status(self.admin("status"))

    def wait_workers(self, function: str, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until `function` has at least `count` registered workers."""
        wait_for(lambda: self.status().get(function, (0, 0, 0))[2] >= count,
                 timeout, 0.05, f"{count} worker(s) for {function} on {self}")

    def pids(self) -> set[int]:
        try:
            root = psutil.Process(self.proc.pid)
            return {root.pid} | {p.pid for p in root.children(recursive=True)}
        except psutil.Error:
            return set()

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        if self.returncode is None:
            self.returncode = kill_tree(self.proc, timeout)
        return self.returncode


class GearmandServer(Server):
    kind = "gearmand"


class MpgearmanServer(Server):
    kind = "mpgearman"

    def acceptor_pids(self) -> list[int]:
        """Children of the supervisor that hold a LISTEN socket on our port
        (the coordinator holds none). Falls back to children whose
        cmdline or name says `acceptor`."""
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return []
        found, named = [], []
        for child in children:
            try:
                if any(c.status == psutil.CONN_LISTEN and c.laddr
                       and c.laddr.port == self.port for c in _connections(child)):
                    found.append(child.pid)
                elif "acceptor" in (" ".join(child.cmdline()) + child.name()).lower():
                    named.append(child.pid)
            except psutil.Error:
                continue
        return sorted(found or named)

    def acceptor_of(self, sock, timeout: float = 5.0) -> int:
        """Pid of the acceptor holding the server side of the connected
        client socket `sock` (a socket or a gearproto.Conn)."""
        sock = getattr(sock, "sock", sock)
        local_port = sock.getsockname()[1]

        def find():
            for pid in self.acceptor_pids():
                try:
                    conns = _connections(psutil.Process(pid))
                except psutil.Error:
                    continue
                for c in conns:
                    if c.raddr and c.raddr.port == local_port and \
                            c.laddr and c.laddr.port == self.port:
                        return pid
            return None
        # Right after connect() the socket may still sit in a listen queue.
        return wait_for(find, timeout, 0.02,
                        f"an acceptor holding client port {local_port}")


# ---------------------------------------------------------------------------
# starting servers

def start_gearmand(workdir: Path, *extra_args: str, attempts: int = 5) -> GearmandServer:
    if GEARMAND is None:
        pytest.skip("gearmand is not installed (Debian package gearman-job-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    errors = []
    for attempt in range(attempts):
        port = free_port()
        log = workdir / f"gearmand-{port}.log"
        argv = [GEARMAND, "--listen", HOST, "--port", str(port),
                "--log-file", "stderr", "--verbose", "WARNING", *extra_args]
        with open(log, "wb") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                    stdout=err, stderr=err, cwd=workdir,
                                    start_new_session=True)
        server = GearmandServer(HOST, port, proc, workdir)
        if _gearmand_ready(server):
            return server
        kill_tree(proc, 2)
        errors.append(f"attempt {attempt + 1} on port {port}: rc={proc.returncode}\n"
                      f"{_tail(log)}")
    pytest.fail("gearmand did not start:\n" + "\n".join(errors))


def _gearmand_ready(server: GearmandServer) -> bool:
    """Wait until the port answers `getpid` with our process' pid (a port
    picked by bind-then-close may have been taken by someone else)."""
    deadline = time.monotonic() + GEARMAND_READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            return False
        try:
            reply = server.admin("getpid", timeout=1.0)
        except (OSError, AssertionError):
            time.sleep(0.02)
            continue
        return reply == f"OK {server.proc.pid}\n".encode()
    return False


def mpgearman_argv(spool: Path, *extra_args: str, acceptors: int = 2) -> list[str]:
    return [sys.executable, "-m", "mpgearman", "serve", "--listen", HOST,
            "--port", "0", "--acceptors", str(acceptors),
            "--spool-dir", str(spool), *extra_args]


def start_mpgearman(workdir: Path, *extra_args: str, acceptors: int = 2) -> MpgearmanServer:
    workdir.mkdir(parents=True, exist_ok=True)
    spool = workdir / "spool"
    spool.mkdir(exist_ok=True)
    out_path, err_path = workdir / "mpgearman.out", workdir / "mpgearman.err"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    # The default --data-dir (the journal) is under $XDG_STATE_HOME: the test's own.
    env["XDG_STATE_HOME"] = str(workdir / "state")
    env.pop("STATE_DIRECTORY", None)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(mpgearman_argv(spool, *extra_args, acceptors=acceptors),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                cwd=workdir, env=env, start_new_session=True)
    deadline = time.monotonic() + MPGEARMAN_READY_TIMEOUT
    while True:
        match = READY_RE.search(out_path.read_text("utf-8", "replace"))
        if match:
            return MpgearmanServer(match.group(1), int(match.group(2)), proc, workdir)
        if proc.poll() is not None:
            kill_tree(proc, 1)
            pytest.fail(f"mpgearman exited with {proc.returncode} before it was "
                        f"ready.\nstderr:\n{_tail(err_path)}\nstdout:\n{_tail(out_path)}")
        if time.monotonic() > deadline:
            kill_tree(proc, 2)
            pytest.fail(f"mpgearman printed no ready line within "
                        f"{MPGEARMAN_READY_TIMEOUT}s.\nstderr:\n{_tail(err_path)}\n"
                        f"stdout:\n{_tail(out_path)}")
        time.sleep(0.02)


STARTERS = {"gearmand": start_gearmand, "mpgearman": start_mpgearman}


# ---------------------------------------------------------------------------
# fixtures

@pytest.fixture
def server_factory(tmp_path):
    started: list[Server] = []

    def factory(kind: str, *extra_args: str, **kwargs) -> Server:
        workdir = tmp_path / f"{kind}-{len(started)}"
        srv = STARTERS[kind](workdir, *extra_args, **kwargs)
        started.append(srv)
        return srv

    yield factory
    for srv in reversed(started):
        srv.stop()


@pytest.fixture
def gearmand_server(server_factory):
    return server_factory("gearmand")


@pytest.fixture
def mpgearman_server(server_factory):
    return server_factory("mpgearman")


@pytest.fixture(params=["mpgearman", "gearmand"])
def server(request):
    """Each test using it runs against both servers."""
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture
def spawn(tmp_path):
    """spawn(argv, **popen_kwargs) -> Popen in its own process group;
    stdout/stderr default to files tmp_path/spawnN.{out,err} (the paths are
    set as proc.out_path / proc.err_path). All killed at teardown."""
    procs: list[subprocess.Popen] = []
    files = []

    def _spawn(argv, **kwargs) -> subprocess.Popen:
        n = len(procs)
        out_path, err_path = tmp_path / f"spawn{n}.out", tmp_path / f"spawn{n}.err"
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        for key, path in (("stdout", out_path), ("stderr", err_path)):
            if key not in kwargs:
                files.append(open(path, "wb"))
                kwargs[key] = files[-1]
        kwargs.setdefault("cwd", tmp_path)
        proc = subprocess.Popen([str(a) for a in argv], start_new_session=True, **kwargs)
        proc.out_path, proc.err_path = out_path, err_path
        procs.append(proc)
        return proc

    yield _spawn
    for proc in reversed(procs):
        kill_tree(proc, 2)
    for f in files:
        f.close()


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture
def gearman_cli() -> str:
    """Path of the `gearman` CLI (Debian gearman-tools), else skip."""
    return _tool("gearman")


@pytest.fixture
def gearadmin_cli() -> str:
    """Path of `gearadmin` (Debian gearman-tools), else skip."""
    return _tool("gearadmin")


@pytest.fixture
def php_gearman() -> str:
    """Path of a php CLI that has the gearman extension, else skip."""
    php = _tool("php")
    mods = subprocess.run([php, "-m"], capture_output=True, text=True, timeout=30)
    if "gearman" not in mods.stdout.split():
        pytest.skip("the PHP gearman extension (php-gearman) is not installed")
    return php


@pytest.fixture
def perl_gearman() -> str:
    """Path of a perl that has Gearman::Client/Worker, else skip."""
    perl = _tool("perl")
    check = subprocess.run([perl, "-MGearman::Client", "-MGearman::Worker", "-e1"],
                           capture_output=True, timeout=30)
    if check.returncode != 0:
        pytest.skip("Perl Gearman::Client is not installed (libgearman-client-perl)")
    return perl


@pytest.fixture
def unique_name():
    def make(prefix: str = "t") -> str:
        return f"{prefix}_{uuid.uuid4().hex[:16]}"
    return make


@pytest.fixture
def fname(unique_name) -> str:
    return unique_name("fn")
