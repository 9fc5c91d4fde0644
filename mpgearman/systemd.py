"""What systemd hands the supervisor and what the supervisor tells it.

Owns: the sd_notify datagrams (READY, STATUS, WATCHDOG, RELOADING,
STOPPING) written straight to $NOTIFY_SOCKET, the watchdog period read
from WATCHDOG_USEC, and the listening sockets of socket activation
(LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES, descriptors from 3 on).

Must not: decide when the server is ready or healthy (the supervisor
does, from its children's heartbeats), or bind anything itself. Without
systemd every call here is a quiet no-op, so the server runs the same by
hand.
"""
import logging
import os
import socket
import time

logger = logging.getLogger(__name__)

LISTEN_FDS_START = 3


class Notifier:
    """sd_notify without libsystemd: one AF_UNIX datagram per message,
    to a path or (leading '@') an abstract address."""

    def __init__(self, environ=os.environ):
        address = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.sock = None
        self.failed = False
        if self.address:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.watchdog = watchdog_period(environ)

    @property
    def enabled(self) -> bool:
        return self.sock is not None

    def send(self, **fields) -> None:
        """send(READY=1, STATUS="...") -> "READY=1\\nSTATUS=...". A lost
        message must not stop the server: the first failure is logged."""
        if self.sock is None:
            return
        text = "\n".join(f"{key}={value}" for key, value in fields.items())
        try:
            self.sock.sendto(text.encode(), self.address)
        except OSError as exc:
            if not self.failed:
                logger.warning("cannot notify systemd at %s: %s",
                               self.address.replace("\0", "@"), exc.strerror)
            self.failed = True

    def ready(self, status: str) -> None:
        self.send(READY=1, STATUS=status)

    def status(self, status: str) -> None:
        self.send(STATUS=status)

    def reloading(self) -> None:
        # MONOTONIC_USEC lets systemd (253+) tell this reload from an older one.
        self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self) -> None:
        self.send(STOPPING=1)

    def ping(self) -> None:
        self.send(WATCHDOG=1)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def watchdog_period(environ=os.environ) -> float | None:
    """Seconds systemd waits for a WATCHDOG=1, or None when it does not
    watch this process (WATCHDOG_PID, when set, must be ours)."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1e6


class ActivationError(Exception):
    """The descriptors systemd passed are not what the server can serve on."""


def listen_sockets(environ=os.environ) -> list:
    """The listening TCP sockets passed by socket activation, [] without.
    The variables are removed so nothing started later mistakes them for
    its own."""
    pid, count = environ.get("LISTEN_PID", ""), environ.get("LISTEN_FDS", "")
    if not count:
        return []
    names = environ.get("LISTEN_FDNAMES", "").split(":")
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        environ.pop(key, None)
    if pid != str(os.getpid()):
        logger.info("LISTEN_FDS is meant for process %s, not this one; ignored", pid or "?")
        return []
    if not count.isdigit() or int(count) == 0:
        raise ActivationError(f"LISTEN_FDS={count!r} is not a positive number")
    socks = []
    for i in range(int(count)):
        fd = LISTEN_FDS_START + i
        name = names[i] if i < len(names) else ""
        socks.append(_adopt(fd, name))
    return socks


def _adopt(fd: int, name: str) -> socket.socket:
    label = f"descriptor {fd}" + (f" ({name})" if name and name != "unknown" else "")
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ActivationError(f"{label} passed by systemd is not a socket: {exc.strerror}") \
            from None
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or \
            sock.type != socket.SOCK_STREAM or not listening:
        sock.detach()
        raise ActivationError(f"{label} passed by systemd is not a listening TCP socket "
                              "(use ListenStream= with an address or port)")
    os.set_inheritable(fd, False)
    return sock


class Health:
    """The children's heartbeats, turned into STATUS lines and watchdog
    pings. systemd's watchdog then vouches for every loop, not only the
    supervisor's: a ping goes out every WATCHDOG_USEC/2, and only while
    each child's last beat is younger than that."""

    def __init__(self, notifier: Notifier, clock=time.monotonic):
        self.notifier = notifier
        self.clock = clock
        self.period = notifier.watchdog / 2 if notifier.watchdog else None
        self.beats = {}               # child pid -> time of its last beat
        self.counts = (0, 0, 0)       # connections, queued jobs, workers
        self.next_ping = 0.0
        self.late = ()                # pids that held the last ping back
        self.shown = ""
        if self.period is not None and self.period < 1.5:
            logger.warning("WatchdogSec below 3 s: idle processes beat only once a second, "
                           "so the watchdog may fire on a healthy server")

    def started(self, pid: int) -> None:
        self.beats[pid] = self.clock()

    def gone(self, pid: int) -> None:
        self.beats.pop(pid, None)

    def beat(self, pid: int, counts) -> None:
        self.beats[pid] = self.clock()
        if counts:
            self.counts = tuple(int(c) for c in counts)

    def status(self, acceptors: int) -> str:
        conns, queued, workers = self.counts
        return (f"acceptors: {acceptors}, connections: {conns}, queued jobs: {queued}, "
                f"workers: {workers}")

    def ready(self, acceptors: int) -> None:
        self.shown = self.status(acceptors)
        self.notifier.ready(self.shown)

    def tick(self, acceptors: int) -> float:
        """Send what is due; seconds until the next call is needed."""
        status = self.status(acceptors)
        if status != self.shown:
            self.shown = status
            self.notifier.status(status)
        if self.period is None:
            return 1.0
        now = self.clock()
        if now >= self.next_ping:
            self.next_ping = now + self.period
            self._ping(now)
        return self.next_ping - now

    def _ping(self, now: float) -> None:
        late = tuple(sorted(pid for pid, t in self.beats.items() if now - t > self.period))
        if late and late != self.late:
            logger.error("no heartbeat from pid %s for over %.1f s: watchdog pings withheld",
                         ", ".join(map(str, late)), self.period)
        elif not late and self.late:
            logger.warning("every process beats again: watchdog pings resume")
        self.late = late
        if not late:
            self.notifier.ping()
