"""What every process of the server does to behave: a name that `ps` and
psutil show (supervisor, coordinator, acceptor-N), death with its parent,
a child's signal dispositions, and signal handlers that only record what
arrived and wake the loop.
"""
import ctypes
import ctypes.util
import os
import signal
import socket

_PR_SET_NAME = 15
_PR_SET_PDEATHSIG = 1

try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
except OSError:  # pragma: no cover - no libc to talk to
    _libc = None


def set_name(name: str) -> None:
    """Set the kernel's comm name (15 bytes) of this process."""
    if _libc is not None:
        _libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


def die_with_parent(parent: int) -> None:
    """In a child forked by `parent` (the supervisor's pid): get SIGTERM if
    the supervisor disappears, so no child is orphaned. When it is gone
    already, before the request took effect, the child's parent is no longer
    `parent`. (Never compare with 1: the supervisor itself is pid 1 as a
    container's entrypoint.)"""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)


class SignalInbox:
    """Signals recorded by handlers and a socket that becomes readable when
    one arrives, for the process's own poll loop."""

    def __init__(self, signums):
        self.received = []
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)
        signal.set_wakeup_fd(self._w.fileno(), warn_on_full_buffer=False)
        for s in signums:
            signal.signal(s, self._record)

    def _record(self, signum, _frame):
        self.received.append(signum)

    def fileno(self) -> int:
        return self._r.fileno()

    def take(self) -> list:
        try:
            while self._r.recv(4096):
                pass
        except BlockingIOError:
            pass
        got, self.received = self.received, []
        return got

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        self._r.close()
        self._w.close()


def reset_signals() -> None:
    """In a freshly forked child: forget the parent's handlers, and ignore
    SIGHUP. A reload is the supervisor's business alone, and a hangup that
    reaches the whole process group (a closing terminal, `kill -HUP -PGID`)
    or a child by mistake must not kill it."""
    signal.set_wakeup_fd(-1)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(s, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def release_freed_memory() -> None:
    """Hand the heap's free pages back to the system. glibc keeps memory
    freed in the middle of its heap (and raises its mmap threshold after
    big frees), so what a connection held would stay resident for ever."""
    trim = getattr(_libc, "malloc_trim", None)   # glibc only
    if trim is not None:
        trim(0)
