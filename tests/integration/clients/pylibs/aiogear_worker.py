"""An aiogear (asyncio) Worker for the compat tests.

usage: aiogear_worker.py HOST PORT PREFIX [GRAB]
GRAB is GRAB_JOB (default) or GRAB_JOB_UNIQ.

Registers PREFIX_<name> for:
  rev       reverse the workload
  echo      return the workload unchanged
  slowrev   sleep 0.4 s, then reverse
  urev      sleep 0.4 s, then "<unique>:<reversed workload>" (the unique
            comes with JOB_ASSIGN_UNIQ, so only meaningful with GRAB_JOB_UNIQ)
  seq       "<n>:<workload>", n counting the jobs this process ran
  progress  WORK_STATUS 1/2, WORK_DATA part1, WORK_WARNING warn1,
            WORK_STATUS 2/2 (sent with the protocol's generic send),
            then complete with the reversed workload
  gated     WORK_STATUS 1/2, wait (<= 20 s) until the file named by the
            workload exists, then complete with "released"
  exc       raise -> aiogear sends WORK_EXCEPTION "boom: <workload>"
"""
from __future__ import annotations

import asyncio
import os
import sys
import time

from aiogear import PacketType, Worker

host, port, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
grab = getattr(PacketType, sys.argv[4] if len(sys.argv) > 4 else "GRAB_JOB")
counter = [0]
worker: Worker | None = None


def rev(job):
    return job.workload[::-1]


def echo(job):
    return job.workload


async def slowrev(job):
    await asyncio.sleep(0.4)
    return job.workload[::-1]


async def urev(job):
    await asyncio.sleep(0.4)
    return f"{job.uuid}:{job.workload[::-1]}"


def seq(job):
    counter[0] += 1
    return f"{counter[0]}:{job.workload}"


async def progress(job):
    worker.send(PacketType.WORK_STATUS, job.handle, "1", "2")
    worker.send(PacketType.WORK_DATA, job.handle, "part1")
    worker.send(PacketType.WORK_WARNING, job.handle, "warn1")
    worker.send(PacketType.WORK_STATUS, job.handle, "2", "2")
    return job.workload[::-1]


async def gated(job):
    worker.send(PacketType.WORK_STATUS, job.handle, "1", "2")
    deadline = time.monotonic() + 20
    while not os.path.exists(job.workload) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return "released"


def exc(job):
    raise RuntimeError("boom: " + job.workload)


async def main():
    global worker
    loop = asyncio.get_running_loop()
    funcs = [(f, f"{prefix}_{f.__name__}")
             for f in (rev, echo, slowrev, urev, seq, progress, gated, exc)]
    worker = Worker(*funcs, loop=loop, grab_type=grab)
    await loop.create_connection(lambda: worker, host, port)
    print("worker ready", flush=True)
    while worker.transport is not None:
        await asyncio.sleep(0.2)


asyncio.run(main())
