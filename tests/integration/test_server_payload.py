"""Big payloads take the side road: a foreground job whose data and result
are much larger than anything the server may hold in memory round-trips
through the spool, and the server's total RSS (every process) barely moves.

CI runs it at 256 MiB; MPGEARMAN_HUGE=1 runs the same path with 1 GiB and
with the protocol's largest packet (4 GiB - 1 bytes).
"""
import hashlib
import os
import socket
import struct
import threading
import time

import pytest

from gearproto import PacketType as T
from gearproto import total_rss

HDR = struct.Struct(">4sII")
CHUNK = 1 << 20


def _pattern(size):
    """The payload as chunks of a repeating, position-dependent pattern."""
    block = bytes(range(256)) * (CHUNK // 256)
    sent = 0
    while sent < size:
        n = min(CHUNK, size - sent)
        yield block[:n] if sent % 3 else block[n - 1::-1][:n]
        sent += n


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise ConnectionError("closed")
        buf += part
    return bytes(buf)


def _recv_args(sock, nargs):
    """Read `nargs` NUL-terminated arguments; returns them and bytes read."""
    args, used = [], 0
    for _ in range(nargs):
        arg = bytearray()
        while True:
            b = sock.recv(1)
            used += 1
            if b == b"\0":
                break
            arg += b
        args.append(bytes(arg))
    return args, used


def _echo_worker(port, function, ready, errors):
    """Stream each job's data straight back as its WORK_COMPLETE, holding at
    most one chunk."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=120)
        s.sendall(HDR.pack(b"\0REQ", T.CAN_DO, len(function)) + function)
        s.sendall(HDR.pack(b"\0REQ", T.PRE_SLEEP, 0))
        ready.set()
        assert HDR.unpack(_recv_exact(s, 12))[1] == T.NOOP
        s.sendall(HDR.pack(b"\0REQ", T.GRAB_JOB, 0))
        _, ptype, size = HDR.unpack(_recv_exact(s, 12))
        assert ptype == T.JOB_ASSIGN
        (handle, _fn), used = _recv_args(s, 2)
        left = size - used
        s.sendall(HDR.pack(b"\0REQ", T.WORK_COMPLETE, len(handle) + 1 + left) + handle + b"\0")
        while left:
            part = s.recv(min(CHUNK, left))
            if not part:
                raise ConnectionError("server closed mid-job")
            s.sendall(part)
            left -= len(part)
        s.close()
    except Exception as exc:  # reported by the test thread
        errors.append(exc)
        ready.set()


def roundtrip(srv, function, size):
    """Submit `size` bytes as a foreground job echoed by a streaming worker.
    Returns (rss growth peak in bytes, seconds)."""
    function = function.encode()
    ready, errors = threading.Event(), []
    worker = threading.Thread(target=_echo_worker, args=(srv.port, function, ready, errors),
                              daemon=True)
    worker.start()
    assert ready.wait(10)
    pids = srv.pids()
    base = total_rss(pids)
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], total_rss(pids))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    c = socket.create_connection(("127.0.0.1", srv.port), timeout=120)
    c.sendall(HDR.pack(b"\0REQ", T.SUBMIT_JOB, len(function) + 2 + size) + function + b"\0\0")
    want = hashlib.sha256()
    for part in _pattern(size):
        want.update(part)
        c.sendall(part)
    magic, ptype, n = HDR.unpack(_recv_exact(c, 12))
    assert ptype == T.JOB_CREATED, (ptype, _recv_exact(c, n))
    handle = _recv_exact(c, n)
    magic, ptype, n = HDR.unpack(_recv_exact(c, 12))
    assert ptype == T.WORK_COMPLETE
    assert _recv_exact(c, len(handle) + 1) == handle + b"\0"
    got, left = hashlib.sha256(), n - len(handle) - 1
    assert left == size
    while left:
        part = c.recv(min(CHUNK, left))
        assert part, "server closed mid-result"
        got.update(part)
        left -= len(part)
    elapsed = time.monotonic() - t0
    stop.set()
    sampler.join()
    c.close()
    worker.join(30)
    assert not errors, errors
    assert got.hexdigest() == want.hexdigest()
    return peak[0] - base, elapsed


def test_big_foreground_job_keeps_server_memory_flat(server_factory, fname):
    srv = server_factory("mpgearman")
    growth, _ = roundtrip(srv, fname, 256 << 20)
    assert growth < 64 << 20, f"server RSS grew by {growth >> 20} MiB for a 256 MiB job"
    spool = srv.workdir / "spool" / f"port-{srv.port}"
    assert [n for n in os.listdir(spool) if n != "lock"] == []


@pytest.mark.huge
@pytest.mark.skipif(os.environ.get("MPGEARMAN_HUGE") != "1",
                    reason="multi-GiB payloads: set MPGEARMAN_HUGE=1 to run")
@pytest.mark.parametrize("size", [1 << 30, (4 << 30) - 1 - 64])
def test_huge_foreground_job(server_factory, fname, size):
    srv = server_factory("mpgearman")
    growth, elapsed = roundtrip(srv, fname, size)
    print(f"\n{size} bytes: RSS growth {growth / (1 << 20):.1f} MiB, {elapsed:.1f} s")
    assert growth < 128 << 20
