"""Raw-socket helpers for integration tests: send Gearman packets and admin
lines, read exact replies, every read bounded by a timeout.

Packets are built with mpgearman.protocol.encoder.request so the tests and
the server agree on the table of packet types; replies are parsed here
independently (12-byte header, then exactly `size` payload bytes).
"""
from __future__ import annotations

import re
import socket
import struct
import time
from dataclasses import dataclass

import psutil

from mpgearman.protocol.encoder import request
from mpgearman.protocol.packets import PacketType

__all__ = ["Conn", "ConnectionClosed", "Packet", "PacketType", "request",
           "normalise", "parse_status", "wait_for", "is_listing",
           "LISTING_COMMANDS", "TIMEOUT"]

HEADER = struct.Struct(">4sII")
TIMEOUT = 5.0                  # default bound for any single expected reply


@dataclass(frozen=True)
class Packet:
    magic: bytes
    type: int
    payload: bytes

    @property
    def args(self) -> list[bytes]:
        return self.payload.split(b"\0")

    @property
    def raw(self) -> bytes:
        return HEADER.pack(self.magic, self.type, len(self.payload)) + self.payload

    def __repr__(self) -> str:
        try:
            name = PacketType(self.type).name
        except ValueError:
            name = str(self.type)
        return f"Packet({self.magic!r}, {name}, {self.payload!r})"


class ConnectionClosed(AssertionError):
    """The server closed the connection while a reply was expected."""


