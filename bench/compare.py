#!/usr/bin/env python3
"""Throughput of mpgearman against Debian's gearmand, side by side.

Starts each server on loopback (gearmand with its default --threads,
`python -m mpgearman serve --port 0`), drives it with the C load generator
bench/loadgen.c (compiled on the fly into a build directory), and prints the
median jobs/s per server over R runs, the ratio mpgearman/gearmand, and the
CPU used by the servers and by the load generator itself (to show the load
generator is not the bottleneck). A JSON result file is written as well.

    python bench/compare.py                     # both servers, 5 runs
    python bench/compare.py --servers gearmand --runs 3 --modes fg

See bench/README.md for what each mode measures.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import orjson
import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HOST = "127.0.0.1"
READY_RE = re.compile(r"^mpgearman listening on (\S+):(\d+)$", re.M)
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mpgearman-bench"


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
                if line in ("status", "workers", "stats") and (buf == b".\n" or buf.endswith(b"\n.\n")):
                    break
                if line not in ("status", "workers", "stats") and buf.endswith(b"\n"):
                    break
            return buf.decode()

    def journal_writes(self) -> int | None:
        """Writes (group commits) to mpgearman's journal so far; None without one."""
        for row in self.admin("stats").splitlines():
            if row.startswith("journal.writes "):
                return int(row.split()[1])
        return None

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
def gearmand(workdir: Path, threads: int | None):
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
        srv = Server("gearmand", port, proc)
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
    argv = [sys.executable, "-m", "mpgearman", "serve", "--listen", HOST, "--port", "0",
            "--spool-dir", str(spool), "--data-dir", str(workdir / "data"),
            "--durability", durability]
    if acceptors is not None:
        argv += ["--acceptors", str(acceptors)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    out_path, err_path = workdir / "mpgearman.out", workdir / "mpgearman.err"
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


# ---------------------------------------------------------------------------
# one measurement

def run_json(argv: list[str], timeout: float) -> dict:
    proc = subprocess.run(argv, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): "
                           f"{proc.stderr.decode(errors='replace')}")
    return orjson.loads(proc.stdout.strip().splitlines()[-1])


def worker_flags(args) -> list[str]:
    return ["-W", args.worker_impl, "-g", str(args.grab_ahead)]


