"""Job payloads and results as restartable streams of chunks.

It owns turning what a caller passes (bytes, str, a path, a binary file, an
iterable of bytes) into a Payload with a known size whose chunks can be
read again from the start (a resubmission to another server needs that),
without holding a file's contents in memory. An iterable, or a file that
cannot be read by offset, is spooled to a temporary file first.
It must not know about sockets or the protocol.
"""
import io
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping, Set
from typing import Any

from .errors import GearmanError

CHUNK = 1 << 20


class Payload:
    """size, chunks() (restartable), close()."""

    size = 0

    def chunks(self) -> Iterator[bytes | memoryview]:
        raise NotImplementedError

    def slice(self, offset: int, size: int) -> "Payload":
        """A part of this payload that shares its storage (closing the
        part releases nothing)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class BytesPayload(Payload):
    def __init__(self, data: bytes):
        self.data = data
        self.size = len(data)

    def slice(self, offset: int, size: int) -> Payload:
        return BytesPayload(self.data[offset:offset + size])

    def chunks(self) -> Iterator[bytes | memoryview]:
        view = memoryview(self.data)
        for start in range(0, self.size, CHUNK):
            yield view[start:start + CHUNK]


class FilePayload(Payload):
    """`size` bytes of an open file from `start`, read with pread so that
    no file position is shared. Owns the fd when `owned`."""

    def __init__(self, fd: int, start: int, size: int, owned: bool):
        self.fd, self.start, self.size, self.owned = fd, start, size, owned

    def slice(self, offset: int, size: int) -> Payload:
        return FilePayload(self.fd, self.start + offset, size, owned=False)

    def chunks(self) -> Iterator[bytes | memoryview]:
        offset, end = self.start, self.start + self.size
        while offset < end:
            chunk = os.pread(self.fd, min(CHUNK, end - offset), offset)
            if not chunk:
                raise GearmanError(f"payload file shrank while it was being sent "
                                   f"({offset - self.start} of {self.size} bytes read)")
            offset += len(chunk)
            yield chunk

    def close(self) -> None:
        if self.owned and self.fd >= 0:
            os.close(self.fd)
        self.fd = -1


def make_payload(data: Any, spool_dir: str | None = None) -> Payload:
    """Whatever submit() accepts -> a Payload. Raises GearmanError with one
    line for anything else or an unreadable file."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return BytesPayload(bytes(data) if not isinstance(data, bytes) else data)
    if isinstance(data, str):
        return BytesPayload(data.encode("utf-8"))
    if isinstance(data, os.PathLike):
        return _path_payload(data)
    if hasattr(data, "read"):
        return _file_payload(data, spool_dir)
    if isinstance(data, (Mapping, Set)):
        # Iterating would send the keys run together (b"userid" for
        # {"user": 1, "id": 2}): never what was meant.
        raise TypeError(f"job data must be bytes, str, a path, a binary file or an "
                        f"iterable of bytes, not {type(data).__name__} (send an object "
                        f"as JSON with json=...)")
    try:
        iterator = iter(data)
    except TypeError:
        raise GearmanError(f"job data must be bytes, str, a path, a binary file "
                           f"or an iterable of bytes, not {type(data).__name__}")
    return _spool(iterator, spool_dir)


def _path_payload(path: "os.PathLike[str]") -> Payload:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise GearmanError(f"cannot read job data from {os.fspath(path)!r}: "
                           f"{exc.strerror}")
    return FilePayload(fd, 0, os.fstat(fd).st_size, owned=True)


def _file_payload(fileobj: Any, spool_dir: str | None) -> Payload:
    """A regular file is read by offset from its current position (its own
    position is left alone); anything else is spooled."""
    if isinstance(fileobj, io.TextIOBase):
        raise GearmanError("job data file must be opened in binary mode")
    try:
        fd = fileobj.fileno()
        start = fileobj.tell()
        info = os.fstat(fd)
        size = info.st_size - start
        regular = stat.S_ISREG(info.st_mode)
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        regular = False
    if regular and size >= 0:
        # A duplicate descriptor: the caller may close its file meanwhile.
        return FilePayload(os.dup(fd), start, size, owned=True)

    def blocks() -> Iterator[bytes]:
        while chunk := fileobj.read(CHUNK):
            if isinstance(chunk, str):
                raise GearmanError("job data file must be opened in binary mode")
            yield chunk
    return _spool(blocks(), spool_dir)


def _spool(iterator: Iterator[Any], spool_dir: str | None) -> Payload:
    """Write an iterable of bytes to an unnamed temporary file to learn its
    size and be able to send it again."""
    fileobj = tempfile.TemporaryFile(dir=spool_dir)
    try:
        for chunk in iterator:
            if isinstance(chunk, str):
                chunk = chunk.encode("utf-8")
            elif not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise GearmanError(f"job data iterable yielded {type(chunk).__name__}, "
                                   f"expected bytes")
            fileobj.write(chunk)
        fileobj.flush()
        fd = os.dup(fileobj.fileno())
    finally:
        fileobj.close()
    return FilePayload(fd, 0, os.fstat(fd).st_size, owned=True)
