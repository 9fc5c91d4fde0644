"""Spool files: the side road for payloads too big for the rings.

A body above the stream threshold is written here chunk by chunk as it
arrives (as NAME.part, renamed to NAME when complete, so a crash leaves only
.part files that are safe to delete), then only NAME crosses the rings.

Every name is consumed exactly once: whoever sends a spool file to a socket
opens it and unlinks that name; the coordinator makes extra names (hard
links) when one payload goes to several connections. The open descriptor
keeps the bytes alive until sendfile() has finished.

The spool lives on disk (a cache directory), never in RAM-backed /dev/shm.
"""
import fcntl
import itertools
import logging
import os

log = logging.getLogger(__name__)


class SpoolWriter:
    __slots__ = ("dir", "name", "fd", "size")

    def __init__(self, directory: str, name: str):
        self.dir = directory
        self.name = name
        self.size = 0
        self.fd = os.open(os.path.join(directory, name + ".part"),
                          os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)

    def write(self, data) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
            self.size += n

    def finish(self) -> str:
        os.close(self.fd)
        self.fd = -1
        os.rename(os.path.join(self.dir, self.name + ".part"), os.path.join(self.dir, self.name))
        return self.name

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            try:
                os.unlink(os.path.join(self.dir, self.name + ".part"))
            except FileNotFoundError:
                pass


class Spool:
    """One acceptor's view of the spool directory."""

    def __init__(self, directory: str, tag: str):
        self.dir = directory
        self.tag = tag
        self._serial = itertools.count(1)

    def writer(self) -> SpoolWriter:
        return SpoolWriter(self.dir, f"{self.tag}.{next(self._serial)}")

    def take(self, name: str) -> int:
        """Open NAME for sending and drop the name; returns the fd. Raises
        OSError when the file cannot be opened (the name is gone then, or
        left for clean() at the next start)."""
        path = os.path.join(self.dir, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        finally:
            _unlink(path)
        return fd


class SpoolNames:
    """The coordinator's side: extra names for one payload, and dropping names.
    (Implements coordinator SpoolOps.)"""

    def __init__(self, directory: str):
        self.dir = directory
        self._serial = itertools.count(1)

    def share(self, ref):
        name = f"c.{next(self._serial)}"
        os.link(os.path.join(self.dir, ref.name), os.path.join(self.dir, name))
        return type(ref)(name, ref.size)

    def release(self, ref) -> None:
        _unlink(os.path.join(self.dir, ref.name))


def _unlink(path: str) -> None:
    """Drop a spool name; one already gone is fine, any other failure is
    logged (the file stays until the next start cleans the spool)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.error("cannot remove spool file %s: %s", path, exc.strerror or exc)


def clean(directory: str, only_parts_of: str | None = None) -> None:
    """Remove spool files: all of them (start-up, shutdown), or the partial
    files of one dead acceptor (tag prefix)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        if name == "lock":
            continue
        if only_parts_of is not None and not (name.startswith(only_parts_of + ".")
                                              and name.endswith(".part")):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def lock(directory: str, port: int) -> int:
    """Hold an exclusive lock on the spool directory: a second server on the
    same port would otherwise join the SO_REUSEPORT group and silently take
    half of the connections."""
    fd = os.open(os.path.join(directory, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OSError(f"another mpgearman already serves port {port} ({directory} is locked)")
    return fd
