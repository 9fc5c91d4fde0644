"""The servers under test and the load generator: build loadgen.c, start
gearmand (with a given --threads) or `mpgearman serve` on loopback, and
read a server's process tree (CPU time, memory by PSS and RSS)."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HOST = "127.0.0.1"
READY_RE = re.compile(r"^mpgearman listening on (\S+):(\d+)$", re.M)


# ---------------------------------------------------------------------------
# the load generator

def build_loadgen(build_dir: Path) -> Path:
    """Compile loadgen.c into build_dir (named by the source hash, so a
    changed source is rebuilt and nothing is ever written into the repo)."""
    src = HERE / "loadgen.c"
    digest = hashlib.sha1(src.read_bytes()).hexdigest()[:12]
    binary = build_dir / f"loadgen-{digest}"
    if not binary.exists():
        build_dir.mkdir(parents=True, exist_ok=True)
        cc = os.environ.get("CC", "cc")
        tmp = binary.with_suffix(".tmp")
        cmd = [cc, "-O2", "-o", str(tmp), str(src), "-lgearman", "-lpthread"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"building the load generator failed ({' '.join(cmd)}):\n"
                     f"{proc.stderr}\n(needs a C compiler and libgearman-dev)")
        tmp.rename(binary)
    return binary


# ---------------------------------------------------------------------------
# servers

class Server:
    def __init__(self, kind: str, port: int, proc: subprocess.Popen):
        self.kind, self.port, self.proc = kind, port, proc

    def tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def memory(self, field: str) -> int:
        """`field` ("pss" or "rss") of memory_full_info() summed over the
        server's process tree (PSS shares the pages the forked processes
        have in common among them, so the sum is what the tree costs)."""
        total = 0
        for p in self.tree():
            try:
                total += getattr(p.memory_full_info(), field)
            except psutil.Error:
                pass
        return total

    def admin(self, line: str, timeout: float = 5.0) -> str:
        with socket.create_connection((HOST, self.port), timeout=timeout) as s:
            s.sendall(line.encode() + b"\n")
            buf = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                if line in ("status", "workers") and (buf == b".\n" or buf.endswith(b"\n.\n")):
                    break
                if line not in ("status", "workers") and buf.endswith(b"\n"):
                    break
            return buf.decode()

    def workers_of(self, function: str) -> int:
        for row in self.admin("status").splitlines():
            parts = row.split("\t")
            if parts[0] == function and len(parts) == 4:
                return int(parts[3])
        return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)   # its own session: only its tree
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


@contextmanager
def gearmand(workdir: Path, threads: int | None, label: str = "gearmand"):
    exe = shutil.which("gearmand") or "/usr/sbin/gearmand"
    if not os.access(exe, os.X_OK):
        sys.exit("gearmand is not installed (apt-get install gearman-job-server)")
    for _ in range(5):
        port = free_port()
        argv = [exe, "--listen", HOST, "--port", str(port), "--log-file", "none"]
        if threads is not None:
            argv += ["--threads", str(threads)]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=open(workdir / f"gearmand-{port}.err", "wb"),
                                start_new_session=True)
        srv = Server(label, port, proc)
        deadline = time.monotonic() + 10
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = srv.admin("getpid", 1.0) == f"OK {proc.pid}\n"
                break
            except OSError:
                time.sleep(0.02)
        if ready:
            try:
                yield srv
            finally:
                stop(proc)
            return
        stop(proc, 1)
    sys.exit("gearmand did not start")


@contextmanager
def mpgearman(workdir: Path, acceptors: int | None, durability: str = "second"):
    spool = workdir / "spool"
    spool.mkdir(exist_ok=True)
    name = f"mpgearman-{uuid.uuid4().hex[:8]}"
    argv = [sys.executable, "-m", "mpgearman", "serve", "--listen", HOST, "--port", "0",
            "--spool-dir", str(spool), "--durability", durability,
            "--data-dir", str(workdir / f"{name}.data")]
    if acceptors is not None:
        argv += ["--acceptors", str(acceptors)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    out_path, err_path = workdir / f"{name}.out", workdir / f"{name}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env, cwd=workdir, start_new_session=True)
    deadline = time.monotonic() + 30
    try:
        while True:
            m = READY_RE.search(out_path.read_text("utf-8", "replace"))
            if m:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("mpgearman did not start:\n" + err_path.read_text("utf-8", "replace")[-3000:])
            time.sleep(0.02)
        yield Server("mpgearman", int(m.group(2)), proc)
    finally:
        stop(proc)
