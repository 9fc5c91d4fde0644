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
import errno
import fcntl
import itertools
import logging
import os
import re
import shutil
import stat

log = logging.getLogger(__name__)


def link_or_copy(src: str, dst: str) -> None:
    """A second name for `src`; a copy (sendfile, in the kernel) when `dst`
    is on another filesystem, as a spool on tmpfs and a data directory on
    disk are. Raises OSError."""
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        log.debug("%s and %s are on different filesystems: copying", src, dst)
        tmp = dst + ".part"
        try:
            shutil.copyfile(src, tmp)
            os.rename(tmp, dst)
        except OSError:
            _unlink(tmp)
            raise


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
    (Implements coordinator SpoolOps.) The payload of a journaled job also
    gets a name in `keep_dir` (the data directory's payloads/), which the
    start-up cleaning of the spool never touches: the journal's replay puts
    it back in the spool."""

    def __init__(self, directory: str, keep_dir: str | None = None):
        self.dir = directory
        self.keep_dir = keep_dir
        self._serial = itertools.count(1)

    def keep(self, ref) -> None:
        """Keep the bytes of `ref` across a restart (raises OSError)."""
        if self.keep_dir is None:
            return
        os.makedirs(self.keep_dir, 0o700, exist_ok=True)
        link_or_copy(os.path.join(self.dir, ref.name), os.path.join(self.keep_dir, ref.name))

    def unkeep(self, ref) -> None:
        """The journaled job of `ref` ended."""
        if self.keep_dir is not None:
            _unlink(os.path.join(self.keep_dir, ref.name))

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
    files of one dead acceptor (tag prefix). Only regular files named as the
    server names them (SERVER_NAMES) go: never anything else found there,
    and never what a symbolic link points to."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        name = entry.name
        if not SERVER_NAMES.fullmatch(name) or not entry.is_file(follow_symlinks=False):
            continue
        if only_parts_of is not None and not (name.startswith(only_parts_of + ".")
                                              and name.endswith(".part")):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def lock(directory: str, port: int) -> int:
    """Hold an exclusive lock on the spool directory, so that two servers
    never share (and clean) one. The lock file is opened without following
    a symbolic link, and must be a regular file of ours."""
    path = os.path.join(directory, "lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeSpoolDir(f"{path} is a symbolic link; remove it") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink != 1:
        os.close(fd)
        raise UnsafeSpoolDir(f"{path} is not a regular file of this server's user "
                             f"(uid {os.geteuid()}) with one name; remove it")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OSError(f"another mpgearman already serves port {port} ({directory} is locked)")
    return fd


# -- the directory ------------------------------------------------------------------
#
# --spool-dir may be shared (mode 1777, like /tmp); the port-N directory in it
# is the server's own: created without following a link, owned by the
# server's user and writable by nobody else, or the server refuses to start.
# Whatever else is found in it is left alone (clean() removes only the names
# the server gives its files).

# Spool.writer names a<index>.<pid>.<n>[.part], SpoolNames.share c.<n>.
SERVER_NAMES = re.compile(r"a\d+\.\d+\.\d+(\.part)?|c\.\d+")


class UnsafeSpoolDir(OSError):
    """The spool directory is not safely the server's: it does not start."""


def prepare(base: str, port: int) -> tuple[str, int]:
    """Make BASE/port-PORT the server's own spool directory, lock it and
    remove what an earlier run left; returns (its path, the lock's fd)."""
    os.makedirs(base, mode=0o700, exist_ok=True)
    _check_base(base)
    path = os.path.join(base, f"port-{port}")
    try:
        os.mkdir(path, 0o700)       # never follows a link in the last component
    except FileExistsError:
        pass
    _check_own_dir(path)
    fd = lock(path, port)
    clean(path)
    return path, fd


def _check_base(base: str) -> None:
    """Nobody else may rename or replace entries of BASE: it belongs to us
    (or root), and is writable by others only with the sticky bit."""
    st = os.stat(base)
    euid = os.geteuid()
    if st.st_uid not in (euid, 0):
        raise UnsafeSpoolDir(f"spool directory {base} belongs to uid {st.st_uid}, not to "
                             f"this server's user (uid {euid}) or root")
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise UnsafeSpoolDir(f"spool directory {base} is writable by other users without "
                             f"the sticky bit (mode {stat.S_IMODE(st.st_mode):o}); "
                             f"chmod o-w,g-w or chmod +t it")


def _check_own_dir(path: str) -> None:
    """PATH is a directory (not a link to one) of ours that only we may write."""
    st = os.lstat(path)
    euid = os.geteuid()
    if not stat.S_ISDIR(st.st_mode):
        problem = "is not a directory (a symbolic link or a file)"
    elif st.st_uid != euid:
        problem = f"belongs to uid {st.st_uid}, not to this server's user (uid {euid})"
    elif st.st_mode & 0o022:
        problem = f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    else:
        return
    raise UnsafeSpoolDir(f"spool directory {path} {problem}; remove it")
