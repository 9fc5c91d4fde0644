"""Reading the journal back at start: the live background jobs, in order.

Owns: the walk over the records, what counts as a live job (a SUBMIT with
no END), its attempts (RUN records), the highest job number ever given (so
new handles never collide), and what to do with damage: a torn record at
the end is cut off with a log line; any other bad record stops the start
with an error naming the file and offset, unless `recover` is set: then a
copy of the damaged file is kept and the journal is cut before the damage.
Must not: build jobs itself (the Core's restore() does).
"""
import logging
import mmap
import os
import shutil
import time

from . import format

log = logging.getLogger(__name__)


class JournalDamaged(Exception):
    """A bad record before the end of the journal: the server does not start."""


class Replayed:
    """What the journal holds: `live` (job number -> format.Submit, in the
    order they were submitted) and `top` (the highest job number seen)."""

    def __init__(self):
        self.live: dict[int, format.Submit] = {}
        self.top = 0
        self.size = len(format.HEADER)


def read(path: str, recover: bool = False) -> Replayed:
    out = Replayed()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return out
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return out
        with mmap.mmap(fd, size, prot=mmap.PROT_READ) as buf:
            try:
                format.check_header(buf[:len(format.HEADER)])
            except format.BadHeader as exc:
                raise JournalDamaged(f"{path}: {exc}") from None
            good = _walk(buf, out, path, recover)
        if good < size:
            os.ftruncate(fd, good)
        out.size = good
    finally:
        os.close(fd)
    return out


def _walk(buf, out: Replayed, path: str, recover: bool) -> int:
    """Apply every record to `out`; returns the length of the good part."""
    live, top = out.live, 0
    try:
        for at, body in format.records(buf):
            kind = body[:1]
            if kind == format.S:
                sub = format.Submit(body)
                live[sub.no] = sub
                no = sub.no
            else:
                no = format.SHORT.unpack_from(body)[1]
                if kind == format.E:
                    live.pop(no, None)
                elif kind == format.R:
                    sub = live.get(no)
                    if sub is not None:
                        sub.runs += 1
                elif kind == format.N:
                    pass
                else:
                    raise format.Damage(at, f"unknown record type {kind!r}", torn=False)
            if no > top:
                top = no
    except format.Damage as exc:
        out.top = top
        return _damaged(path, exc, recover, len(buf))
    out.top = top
    return len(buf)


def _damaged(path: str, exc: format.Damage, recover: bool, size: int) -> int:
    if exc.torn:
        log.warning("journal %s: %s at the end (a write cut by a crash); %d byte(s) cut off",
                    path, exc, size - exc.offset)
        return exc.offset
    if not recover:
        raise JournalDamaged(
            f"journal {path} is damaged at offset {exc.offset} ({exc.why}); the records "
            f"after it cannot be read. Start with --recover to keep a copy of it and serve "
            f"the jobs before that offset") from None
    copy = f"{path}.damaged-{int(time.time())}"
    shutil.copyfile(path, copy)
    log.error("journal %s is damaged at offset %d (%s); a copy is kept as %s and the "
              "%d byte(s) from there on are dropped (--recover)", path, exc.offset, exc.why,
              copy, size - exc.offset)
    return exc.offset
