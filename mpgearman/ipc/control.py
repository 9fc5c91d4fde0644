"""The slow channel between the supervisor and each child: short text
lines over a socketpair. Rare events only; the data path never touches it.
EOF means the other side is gone.

Lines, child -> supervisor: "ready"; "beat" (an acceptor's heartbeat);
"beat <connections> <queued jobs> <workers>" (the coordinator's, with its
counts); "reset <acceptor> <generation>". Supervisor -> coordinator:
"attach <acceptor>" (one is about to start in that slot); "lost <acceptor>
[retired]"; "configure key=value ..." (settings changed by a reload).
A receiver may register handlers for some first words (on()); receive()
hands it the other lines.
"""
import socket
import time

BEAT_INTERVAL = 0.5     # seconds between heartbeats of a busy loop


class Control:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sock.setblocking(False)
        self._buf = b""
        self._handlers = {}

    @classmethod
    def pair(cls):
        a, b = socket.socketpair()
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def on(self, word: str, handler) -> None:
        """Lines starting with `word` go to handler(words[1:]) inside
        receive(), instead of being returned."""
        self._handlers[word] = handler

    def send(self, *words) -> None:
        line = " ".join(str(w) for w in words).encode() + b"\n"
        self.sock.setblocking(True)
        try:
            self.sock.sendall(line)
        finally:
            self.sock.setblocking(False)

    def receive(self):
        """Complete lines received so far, as lists of words; None at EOF."""
        try:
            while True:
                data = self.sock.recv(4096)
                if not data:
                    return None
                self._buf += data
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return None
        *lines, self._buf = self._buf.split(b"\n")
        out = []
        for line in lines:
            words = line.decode().split()
            handler = self._handlers.get(words[0]) if words else None
            if handler is None:
                out.append(words)
            else:
                handler(words[1:])
        return out

    def close(self) -> None:
        self.sock.close()


class Heartbeat:
    """Called by a process's loop on every turn; sends "beat" (plus what
    counts() returns) at most every BEAT_INTERVAL. The loops wake at least
    once a second even when idle, so the supervisor hears from a live
    loop at least that often, and never from a hung one."""

    __slots__ = ("control", "counts", "last")

    def __init__(self, control: Control, counts=None):
        self.control = control
        self.counts = counts
        self.last = 0.0

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self.last < BEAT_INTERVAL:
            return
        self.last = now
        words = self.counts() if self.counts is not None else ()
        try:
            self.control.send("beat", *words)
        except OSError:
            pass        # the supervisor is gone; the parent-death signal follows
