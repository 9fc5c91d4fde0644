#!/usr/bin/env python3
"""mpgearman against Debian's gearmand, side by side, on every load of the
targets.

Each round starts, for every load and worker implementation, fresh servers
on loopback: gearmand -t 1, gearmand with its default --threads, and
`python -m mpgearman serve --port 0`; drives each in turn with the C load
generator bench/loadgen.c (compiled on the fly into a build directory); and
stops them. Rounds are interleaved (every load on every server, then the
next round), and the order of the servers rotates from one round to the
next. The table shows, per load and figure, the median over the rounds of
mpgearman's figure, of the better gearmand of each round, and of their
ratio, the target and whether it is met, and the CPU of the servers and of
the load generator. A JSON file with every run is written as well.

    python bench/compare.py                     # every target load, 5 rounds
    python bench/compare.py --huge              # + the 1 GiB and 4 GiB - 1 echoes
    python bench/compare.py --rounds 1 --duration 1 --bg-jobs 20000 \\
        --big-bg-jobs 50000                     # a quick check that all loads run

See bench/README.md for what each load measures.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import orjson

import report
from loads import BY_NAME, DEFAULT_LOADS, HUGE_LOADS, LOADS, fmt, measure
from servers import REPO, build_loadgen, gearmand, mpgearman

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mpgearman-bench"
SERVERS = ("gearmand-t1", "gearmand", "mpgearman")
IMPLS = ("raw", "libgearman")


def start(kind: str, workdir: Path, args):
    if kind == "mpgearman":
        return mpgearman(workdir, args.acceptors, args.durability)
    if kind == "gearmand-t1":
        return gearmand(workdir, 1, kind)
    return gearmand(workdir, args.gearmand_threads, kind)


def impls_of(load, args) -> list[str]:
    if load.kind == "huge":
        return list(load.impls)
    return [i for i in args.worker_impls if i in load.impls]


def servers_of(load, args, rnd: int) -> list[str]:
    kinds = [k for k in args.servers if k == "mpgearman" or not load.mpgearman_only]
    shift = rnd % len(kinds)
    return kinds[shift:] + kinds[:shift]        # rotate: no server always goes first


def brief(load, res: dict) -> str:
    parts = [f"{fig.label} {fmt(res.get(fig.key), fig.unit)}"
             for fig in load.figures if fig.target_on != "self"]
    if res.get("error"):
        parts.append(f"error: {res['error']}")
    if "loadgen_cpu_pct" in res:
        parts.append(f"server CPU {res['server_cpu_pct']:.0f}%, "
                     f"loadgen CPU {res['loadgen_cpu_pct']:.0f}%")
    return "; ".join(parts)


def run_rounds(args, loadgen: Path, workdir: Path, runs: list, save) -> None:
    """Append every run to `runs`, calling save() after each one."""
    for rnd in range(args.rounds):
        for name in args.loads:
            load = BY_NAME[name]
            for impl in impls_of(load, args):
                kinds = servers_of(load, args, rnd)
                with ExitStack() as stack:
                    servers = {k: stack.enter_context(start(k, workdir, args)) for k in kinds}
                    for kind in kinds:
                        res = measure(load, impl, loadgen, servers[kind], args)
                        runs.append({"round": rnd, "load": name, "impl": impl,
                                     "server": kind, "result": res})
                        print(f"round {rnd + 1}/{args.rounds} {name} {impl} {kind}: "
                              f"{brief(load, res)}", flush=True)
                        save()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--servers", default=",".join(SERVERS),
                   help="comma-separated: " + ", ".join(SERVERS))
    p.add_argument("--loads", default=",".join(DEFAULT_LOADS),
                   help="comma-separated: " + ", ".join(l.name for l in LOADS))
    p.add_argument("--huge", action="store_true",
                   help="add the slow no-regression loads: " + ", ".join(HUGE_LOADS))
    p.add_argument("--worker-impls", default=",".join(IMPLS),
                   help="comma-separated: raw (the load generator's own epoll workers, "
                        "cheap), libgearman (one gearman_worker_st thread per worker)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per fg run")
    p.add_argument("--bg-jobs", type=int, default=200_000, help="jobs of bg-200k")
    p.add_argument("--big-bg-jobs", type=int, default=1_000_000, help="jobs of bg-1m")
    p.add_argument("--huge-bytes", type=int, default=0,
                   help="cap the huge loads' payload (0: 1 GiB and 4 GiB - 1)")
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds between the end of a drain and its PSS reading")
    p.add_argument("--grab-ahead", type=int, default=1,
                   help="GRAB_JOBs each raw worker keeps outstanding (1 = like libgearman)")
    p.add_argument("--gearmand-threads", type=int, default=None,
                   help="--threads of the `gearmand` server (default: its own default)")
    p.add_argument("--durability", choices=["always", "second", "none"], default="second",
                   help="mpgearman's --durability (its journal goes in the run's work dir)")
    p.add_argument("--acceptors", type=int, default=None,
                   help="mpgearman --acceptors (default: mpgearman's own default)")
    p.add_argument("--build-dir", type=Path, default=CACHE / "build")
    p.add_argument("--from-json", type=Path, default=None,
                   help="print the table of an earlier result file instead of measuring")
    p.add_argument("--output", type=Path, default=None,
                   help=f"JSON result file (default: a timestamped file in {CACHE / 'results'})")
    args = p.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    args.loads = [n for n in args.loads.split(",") if n] + (list(HUGE_LOADS) if args.huge else [])
    args.worker_impls = [i for i in args.worker_impls.split(",") if i]
    for s in args.servers:
        if s not in SERVERS:
            p.error(f"unknown server {s}")
    for n in args.loads:
        if n not in BY_NAME:
            p.error(f"unknown load {n}")
    for i in args.worker_impls:
        if i not in IMPLS:
            p.error(f"unknown worker implementation {i}")
    return args


def machine(load_before: float) -> dict:
    exe = shutil.which("gearmand") or "/usr/sbin/gearmand"
    version = None
    if os.access(exe, os.X_OK):
        version = subprocess.run([exe, "--version"], capture_output=True,
                                 text=True).stdout.strip() or None
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or None
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "loadavg_before": load_before,
            "loadavg_after": os.getloadavg()[0], "gearmand_version": version,
            "mpgearman_commit": commit}


def print_table(rows: list[dict], runs: list[dict]) -> None:
    rounds = len({r["round"] for r in runs})
    print()
    print(report.table(rows))
    print(f"(medians of {rounds} rounds; CPU% is of one core, this machine has "
          f"{os.cpu_count()} logical CPUs)")


def main(argv=None) -> int:
    # SIGTERM unwinds like ^C, so that every server started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args(argv)
    if args.from_json:
        doc = orjson.loads(args.from_json.read_bytes())
        servers = doc["config"]["servers"]
        print_table(report.summarise(doc["runs"], [s for s in servers if s != "mpgearman"]),
                    doc["runs"])
        return 0
    loadgen = build_loadgen(args.build_dir)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    output = args.output or CACHE / "results" / f"compare-{stamp}.json"
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        print(f"note: the 1-minute load average is {load1:.1f} before starting; "
              "other activity on the machine skews the numbers", flush=True)
    runs: list[dict] = []
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    output.parent.mkdir(parents=True, exist_ok=True)
    info = machine(load1)

    def save(complete: bool = False) -> list[dict]:
        """Written after every run, so that a stopped run leaves its results."""
        rows = report.summarise(runs, [s for s in args.servers if s != "mpgearman"])
        info["loadavg_after"] = os.getloadavg()[0]
        doc = {"when": stamp, "complete": complete, "machine": info,
               "loadgen": loadgen.name, "config": config, "runs": runs, "summary": rows}
        output.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        return rows

    try:
        with tempfile.TemporaryDirectory(prefix="mpgearman-bench-") as tmp:
            run_rounds(args, loadgen, Path(tmp), runs, save)
    except (KeyboardInterrupt, SystemExit):
        save()
        print(f"stopped; the runs so far are in {output} "
              "(`--from-json` prints their table)", file=sys.stderr)
        raise
    print_table(save(complete=True), runs)
    print(f"results written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
