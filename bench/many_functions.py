#!/usr/bin/env python3
"""Latency of ordinary packets after one connection registered many functions.

Starts each server on loopback (as bench/compare.py does), has one
connection register --functions functions with CAN_DO (and stay
connected), then measures round trips on a fresh connection: ECHO_REQ ->
ECHO_RES, and a job of a function created after the flood (SUBMIT_JOB_BG
-> JOB_CREATED, then a worker's GRAB_JOB -> JOB_ASSIGN and WORK_COMPLETE).
Prints the median and the 99th percentile in milliseconds per server, and
the coordinator's resident memory growth for mpgearman.

    python bench/many_functions.py                       # both servers, 100,000 functions
    python bench/many_functions.py --servers mpgearman --functions 20000

Per-packet work must not depend on the number of functions: the figures
should match those of a server without the flood (--functions 0).
"""
from __future__ import annotations

import argparse
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import HOST, gearmand, mpgearman   # noqa: E402

REQ, RES = b"\0REQ", b"\0RES"
CAN_DO, SUBMIT_JOB_BG, JOB_CREATED, GRAB_JOB = 1, 18, 8, 9
JOB_ASSIGN, WORK_COMPLETE, ECHO_REQ, ECHO_RES = 11, 13, 16, 17
NO_JOB, PRE_SLEEP, NOOP = 10, 4, 6


def packet(ptype: int, *args: bytes) -> bytes:
    data = b"\0".join(args)
    return REQ + struct.pack(">II", ptype, len(data)) + data


class Conn:
    def __init__(self, port: int, timeout: float = 60):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("server closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def reply(self) -> tuple:
        magic, ptype, size = struct.unpack(">4sII", self._read(12))
        assert magic == RES, magic
        return ptype, self._read(size)

    def ask(self, data: bytes, want: int) -> bytes:
        self.sock.sendall(data)
        ptype, body = self.reply()
        if ptype != want:
            raise RuntimeError(f"expected packet {want}, got {ptype}: {body[:80]!r}")
        return body


def flood(port: int, functions: int) -> Conn:
    """One connection registers `functions` functions; returns once the
    server has read them all (its ECHO answer comes after them; gearmand
    takes minutes for a million)."""
    conn = Conn(port, timeout=1800)
    batch = []
    for i in range(functions):
        batch.append(packet(CAN_DO, b"flood-%08d" % i))
        if len(batch) == 2000:
            conn.sock.sendall(b"".join(batch))
            batch = []
    conn.sock.sendall(b"".join(batch))
    conn.ask(packet(ECHO_REQ, b"done"), ECHO_RES)
    return conn


def percentiles(samples: list) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"median {statistics.median(ms):7.3f} ms  p99 {ms[int(len(ms) * 0.99) - 1]:7.3f} ms"


def measure(port: int, rounds: int) -> dict:
    client, worker = Conn(port), Conn(port)
    worker.sock.sendall(packet(CAN_DO, b"late"))
    echo, job = [], []
    for i in range(rounds):
        t0 = time.perf_counter()
        client.ask(packet(ECHO_REQ, b"x" * 16), ECHO_RES)
        echo.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        client.ask(packet(SUBMIT_JOB_BG, b"late", b"", b"payload"), JOB_CREATED)
        handle = worker.ask(packet(GRAB_JOB), JOB_ASSIGN).split(b"\0")[0]
        worker.sock.sendall(packet(WORK_COMPLETE, handle, b"done"))
        job.append(time.perf_counter() - t0)
    worker.ask(packet(ECHO_REQ, b"sync"), ECHO_RES)     # its WORK_COMPLETEs are read
    return {"echo": echo, "job": job}


def rss_of_coordinator(srv) -> int:
    """The resident memory of the process holding the functions: the
    coordinator for mpgearman (the child named mpg-coordinator), gearmand itself."""
    root = psutil.Process(srv.proc.pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            if "coordinator" in " ".join(p.cmdline()) or "coordinator" in p.name():
                return p.memory_info().rss
        except psutil.Error:
            pass
    return root.memory_info().rss


def run(kind: str, args, workdir: Path) -> None:
    starter = gearmand(workdir, None) if kind == "gearmand" else mpgearman(workdir, None)
    with starter as srv:
        before = rss_of_coordinator(srv)
        t0 = time.monotonic()
        keep = flood(srv.port, args.functions)
        took = time.monotonic() - t0
        grown = rss_of_coordinator(srv) - before
        res = measure(srv.port, args.rounds)
        keep.sock.close()
        time.sleep(1.0)          # the server sees the close
        left = rss_of_coordinator(srv) - before
        n = max(args.functions, 1)
        print(f"{kind:9}  {args.functions} functions registered in {took:.1f} s, "
              f"+{grown / 2**20:.1f} MiB ({grown / n:.0f} B each); after the "
              f"connection closed +{left / 2**20:.1f} MiB ({left / n:.0f} B each)")
        print(f"{'':9}  ECHO round trip: {percentiles(res['echo'])}")
        print(f"{'':9}  job of a later function: {percentiles(res['job'])}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", default="mpgearman,gearmand")
    ap.add_argument("--functions", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=500)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mpgearman-bench-") as tmp:
        for kind in args.servers.split(","):
            run(kind.strip(), args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
