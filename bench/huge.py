"""One huge foreground job echoed through a server, streamed: the bench's
own client and worker hold at most one 1 MiB chunk, so only the server may
hold the payload. Reports the time, whether the result came back intact
(CRC-32 of what was sent and of what came back), and the peak growth of the
RSS summed over the server's processes (sampled every 50 ms)."""
from __future__ import annotations

import socket
import struct
import threading
import time
import zlib

from servers import HOST, Server

HDR = struct.Struct(">4sII")
CAN_DO, PRE_SLEEP, NOOP, SUBMIT_JOB, JOB_CREATED, GRAB_JOB, NO_JOB = 1, 4, 6, 7, 8, 9, 10
JOB_ASSIGN, WORK_COMPLETE = 11, 13
CHUNK = 1 << 20
TIMEOUT = 600


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise ConnectionError("server closed the connection")
        buf += part
    return bytes(buf)


def _recv_packet_header(sock: socket.socket) -> tuple[int, int]:
    _magic, ptype, size = HDR.unpack(_recv_exact(sock, 12))
    return ptype, size


def _recv_arg(sock: socket.socket) -> bytes:
    arg = bytearray()
    while (b := _recv_exact(sock, 1)) != b"\0":
        arg += b
    return bytes(arg)


def _worker(port: int, fn: bytes, ready: threading.Event, errors: list) -> None:
    """Grab one job and stream its data back as the WORK_COMPLETE."""
    try:
        s = socket.create_connection((HOST, port), timeout=TIMEOUT)
        s.sendall(HDR.pack(b"\0REQ", CAN_DO, len(fn)) + fn + HDR.pack(b"\0REQ", PRE_SLEEP, 0))
        ready.set()
        while True:
            ptype, size = _recv_packet_header(s)
            if ptype == NOOP:
                s.sendall(HDR.pack(b"\0REQ", GRAB_JOB, 0))
            elif ptype == NO_JOB:
                s.sendall(HDR.pack(b"\0REQ", PRE_SLEEP, 0))
            elif ptype == JOB_ASSIGN:
                break
            else:
                raise RuntimeError(f"worker got packet type {ptype}")
        handle = _recv_arg(s)
        used = len(handle) + 2 + len(_recv_arg(s))
        left = size - used
        s.sendall(HDR.pack(b"\0REQ", WORK_COMPLETE, len(handle) + 1 + left) + handle + b"\0")
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while left:
            n = s.recv_into(view[:min(CHUNK, left)])
            if not n:
                raise ConnectionError("server closed mid-job")
            s.sendall(view[:n])
            left -= n
        s.close()
    except Exception as exc:      # reported by echo()
        errors.append(exc)
        ready.set()


def _send_job(c: socket.socket, fn: bytes, size: int) -> int:
    c.sendall(HDR.pack(b"\0REQ", SUBMIT_JOB, len(fn) + 2 + size) + fn + b"\0\0")
    block = bytes(range(256)) * (CHUNK // 256)
    crc, sent = 0, 0
    while sent < size:
        part = block[:min(CHUNK, size - sent)]
        crc = zlib.crc32(part, crc)
        c.sendall(part)
        sent += len(part)
    return crc


def _recv_result(c: socket.socket, size: int) -> int:
    ptype, n = _recv_packet_header(c)
    if ptype != JOB_CREATED:
        raise RuntimeError(f"expected JOB_CREATED, got {ptype}: {_recv_exact(c, n)[:200]!r}")
    handle = _recv_exact(c, n)
    ptype, n = _recv_packet_header(c)
    if ptype != WORK_COMPLETE or _recv_exact(c, len(handle) + 1) != handle + b"\0":
        raise RuntimeError(f"expected the WORK_COMPLETE of {handle!r}, got type {ptype}")
    left = n - len(handle) - 1
    if left != size:
        raise RuntimeError(f"result of {left} bytes for a job of {size}")
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    crc = 0
    while left:
        k = c.recv_into(view[:min(CHUNK, left)])
        if not k:
            raise ConnectionError("server closed mid-result")
        crc = zlib.crc32(view[:k], crc)
        left -= k
    return crc


def echo(srv: Server, function: str, size: int) -> dict:
    fn = function.encode()
    ready, errors = threading.Event(), []
    worker = threading.Thread(target=_worker, args=(srv.port, fn, ready, errors), daemon=True)
    worker.start()
    if not ready.wait(10) or errors:
        raise RuntimeError(f"streaming worker failed: {errors}")
    time.sleep(0.2)      # let the CAN_DO and PRE_SLEEP land
    base = peak = srv.memory("rss")
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, srv.memory("rss"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    ok, error = False, None
    try:
        with socket.create_connection((HOST, srv.port), timeout=TIMEOUT) as c:
            sent: list = []

            def send():
                try:
                    sent.append(_send_job(c, fn, size))
                except (OSError, struct.error) as exc:
                    errors.append(exc)
                    c.shutdown(socket.SHUT_RDWR)      # ends the wait for the result

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            got = _recv_result(c, size)
            sender.join(TIMEOUT)
            ok = bool(sent) and sent[0] == got
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}" + (f" (sending: {errors[0]!r})" if errors else "")
    except RuntimeError as exc:
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - t0
    done.set()
    sampler.join()
    worker.join(5)
    if errors and error is None:
        error = repr(errors[0])
    return {"jobs": 1, "bytes": size, "ok": int(ok and error is None), "error": error,
            "seconds": seconds, "rss_growth_mib": (peak - base) / (1 << 20)}
