"""A doorbell: an eventfd a ring's producer rings to wake a sleeping consumer.

Owns the eventfd: created non-blocking by the supervisor before it forks,
so both sides inherit it.  The consumer registers fileno() with its poll or
epoll loop and drain()s it after waking; the counter is sticky, so a ring
that lands before the consumer blocks is not lost.

Must not: decide when to ring (the ring's writer_should_ring does: only when
the reader said it sleeps) or block (both ring and drain return at once).
"""
import os


class Doorbell:
    __slots__ = ("_fd",)

    def __init__(self):
        # CLOEXEC only matters across exec, which we never do; fork keeps it.
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError("doorbell is closed")
        return self._fd

    def ring(self) -> None:
        """Make the fd readable (one write syscall)."""
        try:
            os.eventfd_write(self.fileno(), 1)
        except BlockingIOError:
            pass  # counter at its maximum: it is readable already

    def drain(self) -> int:
        """Make the fd unreadable again; returns how many rings it held
        (0 if none)."""
        try:
            return os.eventfd_read(self.fileno())
        except BlockingIOError:
            return 0

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> "Doorbell":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Doorbell(fd={self._fd})"
