"""The loads of the comparison: what each one runs, which figures it
yields, and the target each mpgearman figure is held to.

A load is measured on one server at a time by `measure(load, ...)`, which
returns a flat dict of figures (jobs/s, latencies, bytes per job, server
CPU per job, load generator CPU, ...). The figures shown in the table are
the `Figure`s of the load, each compared with the better gearmand of the
same round (higher or lower, by `better`).
"""
from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import psutil

import huge
from servers import HOST, Server, stop


@dataclass(frozen=True)
class Figure:
    key: str                 # key in the measured dict
    label: str
    unit: str                # how to print it: "/s", "us", "B", "MiB", "s", "x"
    better: str = "high"     # "high" or "low"
    # The target: on the ratio mpgearman / best gearmand ("ratio"), on
    # mpgearman's own figure ("value"), or on mpgearman's figure divided by
    # its own figure `of` another load in the same round ("self").
    target_on: str | None = None
    op: str = ">="
    target: float = 0.0
    of: tuple[str, str] | None = None      # ("load name", "figure key") for "self"

    def target_text(self) -> str:
        if self.target_on is None:
            return ""
        what = f"/ {self.of[0]}" if self.target_on == "self" else self.target_on
        return f"{what} {self.op} {fmt(self.target, self.unit if self.target_on == 'value' else 'x')}"


@dataclass(frozen=True)
class Load:
    name: str
    title: str
    kind: str                # "fg", "bg" or "huge"
    workers: int = 1
    connections: int = 1
    inflight: int = 1
    size: int = 0
    timed: bool = False      # fg: time every job (-L)
    jobs_option: str = ""    # bg: which option gives the job count
    impls: tuple[str, ...] = ("raw", "libgearman")
    mpgearman_only: bool = False
    figures: tuple[Figure, ...] = field(default_factory=tuple)


def cpu_figure() -> Figure:
    return Figure("server_us_per_job", "server CPU per job", "us", "low", "ratio", "<=", 1.0)


def _bg_figures(big: bool) -> tuple[Figure, ...]:
    if not big:
        return (Figure("submit_per_s", "submit", "/s", "high", "ratio", ">=", 1.5),
                Figure("drain_per_s", "drain", "/s", "high", "ratio", ">=", 1.5),
                Figure("bytes_per_job", "PSS per queued job", "B", "low"),
                cpu_figure())
    return (Figure("bytes_per_job", "PSS per queued job", "B", "low", "value", "<=", 400),
            Figure("submit_per_s", "submit", "/s", "high"),
            Figure("drain_per_s", "drain", "/s", "high"),
            Figure("submit_per_s", "submit vs 200k", "x", "high", "self", ">=", 0.8,
                   ("bg-200k", "submit_per_s")),
            Figure("drain_per_s", "drain vs 200k", "x", "high", "self", ">=", 0.8,
                   ("bg-200k", "drain_per_s")),
            Figure("kept_mib", "PSS kept after drain", "MiB", "low", "value", "<=", 32),
            cpu_figure())


LOADS = (
    Load("echo0-16x256", "0 B echo, 16 workers, 256 in flight", "fg", 16, 4, 64, 0,
         figures=(Figure("jobs_per_s", "jobs/s", "/s", "high", "ratio", ">=", 1.5),
                  cpu_figure())),
    Load("echo0-4x16", "0 B echo, 4 workers, 16 in flight", "fg", 4, 4, 4, 0,
         figures=(Figure("jobs_per_s", "jobs/s", "/s", "high", "ratio", ">=", 1.0),
                  cpu_figure())),
    Load("echo0-1x1", "0 B echo, 1 worker, 1 in flight", "fg", 1, 1, 1, 0, timed=True,
         figures=(Figure("latency_p50_us", "p50 latency", "us", "low", "ratio", "<=", 1.0),
                  Figure("latency_p99_us", "p99 latency", "us", "low"),
                  Figure("jobs_per_s", "jobs/s", "/s", "high"),
                  cpu_figure())),
    Load("echo64k-4x16", "64 KiB echo, 4 workers, 16 in flight", "fg", 4, 4, 4, 65536,
         figures=(Figure("jobs_per_s", "jobs/s", "/s", "high", "ratio", ">=", 1.0),
                  cpu_figure())),
    Load("bg-200k", "100 B background jobs, submit then 4 workers drain", "bg", 4, 4, 32,
         100, jobs_option="bg_jobs", figures=_bg_figures(False)),
    Load("bg-1m", "100 B background jobs queued (1M), then 4 workers drain", "bg", 4, 4,
         32, 100, jobs_option="big_bg_jobs", figures=_bg_figures(True)),
    # Opt-in (--huge): one job each, the bench's own streaming client and worker.
    Load("echo-1g", "1 GiB echo, one job", "huge", size=1 << 30, impls=("stream",),
         figures=(Figure("seconds", "time", "s", "low", "ratio", "<=", 1.0),
                  Figure("ok", "echoed intact", "x", "high", "value", ">=", 1),
                  Figure("rss_growth_mib", "server RSS growth", "MiB", "low",
                         "value", "<", 128))),
    # The largest job whose SUBMIT_JOB and WORK_COMPLETE both fit a packet of
    # 4 GiB - 1 (as in tests/integration/test_server_payload.py).
    Load("echo-4g", "4 GiB - 1 packet echo, one job (mpgearman only)", "huge",
         size=(4 << 30) - 1 - 64, impls=("stream",), mpgearman_only=True,
         figures=(Figure("ok", "echoed intact", "x", "high", "value", ">=", 1),
                  Figure("seconds", "time", "s", "low"),
                  Figure("rss_growth_mib", "server RSS growth", "MiB", "low",
                         "value", "<", 128))),
)
DEFAULT_LOADS = tuple(l.name for l in LOADS if l.kind != "huge")
HUGE_LOADS = tuple(l.name for l in LOADS if l.kind == "huge")
BY_NAME = {l.name: l for l in LOADS}


def fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "us":
        return f"{value:,.1f} us"
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "MiB":
        return f"{value:,.1f} MiB"
    if unit == "s":
        return f"{value:,.2f} s"
    return f"{value:.2f}"


# ---------------------------------------------------------------------------
# measuring one load on one server

def _json_line(line: bytes | str, what: str) -> dict:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        raise RuntimeError(f"{what}: unexpected output {line!r}") from None


def _wait_workers(srv: Server, fn: str, n: int, worker: subprocess.Popen) -> None:
    deadline = time.monotonic() + 15
    while srv.workers_of(fn) < n:
        if time.monotonic() > deadline or worker.poll() is not None:
            raise RuntimeError(f"workers did not register: {worker.stderr.read1().decode()}")
        time.sleep(0.02)


def measure_fg(load: Load, impl: str, loadgen: Path, srv: Server, args) -> dict:
    fn = f"bench_{load.name}_{uuid.uuid4().hex[:10]}"
    base = ["-h", HOST, "-p", str(srv.port), "-f", fn]
    worker = subprocess.Popen([str(loadgen), "worker", *base, "-t", str(load.workers),
                               "-W", impl, "-g", str(args.grab_ahead)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        _wait_workers(srv, fn, load.workers, worker)
        w_proc = psutil.Process(worker.pid)
        w_cpu0, s_cpu0, t0 = sum(w_proc.cpu_times()[:2]), srv.cpu_seconds(), time.monotonic()
        argv = [str(loadgen), "fg", *base, "-c", str(load.connections),
                "-k", str(load.inflight), "-s", str(load.size), "-d", str(args.duration)]
        proc = subprocess.run(argv + (["-L"] if load.timed else []), capture_output=True,
                              timeout=args.duration + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"loadgen fg failed: {proc.stderr.decode(errors='replace')}")
        res = _json_line(proc.stdout.strip().splitlines()[-1], "loadgen fg")
        wall = time.monotonic() - t0
        w_cpu = sum(w_proc.cpu_times()[:2]) - w_cpu0
        s_cpu = srv.cpu_seconds() - s_cpu0
    finally:
        stop(worker, 5)
    out = {k: res[k] for k in ("jobs", "failures", "jobs_per_s", "seconds")}
    if load.timed:
        out.update({k: res[k] for k in ("latency_p50_us", "latency_p90_us",
                                        "latency_p99_us", "latency_max_us")})
    out.update(_cpu(s_cpu, res["cpu_seconds"] + w_cpu, wall, res["jobs"]))
    return out


def _cpu(server_s: float, loadgen_s: float, wall: float, jobs: int) -> dict:
    return {"server_cpu_pct": 100 * server_s / wall,
            "loadgen_cpu_pct": 100 * loadgen_s / wall,
            "server_us_per_job": 1e6 * server_s / jobs if jobs else None}


def measure_bg(load: Load, impl: str, loadgen: Path, srv: Server, args) -> dict:
    """Submit, measure PSS with the jobs queued, drain, measure again."""
    fn = f"bench_{load.name}_{uuid.uuid4().hex[:10]}"
    jobs = getattr(args, load.jobs_option)
    pss0 = srv.memory("pss")
    s_cpu0, t0 = srv.cpu_seconds(), time.monotonic()
    proc = subprocess.Popen(
        [str(loadgen), "bg", "-h", HOST, "-p", str(srv.port), "-f", fn,
         "-c", str(load.connections), "-k", str(load.inflight), "-s", str(load.size),
         "-n", str(jobs), "-t", str(load.workers), "-W", impl, "-g", str(args.grab_ahead),
         "-P"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    try:
        first = proc.stdout.readline()
        if not first:
            raise RuntimeError(f"loadgen bg failed: {proc.stderr.read().decode(errors='replace')}")
        _json_line(first, "loadgen bg")
        pss1 = srv.memory("pss")
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"loadgen bg failed: {err.decode(errors='replace')}")
        res = _json_line(out.strip().splitlines()[-1], "loadgen bg")
    finally:
        stop(proc, 5)
    wall = time.monotonic() - t0
    s_cpu = srv.cpu_seconds() - s_cpu0
    time.sleep(args.settle)
    pss2 = srv.memory("pss")
    return {
        "jobs": res["jobs"], "failures": res["failures"],
        "submit_per_s": res["submit_per_s"], "drain_per_s": res["jobs_per_s"],
        "submit_seconds": res["submit_seconds"], "drain_seconds": res["drain_seconds"],
        "pss_before": pss0, "pss_queued": pss1, "pss_drained": pss2,
        "bytes_per_job": (pss1 - pss0) / jobs,
        "kept_mib": (pss2 - pss0) / (1 << 20),
        **_cpu(s_cpu, res["cpu_seconds"], wall, res["jobs"]),
    }


def measure_huge(load: Load, impl: str, loadgen: Path, srv: Server, args) -> dict:
    size = min(load.size, args.huge_bytes) if args.huge_bytes else load.size
    fn = f"bench_{load.name}_{uuid.uuid4().hex[:10]}"
    s_cpu0 = srv.cpu_seconds()
    res = huge.echo(srv, fn, size)
    res["server_us_per_job"] = 1e6 * (srv.cpu_seconds() - s_cpu0)
    return res


MEASURE = {"fg": measure_fg, "bg": measure_bg, "huge": measure_huge}


def measure(load: Load, impl: str, loadgen: Path, srv: Server, args) -> dict:
    return MEASURE[load.kind](load, impl, loadgen, srv, args)
