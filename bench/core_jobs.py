"""CPU time per job in the coordinator's Core alone: no sockets, rings or
other processes. Each job is a background submission, a GRAB_JOB and a
WORK_COMPLETE fed straight to Core.packet(); when the tree has the
monitoring counters, the changed functions are published every 85 jobs
(about one loop turn of 256 records), as the coordinator loop does.

    python bench/core_jobs.py                        # this checkout
    MPGEARMAN_ROOT=/path/to/other/checkout python bench/core_jobs.py

Prints the median and the lowest of --runs runs, in microseconds of
process CPU time per job (lowest = least disturbed by the machine).
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("MPGEARMAN_ROOT", str(Path(__file__).resolve().parents[1])))

from mpgearman.config import Config                     # noqa: E402
from mpgearman.coordinator.core import Core            # noqa: E402
from mpgearman.protocol.packets import T                # noqa: E402

try:
    from mpgearman.coordinator.figures import Figures  # noqa: E402
    from mpgearman.ipc.counters import Counters        # noqa: E402
except ImportError:          # a checkout from before the counters
    Figures = None

SUBMIT_BG, GRAB, COMPLETE = int(T.SUBMIT_JOB_BG), int(T.GRAB_JOB), int(T.WORK_COMPLETE)


class NoSpool:
    """Small payloads only: the Core never asks."""


def one_run(jobs: int) -> float:
    core = Core(Config(job_handle_prefix="H:b"), NoSpool(), pid=1, version=b"bench")
    figures = Figures(Counters.create(1, 1024)) if Figures else None
    client, worker = 1, 2
    core.connect(client, "127.0.0.1", 10)
    core.connect(worker, "127.0.0.1", 11)
    core.packet(worker, int(T.CAN_DO), (b"f",))
    packet, out = core.packet, core.out
    start = time.process_time()
    for i in range(1, jobs + 1):
        packet(client, SUBMIT_BG, (b"f", b"", b"x"))
        packet(worker, GRAB, ())
        packet(worker, COMPLETE, (b"H:b:%d" % i, b"ok"))
        out.clear()
        if figures is not None and i % 85 == 0:
            figures.publish(core.functions.dirty)
    return (time.process_time() - start) / jobs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    runs = [one_run(args.jobs) for _ in range(args.runs)]
    counters = "with counters" if Figures else "without counters"
    print(f"{counters}: median {statistics.median(runs):.2f} us/job, "
          f"lowest {min(runs):.2f} us/job ({args.runs} runs of {args.jobs} jobs)")


if __name__ == "__main__":
    main()
