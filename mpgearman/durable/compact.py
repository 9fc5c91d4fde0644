"""Online compaction: the journal rewritten as its live jobs, in the
background, when it has grown past about twice the live records.

Owns: when a compaction is due, the snapshot (a forked child writes the
live jobs, as the Core held them at the fork, to journal.new while the
coordinator goes on appending to the old file), and the switch (the records
appended since the fork are copied behind the snapshot, synced, and
journal.new is renamed over the journal; the writer goes on in it).
Must not: stop the coordinator for longer than that switch. The child only
writes its file and exits; it touches no shared memory and no socket.
"""
import logging
import os
import signal
import time

from .. import process
from . import format

log = logging.getLogger(__name__)

# Bytes of journal always allowed beyond twice the live records (the
# environment variable MPGEARMAN_JOURNAL_SLACK sets another, for tests).
SLACK = int(os.environ.get("MPGEARMAN_JOURNAL_SLACK", 64 << 20))
RETRY_AFTER = 30.0        # seconds before a failed compaction is tried again


def snapshot_records(core):
    """The records that rebuild `core`'s journaled jobs, oldest first; a job
    that is running counts that run as an attempt (as replay would)."""
    snapshot = getattr(core, "snapshot", None)
    if snapshot is not None:          # the C core writes them itself
        yield snapshot()
        yield format.top(core.jobs.count)
        return
    run = format.run
    for job in core.jobs.jobs.values():
        if job.logged:
            yield format.submit(job.no, job.handle, job.fn.name, job.unique, job.prio,
                                job.when, job.data)
            for _ in range(job.retries + (job.worker is not None)):
                yield run(job.no)
    yield format.top(core.jobs.count)


def write_snapshot(core, path: str) -> None:
    """Write the live jobs to `path` (a new file), synced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        chunk = [format.HEADER]
        size = 0
        for rec in snapshot_records(core):
            chunk.append(rec)
            size += len(rec)
            if size > 1 << 20:
                _write_all(fd, b"".join(chunk))
                chunk, size = [], 0
        _write_all(fd, b"".join(chunk))
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def append_tail(old: str, start: int, new: str) -> int:
    """Copy the bytes of `old` from `start` to the end of `new`; synced.
    Returns the new file's size."""
    with open(old, "rb") as src:
        src.seek(start)
        tail = src.read()
    fd = os.open(new, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        _write_all(fd, tail)
        os.fdatasync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


class Compactor:
    def __init__(self, writer, slack: int = SLACK, clock=time.monotonic):
        self.writer = writer
        self.slack = slack
        self.clock = clock
        self.child = None         # (pid, offset of the old file at the fork)
        self.not_before = 0.0
        self.runs = 0
        self.longest_pause = 0.0  # seconds the loop spent in a fork or a switch

    @property
    def new_path(self) -> str:
        return self.writer.path + ".new"

    def due(self, live_bytes: int) -> bool:
        return (self.child is None and self.writer.size > 2 * live_bytes + self.slack
                and self.clock() >= self.not_before and not self.writer.failed)

    def start(self, core) -> None:
        """Fork the child that writes the snapshot (called between turns,
        when everything the Core did is in the file)."""
        began = self.clock()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                process.die_with_parent(parent)
                process.set_name("mpg-compact")
                write_snapshot(core, self.new_path)
                code = 0
            except BaseException:        # noqa: BLE001 - the parent logs the outcome
                pass
            finally:
                os._exit(code)
        self.child = (pid, self.writer.size)
        self._paused(began)

    def poll(self) -> None:
        """Finish a compaction whose child is done."""
        pid, offset = self.child
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            return
        self.child = None
        if os.waitstatus_to_exitcode(status) != 0:
            log.error("compaction of %s failed (child exit %s); tried again later",
                      self.writer.path, os.waitstatus_to_exitcode(status))
            self._give_up()
            return
        began = self.clock()
        try:
            self.switch(offset)
        except OSError as exc:
            log.error("compaction of %s failed: %s; tried again later", self.writer.path,
                      exc.strerror or exc)
            self._give_up()
            return
        self._paused(began)

    def switch(self, offset: int) -> None:
        """The snapshot is written: add what came since, and make it the journal."""
        w = self.writer
        old_size = w.size
        size = append_tail(w.path, offset, self.new_path)
        os.rename(self.new_path, w.path)
        _sync_dir(os.path.dirname(w.path) or ".")
        w.reopen()
        self.runs += 1
        log.info("journal %s compacted: %d -> %d bytes", w.path, old_size, size)

    def _give_up(self) -> None:
        self.not_before = self.clock() + RETRY_AFTER
        try:
            os.unlink(self.new_path)
        except OSError:
            pass

    def _paused(self, began: float) -> None:
        pause = self.clock() - began
        if pause > self.longest_pause:
            self.longest_pause = pause

    def close(self) -> None:
        """Stopping: a compaction in flight is abandoned (the old journal is whole)."""
        if self.child is not None:
            pid = self.child[0]
            self.child = None
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
            self._give_up()


def _sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