def measure_fg(loadgen: Path, srv: Server, args) -> dict:
    fn = f"bench_fg_{uuid.uuid4().hex[:10]}"
    base = ["-h", HOST, "-p", str(srv.port), "-f", fn]
    worker = subprocess.Popen([str(loadgen), "worker", *base, "-t", str(args.workers),
                               *worker_flags(args)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while srv.workers_of(fn) < args.workers:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError(f"workers did not register: {worker.stderr.read1().decode()}")
            time.sleep(0.02)
        w_proc = psutil.Process(worker.pid)
        w_cpu0, s_cpu0, t0 = sum(w_proc.cpu_times()[:2]), srv.cpu_seconds(), time.monotonic()
        res = run_json([str(loadgen), "fg", *base, "-c", str(args.connections),
                        "-k", str(args.inflight), "-s", str(args.size),
                        "-d", str(args.duration)], timeout=args.duration + 120)
        wall = time.monotonic() - t0
        w_cpu = sum(w_proc.cpu_times()[:2]) - w_cpu0
        s_cpu = srv.cpu_seconds() - s_cpu0
    finally:
        stop(worker, 5)
    return {
        "jobs": res["jobs"], "failures": res["failures"],
        "jobs_per_s": res["jobs_per_s"], "seconds": res["seconds"],
        "server_cpu_pct": 100 * s_cpu / wall,
        "loadgen_client_cpu_pct": 100 * res["cpu_seconds"] / wall,
        "loadgen_worker_cpu_pct": 100 * w_cpu / wall,
        "loadgen_cpu_pct": 100 * (res["cpu_seconds"] + w_cpu) / wall,
    }


def measure_bg(loadgen: Path, srv: Server, args) -> dict:
    fn = f"bench_bg_{uuid.uuid4().hex[:10]}"
    writes0 = srv.journal_writes() if srv.kind == "mpgearman" else None
    s_cpu0, t0 = srv.cpu_seconds(), time.monotonic()
    res = run_json([str(loadgen), "bg", "-h", HOST, "-p", str(srv.port), "-f", fn,
                    "-c", str(args.connections), "-k", str(args.inflight),
                    "-s", str(args.size), "-n", str(args.bg_jobs), "-t", str(args.workers),
                    *worker_flags(args)],
                   timeout=600)
    wall = time.monotonic() - t0
    s_cpu = srv.cpu_seconds() - s_cpu0
    batch = {}
    if writes0 is not None:
        # Each job is a SUBMIT, a RUN and an END record: records per journal write.
        writes = srv.journal_writes() - writes0
        batch = {"journal_writes": writes,
                 "journal_records_per_write": 3 * res["jobs"] / writes if writes else 0}
    return {**batch,
        "jobs": res["jobs"], "failures": res["failures"],
        "jobs_per_s": res["jobs_per_s"],            # drain rate
        "submit_per_s": res["submit_per_s"],
        "submit_seconds": res["submit_seconds"], "drain_seconds": res["drain_seconds"],
        "server_cpu_pct": 100 * s_cpu / wall,
        "loadgen_cpu_pct": 100 * res["cpu_seconds"] / wall,
    }


MEASURE = {"fg": measure_fg, "bg": measure_bg}


# ---------------------------------------------------------------------------

def summarise(runs: list[dict], servers: list[str], modes: list[str]) -> dict:
    summary = {}
    for mode in modes:
        summary[mode] = {}
        for kind in servers:
            rows = [r["result"] for r in runs if r["server"] == kind and r["mode"] == mode]
            if not rows:
                continue
            summary[mode][kind] = {key: statistics.median(row[key] for row in rows)
                                   for key in rows[0] if isinstance(rows[0][key], (int, float))}
            summary[mode][kind]["runs"] = len(rows)
        if {"gearmand", "mpgearman"} <= summary[mode].keys():
            g = summary[mode]["gearmand"]["jobs_per_s"]
            summary[mode]["ratio_mpgearman_gearmand"] = (
                summary[mode]["mpgearman"]["jobs_per_s"] / g if g else None)
    return summary


def print_summary(summary: dict) -> None:
    print()
    print(f"{'mode':<4} {'server':<10} {'jobs/s (median)':>16} {'server CPU%':>12} "
          f"{'loadgen CPU%':>13} {'runs':>5}")
    for mode, per in summary.items():
        for kind in ("gearmand", "mpgearman"):
            if kind in per:
                s = per[kind]
                extra = f"   submit {s['submit_per_s']:,.0f}/s" if "submit_per_s" in s else ""
                if "journal_records_per_write" in s:
                    extra += f"   journal records/write {s['journal_records_per_write']:,.1f}"
                print(f"{mode:<4} {kind:<10} {s['jobs_per_s']:>16,.0f} "
                      f"{s['server_cpu_pct']:>12.0f} {s['loadgen_cpu_pct']:>13.0f} "
                      f"{s['runs']:>5}{extra}")
        ratio = per.get("ratio_mpgearman_gearmand")
        if ratio is not None:
            print(f"{mode:<4} ratio mpgearman/gearmand: {ratio:.2f}")
    print("(CPU% is of one core; this machine has "
          f"{os.cpu_count()} logical CPUs)")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--servers", default="gearmand,mpgearman",
                   help="comma-separated: gearmand, mpgearman")
    p.add_argument("--modes", default="fg,bg", help="comma-separated: fg, bg")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per fg run")
    p.add_argument("--bg-jobs", type=int, default=100_000, help="jobs per bg run")
    p.add_argument("--workers", type=int, default=8,
                   help="worker connections (libgearman: one thread each)")
    p.add_argument("--worker-impl", choices=["raw", "libgearman"], default="raw",
                   help="raw: the load generator's own epoll workers, the same packets "
                        "as libgearman at a fraction of its CPU; libgearman: "
                        "gearman_worker_st threads")
    p.add_argument("--grab-ahead", type=int, default=1,
                   help="GRAB_JOBs each raw worker keeps outstanding (1 = one job "
                        "at a time, like libgearman)")
    p.add_argument("--connections", type=int, default=4, help="client connections")
    p.add_argument("--inflight", type=int, default=32,
                   help="pipelined submissions per client connection")
    p.add_argument("--size", type=int, default=64, help="payload bytes per job")
    p.add_argument("--gearmand-threads", type=int, default=None,
                   help="gearmand --threads (default: gearmand's own default)")
    p.add_argument("--durability", choices=["always", "second", "none"], default="second",
                   help="mpgearman's --durability (its journal goes in the run's temp dir)")
    p.add_argument("--acceptors", type=int, default=None,
                   help="mpgearman --acceptors (default: mpgearman's own default)")
    p.add_argument("--build-dir", type=Path, default=CACHE / "build")
    p.add_argument("--output", type=Path, default=None,
                   help="JSON result file (default: a timestamped file in "
                        f"{CACHE / 'results'})")
    args = p.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    args.modes = [m for m in args.modes.split(",") if m]
    for s in args.servers:
        if s not in ("gearmand", "mpgearman"):
            p.error(f"unknown server {s}")
    for m in args.modes:
        if m not in MEASURE:
            p.error(f"unknown mode {m}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    loadgen = build_loadgen(args.build_dir)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    output = args.output or CACHE / "results" / f"compare-{stamp}.json"
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        print(f"note: the 1-minute load average is {load1:.1f} before starting; "
              "other activity on the machine skews the numbers", flush=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="mpgearman-bench-") as tmp:
        tmp = Path(tmp)
        starters = {"gearmand": lambda: gearmand(tmp, args.gearmand_threads),
                    "mpgearman": lambda: mpgearman(tmp, args.acceptors, args.durability)}
        contexts = {kind: starters[kind]() for kind in args.servers}
        servers = {}
        try:
            for kind, ctx in contexts.items():
                servers[kind] = ctx.__enter__()
                print(f"{kind}: 127.0.0.1:{servers[kind].port} pid {servers[kind].proc.pid}",
                      flush=True)
            # Interleave servers within each run so drift hits both alike.
            for i in range(args.runs):
                for mode in args.modes:
                    for kind in args.servers:
                        result = MEASURE[mode](loadgen, servers[kind], args)
                        runs.append({"run": i, "server": kind, "mode": mode,
                                     "result": result})
                        print(f"run {i + 1}/{args.runs} {mode} {kind:<9} "
                              f"{result['jobs_per_s']:>10,.0f} jobs/s  "
                              f"server CPU {result['server_cpu_pct']:.0f}%  "
                              f"loadgen CPU {result['loadgen_cpu_pct']:.0f}%", flush=True)
        finally:
            for kind in reversed(list(servers)):
                contexts[kind].__exit__(None, None, None)
    summary = summarise(runs, args.servers, args.modes)
    print_summary(summary)
    gearmand_version = None
    if shutil.which("gearmand") or os.access("/usr/sbin/gearmand", os.X_OK):
        exe = shutil.which("gearmand") or "/usr/sbin/gearmand"
        gearmand_version = subprocess.run([exe, "--version"], capture_output=True,
                                          text=True).stdout.strip() or None
    doc = {
        "when": stamp,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "loadavg_before": load1, "loadavg_after": os.getloadavg()[0]},
        "gearmand_version": gearmand_version,
        "loadgen": loadgen.name,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "runs": runs,
        "summary": summary,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(f"results written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
