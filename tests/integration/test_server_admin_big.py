"""Admin listings larger than a ring record (1 MiB with the default 4 MiB
rings) go out in pieces: `status`, `workers` and `show unique jobs` answer
in full, and the server keeps serving afterwards.

CI runs listings of a few MiB; MPGEARMAN_HUGE=1 runs the full scale
(100,000 functions, 1,000,000 queued jobs) and prints the timings."""
import os
import time

import pytest

from gearproto import PacketType as T
from gearproto import request


def listing(conn, command: bytes, timeout: float = 60.0) -> bytes:
    """The whole reply to a listing command, read without quadratic copies."""
    conn.send(command + b"\n")
    buf = bytearray(conn.buf)
    conn.buf = b""
    deadline = time.monotonic() + timeout
    conn.sock.settimeout(timeout)
    while not (buf == b".\n" or buf.endswith(b"\n.\n")):
        assert time.monotonic() < deadline, f"{command!r}: {len(buf)} bytes, no end"
        chunk = conn.sock.recv(1 << 20)
        assert chunk, f"{command!r}: connection closed after {len(buf)} bytes"
        buf += chunk
    return bytes(buf)


def register(conn, names) -> None:
    conn.send(b"".join(request(T.CAN_DO, n) for n in names))
    assert conn.call(T.ECHO_REQ, b"registered", timeout=60).payload == b"registered"


def queue(conn, fname: bytes, uniques, batch: int = 5000) -> None:
    for at in range(0, len(uniques), batch):
        part = uniques[at:at + batch]
        conn.send(b"".join(request(T.SUBMIT_JOB_LOW_BG, fname, u, b"") for u in part))
        for _ in part:
            conn.expect(T.JOB_CREATED, timeout=60)


def functions_and_jobs(srv, prefix: str, n_functions: int, n_jobs: int) -> dict:
    """Register n_functions, queue n_jobs with 64-byte uniques, then read
    the three big listings; returns their sizes and timings."""
    names = [b"%s-%07d-%s" % (prefix.encode(), i, b"f" * 40) for i in range(n_functions)]
    uniques = [b"%s-%09d-" % (prefix.encode(), i) for i in range(n_jobs)]
    uniques = [u + b"u" * (64 - len(u)) for u in uniques]
    took = {}
    with srv.connect(timeout=60) as worker, srv.connect(timeout=60) as client, \
            srv.connect(timeout=60) as admin:
        register(worker, names)
        queue(client, names[0], uniques)
        for command in (b"status", b"workers", b"show unique jobs"):
            start = time.monotonic()
            reply = listing(admin, command, timeout=600)
            took[command] = (len(reply), time.monotonic() - start)
            lines = reply.split(b"\n")[:-2]
            if command == b"status":
                assert len(lines) == n_functions
                assert lines[0] == names[0] + b"\t%d\t0\t1" % n_jobs
                assert {ln.split(b"\t")[0] for ln in lines} == set(names)
            elif command == b"workers":
                mine = [ln for ln in lines if ln.endswith(b" " + names[0])]
                assert len(mine) == 1       # newest registration first
                assert mine[0].split(b" : ", 1)[1].split(b" ") == names[::-1]
            else:
                assert sorted(lines) == uniques
        # The same connection and the server go on.
        assert admin.admin("version").startswith(b"OK ")
        assert client.call(T.ECHO_REQ, b"alive").payload == b"alive"
    assert srv.proc.poll() is None
    return took


def test_listings_larger_than_a_ring_record(server_factory, unique_name):
    srv = server_factory("mpgearman")
    took = functions_and_jobs(srv, unique_name("big"), 25_000, 40_000)
    assert all(size > 3 << 19 for size, _ in took.values()), took   # > 1.5 MiB each


@pytest.mark.huge
@pytest.mark.skipif(os.environ.get("MPGEARMAN_HUGE") != "1",
                    reason="1,000,000 jobs: set MPGEARMAN_HUGE=1 to run")
def test_listings_of_100k_functions_and_1m_jobs(server_factory, unique_name):
    srv = server_factory("mpgearman")
    took = functions_and_jobs(srv, unique_name("huge"), 100_000, 1_000_000)
    for command, (size, seconds) in took.items():
        print(f"\n{command.decode()}: {size / (1 << 20):.1f} MiB in {seconds:.2f} s")
