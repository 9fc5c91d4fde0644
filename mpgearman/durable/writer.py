"""Appending the journal: one write() per coordinator turn, and the syncs.

Owns: the open journal file, the policy of --durability (always: fdatasync
after every write, the group commit of a turn; second: fdatasync at least
once a second; none never gets here), and what is known of the file for
monitoring (size, last sync, sync latency, batch sizes).
Must not: decide what goes in the file (the Core does) or read it back.
A failed write leaves the file cut back to its last whole record; the
caller keeps the bytes and offers them again later.
"""
import logging
import os
import time

from . import format

log = logging.getLogger(__name__)

SYNC_EVERY = 1.0        # seconds, --durability second


class Writer:
    def __init__(self, path: str, mode: str, clock=time.monotonic):
        self.path = path
        self.always = mode == "always"
        self.clock = clock
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.size = os.fstat(self.fd).st_size
        if self.size == 0:
            self._write(format.HEADER)
            os.fdatasync(self.fd)
        self.synced_at = clock()
        self.synced_wall = time.time()
        self.unsynced = False
        self.sync_seconds = 0.0     # the latest fdatasync's duration
        self.commits = self.records_bytes = 0
        self.failed = False

    def _write(self, data) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
            self.size += n

    def commit(self, buf) -> bool:
        """Append `buf` (whole records); with `always` also fdatasync. False
        after an OSError: the file is cut back to where it was."""
        good = self.size
        try:
            self._write(buf)
            if self.always:
                self.sync()
            else:
                self.unsynced = True
        except OSError as exc:
            if not self.failed:
                log.error("cannot write the journal %s: %s; background submissions are "
                          "refused until it can be written again", self.path,
                          exc.strerror or exc)
            self.failed = True
            self._cut(good)
            return False
        if self.failed:
            log.warning("the journal %s is written again; background submissions are "
                        "accepted", self.path)
            self.failed = False
        self.commits += 1
        self.records_bytes += len(buf)
        return True

    def _cut(self, good: int) -> None:
        try:
            os.ftruncate(self.fd, good)
        except OSError:
            pass
        self.size = good

    def sync(self) -> None:
        began = self.clock()
        os.fdatasync(self.fd)
        self.synced_at = now = self.clock()
        self.synced_wall = time.time()
        self.sync_seconds = now - began
        self.unsynced = False

    def tick(self) -> float | None:
        """--durability second: sync when a second has passed since the last
        one and something was written; returns seconds until it is due."""
        if not self.unsynced:
            return None
        wait = self.synced_at + SYNC_EVERY - self.clock()
        if wait > 0:
            return wait
        try:
            self.sync()
        except OSError as exc:
            log.error("cannot sync the journal %s: %s", self.path, exc.strerror or exc)
            self.synced_at = self.clock()
        return None

    def stats(self, live_jobs: int) -> list:
        """(key, value) pairs for the `stats` admin command."""
        return [("journal.bytes", self.size), ("journal.live_jobs", live_jobs),
                ("journal.seconds_since_sync", f"{time.time() - self.synced_wall:.3f}"),
                ("journal.sync_latency_seconds", f"{self.sync_seconds:.6f}"),
                ("journal.writes", self.commits),
                ("journal.writable", int(not self.failed))]

    def reopen(self) -> None:
        """The file at `path` was replaced (compaction): append to the new one."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        os.close(self.fd)
        self.fd = fd
        self.size = os.fstat(fd).st_size

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.fdatasync(self.fd)
            except OSError as exc:
                log.error("cannot sync the journal %s: %s", self.path, exc.strerror or exc)
            os.close(self.fd)
            self.fd = -1
