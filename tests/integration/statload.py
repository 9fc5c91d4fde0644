"""A known workload for the monitoring tests (test_metrics.py, test_stat.py),
driven over raw sockets so every figure it leaves behind is known exactly.

Function A: 20 background jobs (6 high, 10 normal, 4 low). A worker process
grabs one (a high one) and is killed with SIGKILL, so it is requeued once;
another worker then completes 15 (the 6 high, 9 normal), leaving 1 normal
and 4 low queued. Function B: 7 foreground jobs from one client; a worker
completes 3, fails 2, throws 1 exception and holds the 7th (running).
Function C: one background job with a payload above the spool threshold,
queued, so it sits in the spool.

Connections opened: admin, client, the killed worker, worker A, the
foreground client, worker B = 6; 5 stay open (the caller closes them).
"""
from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gearproto import PacketType as T
from gearproto import parse_status, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
# For `python -m mpgearman ...` subprocesses (no `from conftest import`: the
# name is ambiguous when several test directories are collected together).
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p))
BIG = bytes(range(256)) * 400          # 102,400 bytes: above the 64 KiB threshold
CONNECTIONS_OPENED = 6
CONNECTIONS_LEFT_OPEN = 5

# A worker that grabs one job, says so, and waits to be killed.
KILLED_WORKER = r"""
import socket, struct, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def send(ptype, *args):
    body = b"\0".join(a.encode() for a in args)
    s.sendall(b"\0REQ" + struct.pack(">II", ptype, len(body)) + body)
send(1, sys.argv[3])      # CAN_DO
send(9)                   # GRAB_JOB
head = b""
while len(head) < 12:
    head += s.recv(12 - len(head))
print(struct.unpack(">4sII", head)[1], flush=True)
time.sleep(120)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Workload:
    a: str
    b: str
    c: str
    conns: list = field(default_factory=list)

    def close(self) -> None:
        for conn in self.conns:
            conn.close()

    def expected(self) -> dict:
        """Per-function figures: the counters, then queued by priority,
        running and worker registrations."""
        zero = dict(submitted=0, completed=0, failed=0, exceptions=0, requeued=0,
                    high=0, normal=0, low=0, running=0, workers=0)
        return {
            self.a: {**zero, "submitted": 20, "completed": 15, "requeued": 1,
                     "normal": 1, "low": 4, "workers": 1},
            self.b: {**zero, "submitted": 7, "completed": 3, "failed": 2, "exceptions": 1,
                     "running": 1, "workers": 1},
            self.c: {**zero, "submitted": 1, "normal": 1},
        }


def _background_jobs(client, wl: Workload) -> None:
    for ptype, count in ((T.SUBMIT_JOB_HIGH_BG, 6), (T.SUBMIT_JOB_BG, 10),
                         (T.SUBMIT_JOB_LOW_BG, 4)):
        for i in range(count):
            client.submit(ptype, wl.a.encode(), b"", b"a%d" % i)
    client.submit(T.SUBMIT_JOB_BG, wl.c.encode(), b"", BIG)


def _kill_a_worker_mid_job(server, spawn, admin, wl: Workload) -> None:
    proc = spawn([sys.executable, "-c", KILLED_WORKER, server.host, str(server.port), wl.a])
    wait_for(lambda: proc.out_path.read_text().strip() == str(int(T.JOB_ASSIGN)), 10, 0.02,
             "the doomed worker to get its job")
    proc.kill()
    proc.wait(10)
    wait_for(lambda: parse_status(admin.admin("status")).get(wl.a) == (20, 0, 0), 10, 0.02,
             "the killed worker's job to be requeued")


def _complete_fifteen(server, wl: Workload):
    worker = server.connect()
    worker.send_packet(T.CAN_DO, wl.a.encode())
    for _ in range(15):
        handle = worker.call(T.GRAB_JOB).args[0]
        worker.send_packet(T.WORK_COMPLETE, handle, b"done")
    return worker


def _foreground_jobs(server, wl: Workload):
    client = server.connect()
    for i in range(7):
        client.submit(T.SUBMIT_JOB, wl.b.encode(), b"", b"b%d" % i)
    worker = server.connect()
    worker.send_packet(T.CAN_DO, wl.b.encode())
    for ending in [T.WORK_COMPLETE] * 3 + [T.WORK_FAIL] * 2 + [T.WORK_EXCEPTION]:
        packet = worker.call(T.GRAB_JOB)
        assert packet.type == T.JOB_ASSIGN, packet
        handle = packet.args[0]
        worker.send_packet(ending, *((handle,) if ending == T.WORK_FAIL else (handle, b"r")))
    assert worker.call(T.GRAB_JOB).type == T.JOB_ASSIGN        # the 7th, held
    ends = sorted(client.read_packet().type for _ in range(6))
    # Without the `exceptions` option the exception reaches the client as a failure.
    assert ends == [T.WORK_COMPLETE] * 3 + [T.WORK_FAIL] * 3, ends
    return client, worker


def run(server, spawn, unique_name) -> Workload:
    wl = Workload(unique_name("A"), unique_name("B"), unique_name("C"))
    admin = server.connect()
    wl.conns.append(admin)
    client = server.connect()
    wl.conns.append(client)
    _background_jobs(client, wl)
    _kill_a_worker_mid_job(server, spawn, admin, wl)
    wl.conns.append(_complete_fifteen(server, wl))
    wl.conns.extend(_foreground_jobs(server, wl))
    want = {wl.a: (5, 0, 1), wl.b: (1, 1, 1), wl.c: (1, 0, 0)}
    wait_for(lambda: parse_status(admin.admin("status")) == want, 10, 0.02,
             f"status to settle at {want}")
    return wl
