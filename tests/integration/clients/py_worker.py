"""A worker built on mpgearman's own `Worker`, for the CLI and interop tests.

usage: python py_worker.py SERVERS PREFIX [CONCURRENCY]
Registers PREFIX_rev, PREFIX_data, PREFIX_status, PREFIX_fail, PREFIX_exc,
PREFIX_slow, PREFIX_sum and PREFIX_square, prints "ready" on stderr, then works until
SIGTERM. Each job it starts is logged on stdout as "start HANDLE DATA".
"""
import sys
import threading
import time
from pathlib import Path

from mpgearman import Worker, WorkFailed

servers, prefix = sys.argv[1], sys.argv[2]
concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 1
worker = Worker(servers, concurrency=concurrency)


log_lock = threading.Lock()


def logged(fn):
    def run(job):
        # Jobs run in threads, and a text stream is not safe to share.
        with log_lock:
            print("start", job.handle, job.data.decode("utf-8", "replace"), flush=True)
        return fn(job)
    return run


@logged
def rev(job):
    return job.data[::-1]


@logged
def data(job):
    # Intermediate chunks and a warning before the result.
    job.send_data(b"part1,")
    job.send_warning(b"careful")
    job.send_data(b"part2,")
    return b"end"


@logged
def status(job):
    # Reports 1/2, waits (at most 20 s) for the file named by the payload.
    job.send_status(1, 2)
    release, deadline = Path(job.data.decode()), time.monotonic() + 20
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    job.send_status(2, 2)
    return b"released"


@logged
def fail(job):
    raise WorkFailed("no")


@logged
def exc(job):
    raise ValueError("boom: " + job.data.decode())


@logged
def slow(job):
    # The payload is the number of seconds to sleep.
    time.sleep(float(job.data or b"1"))
    return b"slept " + job.data


@logged
def add(job):
    return str(sum(int(x) for x in job.data.split())).encode()


@logged
def square(job):
    # Slow enough (20 ms) that a run of them can be interrupted midway.
    time.sleep(0.02)
    return str(int(job.data) ** 2).encode()


for name, fn in [("rev", rev), ("data", data), ("status", status), ("fail", fail),
                 ("exc", exc), ("slow", slow), ("sum", add), ("square", square)]:
    worker.register(f"{prefix}_{name}", fn)
print("ready", file=sys.stderr, flush=True)
worker.run()
