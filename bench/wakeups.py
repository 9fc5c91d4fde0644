"""Cross-process hops and sleeps per job of mpgearman, per server process.

Starts mpgearman (this checkout) as compare.py does, runs one fg
measurement of compare.py (same load generator and knobs), and meanwhile
counts, per server process:

- voluntary context switches (psutil; each is one sleep, so one wake-up
  later): sleeps per job;
- with perf (`perf stat --per-thread -p PIDS` on the syscall tracepoints:
  in-kernel counters, cheap enough not to change the run; needs perf and
  the right to trace): epoll_wait calls (turns), read and write calls (the
  server's sockets use recv/send/sendmsg, so read/write are doorbell eventfd
  drains and rings), and futex calls, per job.

    python bench/wakeups.py --duration 5          # compare.py's fg defaults
    python bench/wakeups.py --no-perf             # context switches only
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402

CALLS = ("epoll_wait", "read", "write", "futex")
ROW = re.compile(r"^.*-(\d+),(\d+),[^,]*,syscalls:sys_enter_(\w+),")


def perf_counts(path: Path) -> dict:
    """{pid: {syscall: calls}} from `perf stat --per-thread -x,` output."""
    counts = {}
    for line in path.read_text(errors="replace").splitlines():
        m = ROW.match(line)
        if m:
            per = counts.setdefault(int(m.group(1)), {})
            per[m.group(3)] = per.get(m.group(3), 0) + int(m.group(2))
    return counts


def main(argv=None) -> int:
    use_perf = "--no-perf" not in (argv or sys.argv[1:])
    rest = [a for a in (argv or sys.argv[1:]) if a != "--no-perf"]
    args = compare.parse_args(["--servers", "mpgearman", "--modes", "fg", *rest])
    loadgen = compare.build_loadgen(args.build_dir)
    with tempfile.TemporaryDirectory(prefix="mpgearman-wakeups-") as tmp:
        tmp = Path(tmp)
        with compare.mpgearman(tmp, args.acceptors) as srv:
            procs = srv.tree()
            names = {p.pid: p.name() for p in procs}
            before = {p.pid: p.num_ctx_switches() for p in procs}
            trace = None
            if use_perf:
                out = tmp / "perf.txt"
                events = ",".join(f"syscalls:sys_enter_{c}" for c in CALLS)
                trace = subprocess.Popen(["perf", "stat", "--per-thread", "-x,", "-e", events,
                                          "-o", str(out), "-p",
                                          ",".join(str(p.pid) for p in procs)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                time.sleep(1.0)
            result = compare.measure_fg(loadgen, srv, args)
            after = {p.pid: p.num_ctx_switches() for p in procs}
            counts = {}
            if trace is not None:
                trace.send_signal(signal.SIGINT)
                trace.wait(30)
                counts = perf_counts(out)
    jobs = result["jobs"]
    print(f"{jobs:,} jobs, {result['jobs_per_s']:,.0f} jobs/s, "
          f"server CPU {result['server_cpu_pct']:.0f}% "
          f"({1e6 * result['server_cpu_pct'] / 100 / result['jobs_per_s']:.1f} us/job)")
    print(f"{'process':<16}{'pid':>8}{'sleeps/job':>12}{'preempt/job':>13}"
          + "".join(f"{c + '/job':>15}" for c in CALLS))
    total = [0.0] * (2 + len(CALLS))
    for pid, name in names.items():
        vol = (after[pid].voluntary - before[pid].voluntary) / jobs
        inv = (after[pid].involuntary - before[pid].involuntary) / jobs
        calls = [counts.get(pid, {}).get(c, 0) / jobs for c in CALLS]
        row = [vol, inv, *calls]
        total = [a + b for a, b in zip(total, row)]
        print(f"{name:<16}{pid:>8}" + "".join(f"{v:>12.3f}" if i < 1 else
                                               f"{v:>13.3f}" if i < 2 else f"{v:>15.3f}"
                                               for i, v in enumerate(row)))
    print(f"{'all':<24}" + "".join(f"{v:>12.3f}" if i < 1 else f"{v:>13.3f}" if i < 2
                                   else f"{v:>15.3f}" for i, v in enumerate(total)))
    if use_perf and not counts:
        print("(perf stat gave no counts: not installed or not allowed?)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
