"""Cancelling a job: the text admin command `cancel job HANDLE` on the
job's server, over a connection of its own, blocking or asyncio.

The binary protocol has no request to cancel a job; gearmand and
mpgearman both take the admin command on their job port. The server drops
a queued job (a job already running may still finish) and sends WORK_FAIL
to its foreground clients. It owns only that exchange; it must not know
about job states.
"""
import asyncio
import socket

from .errors import GearmanError, ServerUnavailable
from .servers import split_address

MAX_REPLY = 4096


def command(handle: str) -> bytes:
    if not handle or any(c in handle for c in " \t\r\n\0"):
        raise GearmanError(f"cannot cancel a job with handle {handle!r}")
    return b"cancel job " + handle.encode() + b"\n"


def verdict(address: str, handle: str, reply: bytes) -> bool:
    """True: cancelled; False: the server does not know the job (it has
    ended). Anything else is an error."""
    line = reply.split(b"\n", 1)[0].strip()
    if line == b"OK":
        return True
    if line == b"ERR UNKNOWN_JOB" or line.startswith(b"ERR UNKNOWN_JOB "):
        return False
    text = line.decode("utf-8", "replace") or "the connection closed"
    raise GearmanError(f"{address} refused to cancel job {handle}: {text}")


def unavailable(address: str, handle: str, timeout: float, exc: Exception) -> ServerUnavailable:
    if isinstance(exc, (socket.timeout, asyncio.TimeoutError)):
        return ServerUnavailable(f"{address}: no answer to cancel job {handle} "
                                 f"within {timeout:g} s")
    return ServerUnavailable(f"{address}: cannot cancel job {handle}: "
                             f"{getattr(exc, 'strerror', None) or exc}")


def cancel_job(address: str, handle: str, timeout: float) -> bool:
    request = command(handle)
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(request)
            reply = b""
            while b"\n" not in reply and len(reply) < MAX_REPLY:
                chunk = sock.recv(MAX_REPLY)
                if not chunk:
                    break
                reply += chunk
    except (socket.timeout, asyncio.TimeoutError, OSError) as exc:
        raise unavailable(address, handle, timeout, exc) from None
    return verdict(address, handle, reply)


async def cancel_job_async(address: str, handle: str, timeout: float) -> bool:
    request = command(handle)
    host, port = split_address(address)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                timeout)
        try:
            writer.write(request)
            reply = await asyncio.wait_for(reader.readline(), timeout)
        finally:
            writer.close()
    except (socket.timeout, asyncio.TimeoutError, OSError) as exc:
        raise unavailable(address, handle, timeout, exc) from None
    return verdict(address, handle, reply)
