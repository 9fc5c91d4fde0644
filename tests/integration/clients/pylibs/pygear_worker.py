"""A GearmanWorker from one python-gearman 2.x descendant (gearman3,
pygearman or python3-gearman) for the compat tests.

usage: pygear_worker.py LIB HOST PORT PREFIX [CLIENT_ID]

Registers PREFIX_<name> for:
  rev       reverse the workload
  echo      return the workload unchanged
  slowrev   sleep 0.4 s, then reverse
  seq       "<n>:<workload>", n counting the jobs this process ran
  progress  WORK_STATUS 1/2, WORK_DATA part1, WORK_WARNING warn1,
            WORK_STATUS 2/2, then complete with the reversed workload
  gated     WORK_STATUS 1/2, wait (<= 20 s) until the file named by the
            workload exists, then complete with "released"
  fail      raise -> the library sends WORK_FAIL
  exc       raise -> send_job_exception: WORK_EXCEPTION then WORK_FAIL
"""
from __future__ import annotations

import os
import sys
import time

from pgload import load, text

lib, host, port, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
gearman = load(lib)
counter = [0]


def rev(worker, job):
    return text(job.data)[::-1]


def echo(worker, job):
    return job.data


def slowrev(worker, job):
    time.sleep(0.4)
    return text(job.data)[::-1]


def seq(worker, job):
    counter[0] += 1
    return f"{counter[0]}:{text(job.data)}"


def progress(worker, job):
    worker.send_job_status(job, 1, 2)
    worker.send_job_data(job, "part1")
    worker.send_job_warning(job, "warn1")
    worker.send_job_status(job, 2, 2)
    return text(job.data)[::-1]


def gated(worker, job):
    worker.send_job_status(job, 1, 2)
    deadline = time.monotonic() + 20
    while not os.path.exists(text(job.data)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return "released"


def fail(worker, job):
    raise RuntimeError("failing on purpose")


def exc(worker, job):
    raise RuntimeError("boom: " + text(job.data))


class Worker(gearman.GearmanWorker):
    def on_job_exception(self, current_job, exc_info):
        if text(current_job.task).endswith("_exc"):
            self.send_job_exception(current_job, str(exc_info[1]))
            return False
        return super().on_job_exception(current_job, exc_info)


worker = Worker([f"{host}:{port}"])
if len(sys.argv) > 5:
    worker.set_client_id(sys.argv[5])
for func in (rev, echo, slowrev, seq, progress, gated, fail, exc):
    name = f"{prefix}_{func.__name__}"
    # gearman3/pygearman compare the task of JOB_ASSIGN_UNIQ (bytes) with
    # the registered names, so those two only run tasks registered as bytes.
    worker.register_task(name if lib == "python3-gearman" else name.encode(), func)
print("worker ready", flush=True)
worker.work(poll_timeout=1.0)
