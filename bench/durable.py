"""Replay of the journal: time and peak memory to rebuild N queued
background jobs (default 1,000,000) in a Core, and the longest pause a
compaction costs the coordinator then (its fork, and the switch).

    python bench/durable.py [--jobs N] [--size BYTES]

Runs in a child process so the peak RSS is the replay's alone.
"""
import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mpgearman.config import Config  # noqa: E402
from mpgearman.coordinator.core import Core  # noqa: E402
from mpgearman.durable import compact, format, replay  # noqa: E402
from mpgearman.durable.writer import Writer  # noqa: E402


class NoSpool:
    def share(self, ref):
        return ref

    def release(self, ref):
        pass

    def keep(self, ref):
        pass

    def unkeep(self, ref):
        pass


def write_journal(path: str, jobs: int, size: int) -> None:
    payload = b"x" * size
    with open(path, "wb") as f:
        f.write(format.HEADER)
        chunk = []
        for no in range(1, jobs + 1):
            chunk.append(format.submit(no, b"H:bench:%d" % no, b"fn%d" % (no % 10),
                                       b"u%d" % no, no % 3, 0, payload))
            if len(chunk) == 10000:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))


def replay_child(path: str) -> None:
    began = time.monotonic()
    found = replay.read(path)
    read = time.monotonic() - began
    core = Core(Config(job_handle_prefix="H:bench"), NoSpool())
    core.restore(found.live.values())
    del found
    total = time.monotonic() - began
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
    print(f"replayed {len(core.jobs):,} jobs in {total:.2f} s (reading {read:.2f} s), "
          f"peak RSS {rss} MiB")
    writer = Writer(path, "second")
    comp = compact.Compactor(writer, slack=0)
    comp.start(core)
    fork_pause = comp.longest_pause
    while comp.child is not None:
        time.sleep(0.01)
        comp.poll()
    print(f"compaction: fork pause {fork_pause * 1000:.1f} ms, longest pause "
          f"{comp.longest_pause * 1000:.1f} ms (switch included), "
          f"journal {writer.size:,} bytes")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=1_000_000)
    p.add_argument("--size", type=int, default=100, help="payload bytes per job")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="mpgearman-durable-") as tmp:
        path = os.path.join(tmp, "journal")
        began = time.monotonic()
        write_journal(path, args.jobs, args.size)
        print(f"journal of {args.jobs:,} jobs x {args.size} B: "
              f"{os.path.getsize(path):,} bytes, written in {time.monotonic() - began:.1f} s")
        pid = os.fork()
        if pid == 0:
            try:
                replay_child(path)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