class Conn:
    """One TCP connection to a Gearman server."""

    def __init__(self, host: str, port: int, timeout: float = TIMEOUT):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    # -- plumbing ---------------------------------------------------------
    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no reply in time; buffered {self.buf!r}")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError(f"no reply in time; buffered {self.buf!r}") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise ConnectionClosed(f"connection closed; buffered {self.buf!r}")
        self.buf += chunk

    def read_exact(self, n: int, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until(self, terminator: bytes, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while terminator not in self.buf:
            self._fill(deadline)
        end = self.buf.index(terminator) + len(terminator)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def read_line(self, timeout: float | None = None) -> bytes:
        """One text line including its b'\\n'."""
        return self.read_until(b"\n", timeout)

    def read_listing(self, timeout: float | None = None) -> bytes:
        """A listing reply up to and including its b'.\\n' line, or a single
        ERR line. Returns the raw bytes."""
        deadline = time.monotonic() + (timeout or self.timeout)
        out = b""
        while True:
            line = self.read_line(max(deadline - time.monotonic(), 0.001))
            out += line
            if line == b".\n" or (out == line and line.startswith(b"ERR ")):
                return out

    def read_available(self, quiet: float = 0.2, timeout: float | None = None) -> bytes:
        """Everything that arrives until the line has been silent for
        `quiet` seconds (bounded by `timeout`). Used to prove that nothing
        more was sent."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            self.sock.settimeout(quiet)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            self.buf += chunk
        out, self.buf = self.buf, b""
        return out

    def assert_silent(self, quiet: float = 0.2) -> None:
        extra = self.read_available(quiet)
        assert extra == b"", f"unexpected bytes from server: {extra!r}"

    def is_closed(self, timeout: float | None = None) -> bool:
        """True if the server closes the connection within `timeout`
        (anything received in the meantime is kept in the buffer)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    # -- binary protocol --------------------------------------------------
    def send_packet(self, ptype: int, *args: bytes) -> None:
        self.send(request(ptype, *args))

    def read_packet(self, timeout: float | None = None) -> Packet:
        deadline = time.monotonic() + (timeout or self.timeout)
        head = self.read_exact(12, timeout)
        magic, ptype, size = HEADER.unpack(head)
        payload = self.read_exact(size, max(deadline - time.monotonic(), 0.001))
        return Packet(magic, ptype, payload)

    def expect(self, ptype: int, payload: bytes | None = None,
               timeout: float | None = None) -> Packet:
        """Read one packet, assert its type (and payload if given)."""
        pkt = self.read_packet(timeout)
        assert pkt.magic == b"\0RES", pkt
        assert pkt.type == ptype, f"expected {PacketType(ptype).name}, got {pkt!r}"
        if payload is not None:
            assert pkt.payload == payload, pkt
        return pkt

    def call(self, ptype: int, *args: bytes, timeout: float | None = None) -> Packet:
        self.send_packet(ptype, *args)
        return self.read_packet(timeout)

    def created_and_completed(self, n: int, timeout: float | None = None):
        """Read until `n` JOB_CREATED and `n` WORK_COMPLETE packets have
        come, in whatever interleaving (a job's result may arrive before a
        later submission's JOB_CREATED). Returns (handles in order,
        {handle: result})."""
        created, results = [], {}
        while len(created) < n or len(results) < n:
            p = self.read_packet(timeout)
            if p.type == PacketType.JOB_CREATED:
                created.append(p.payload)
            else:
                assert p.type == PacketType.WORK_COMPLETE, p
                handle, data = p.payload.split(b"\0", 1)
                results[handle] = data
        return created, results

    def submit(self, ptype: int, function: bytes, unique: bytes = b"",
               data: bytes = b"") -> bytes:
        """Submit a job and return its handle (asserts JOB_CREATED)."""
        self.send_packet(ptype, function, unique, data)
        return self.expect(PacketType.JOB_CREATED).payload

    # -- admin text protocol ----------------------------------------------
    def admin(self, line: bytes | str, timeout: float | None = None) -> bytes:
        """Send one admin command (b'\\n' appended if missing) and return the
        raw reply: a whole listing for listing commands, else one line."""
        if isinstance(line, str):
            line = line.encode()
        if not line.endswith(b"\n"):
            line += b"\n"
        self.send(line)
        if is_listing(line):
            return self.read_listing(timeout)
        return self.read_line(timeout)


LISTING_COMMANDS = (("status",), ("workers",), ("prioritystatus",),
                    ("show", "jobs"), ("show", "unique", "jobs"))


def is_listing(line: bytes) -> bool:
    """Whether gearmand answers this admin line with a `.`-terminated listing
    (errors of listing commands are single ERR lines, see read_listing)."""
    words = [w.lower() for w in line.decode("latin-1").rstrip("\r\n").split(" ")]
    return any(tuple(words[:len(c)]) == c for c in LISTING_COMMANDS)


_HANDLE = re.compile(rb"H:[^:\s\0]+(?::\d+)?:(\d+)")   # gearmand H:host:N, ours H:host:port:N
_OK_PID = re.compile(rb"^OK \d+\n", re.M)
_OK_VERSION = re.compile(rb"^OK \d[^\s]*\n", re.M)


def _normalise_text(data: bytes, pid: bool, version: bool) -> bytes:
    data = _HANDLE.sub(rb"H:HOST:\1", data)
    if pid:
        data = _OK_PID.sub(b"OK PID\n", data)
    if version:
        data = _OK_VERSION.sub(b"OK VERSION\n", data)
    return data


def normalise(data: bytes, pid: bool = False, version: bool = False) -> bytes:
    """Replace the host part of job handles (H:<host>:<n> -> H:HOST:<n>),
    and optionally `OK <pid>` / `OK <version>` values, so two servers'
    transcripts can be compared byte for byte.

    `data` may be a stream of binary packets and text lines: packets are
    rewritten with their size field fixed, text lines one by one."""
    out, pos = [], 0
    while pos < len(data):
        if data[pos] == 0 and len(data) - pos >= 12:
            magic, ptype, size = HEADER.unpack_from(data, pos)
            payload = data[pos + 12:pos + 12 + size]
            if len(payload) == size:
                payload = _HANDLE.sub(rb"H:HOST:\1", payload)
                out.append(HEADER.pack(magic, ptype, len(payload)) + payload)
                pos += 12 + size
                continue
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        out.append(_normalise_text(data[pos:end], pid, version))
        pos = end
    return b"".join(out)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02,
             message: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def total_rss(pids) -> int:
    """Resident memory of these processes, summed (gone ones count 0)."""
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            pass
    return total


def parse_status(listing: bytes) -> dict[str, tuple[int, ...]]:
    """`status`/`prioritystatus` listing -> {function: (numbers...)}."""
    out = {}
    for line in listing.decode().split("\n"):
        if not line or line == ".":
            continue
        name, *nums = line.split("\t")
        out[name] = tuple(int(n) for n in nums)
    return out
