"""The data directory: where the journal lives, and opening it at start.

Owns: the directory (created 0700, locked so that two servers never share
one), the journal's file name, and start-up: replay the journal into the
Core, then open the Writer that appends to it.
Must not: decide what a record holds (format.py) or write during service
(writer.py).
"""
import fcntl
import logging
import os
import resource
import time

from ..acceptor.spool import link_or_copy
from . import replay
from .writer import Writer

log = logging.getLogger(__name__)

JOURNAL = "journal"
PAYLOADS = "payloads"


class DataDirBusy(OSError):
    """Another server holds the data directory."""


def prepare(path: str) -> int:
    """Create and lock PATH; returns the lock's fd (held for the server's life)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(path, "lock"),
                 os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirBusy(f"another mpgearman uses the data directory {path} (it is locked)")
    return fd


def payloads_dir(config) -> str | None:
    """Where the spooled payloads of journaled jobs are kept (None: nowhere)."""
    if config.durability == "none" or not config.data_dir:
        return None
    return os.path.join(config.data_dir, PAYLOADS)


def _relink(config, sub) -> None:
    """Put a replayed job's kept payload back in the (cleaned) spool; a
    missing one is logged, and the job fails when a worker reaches it."""
    name = sub.data.decode()
    try:
        link_or_copy(os.path.join(config.data_dir, PAYLOADS, name),
                     os.path.join(config.spool_dir, name))
    except FileExistsError:
        pass
    except OSError as exc:
        log.error("job %s: its payload %s cannot be restored: %s",
                  sub.handle.decode("ascii", "replace"), name, exc.strerror or exc)


def journal_path(config) -> str:
    return os.path.join(config.data_dir, JOURNAL)


def open_journal(config, core) -> Writer | None:
    """Replay the journal into `core` and open it for appending; None with
    --durability none or no data_dir (an old journal is then left as it is, unread).
    Raises replay.JournalDamaged when it cannot be read and --recover is off."""
    if config.durability == "none" or not config.data_dir:
        # (The supervisor always names the directory; a bare loop in a test
        # that names none keeps its jobs in memory.)
        core.journal = None
        return None
    path = journal_path(config)
    began = time.monotonic()
    found = replay.read(path, config.recover)
    for sub in found.live.values():
        if sub.spooled:
            _relink(config, sub)
    core.restore(found.live.values())
    if found.top > core.jobs.count:
        core.jobs.count = found.top
    if found.live:
        log.info("journal %s: %d background job(s) restored in %.2f s (peak RSS %d MiB)",
                 path, len(found.live), time.monotonic() - began,
                 resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10)
    return Writer(path, config.durability)
