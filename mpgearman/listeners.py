"""Listening sockets. Every acceptor binds the same port with SO_REUSEPORT
and the kernel spreads new connections over them. The supervisor keeps one
bound, non-listening socket per address so the port (even one picked with
--port 0) stays ours while acceptors come and go.

SO_REUSEPORT would also let a second server (another mpgearman of the same
user) join the group and silently take half of the new connections, so the
supervisor binds its socket without it: that bind fails, as any server's
does, when another socket listens on the port. Only then does the socket
take SO_REUSEPORT, for our acceptors to join. That bind cannot see a second
server that is still starting (bound, not listening yet), so the
supervisor also holds an abstract unix socket named after each address:
of two servers starting together on one address, one gets the name.

Under socket activation the supervisor inherits listening sockets from
systemd instead (systemd.py adopts them); every acceptor then accepts
from those same sockets and binds nothing."""
import errno
import os
import socket

BACKLOG = 1024
# TCP keepalive, inherited by every accepted socket: a worker or client
# whose machine vanished is noticed within about two minutes even when no
# traffic flows, so its jobs are requeued instead of waiting forever.
KEEPALIVE = ((socket.SO_KEEPALIVE, socket.SOL_SOCKET, 1),
             (socket.TCP_KEEPIDLE, socket.IPPROTO_TCP, 60),
             (socket.TCP_KEEPINTVL, socket.IPPROTO_TCP, 10),
             (socket.TCP_KEEPCNT, socket.IPPROTO_TCP, 6))


def addresses(listen: str) -> list:
    """(family, address) pairs to bind; "" means every IPv4 and IPv6 address."""
    if not listen:
        pairs = [(socket.AF_INET, "0.0.0.0")]
        if socket.has_ipv6:
            pairs.append((socket.AF_INET6, "::"))
        return pairs
    infos = socket.getaddrinfo(listen, None, type=socket.SOCK_STREAM)
    seen = []
    for family, _, _, _, sockaddr in infos:
        pair = (family, sockaddr[0])
        if pair not in seen:
            seen.append(pair)
    return seen


class PortInUse(OSError):
    """Another program listens on the port: the server does not start."""

    def __init__(self, port, host):
        super().__init__(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
        self.port, self.host = port, host

    def __str__(self):
        return (f"port {self.port} is already in use on {self.host or '*'} (by another job "
                f"server, such as gearmand or another mpgearman?); choose another with --port")


def _socket(family, host, port, first=False):
    """A socket bound with SO_REUSEPORT; `first`: bound without it, and
    given it once bound (see above)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if not first:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        s.bind((host, port))
        if first:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        s.close()
        raise
    return s


def _claim(family, host, port):
    """The abstract unix socket that says a server holds (host, port)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(f"\0mpgearman {family.name} {host} {port}")
    except OSError:
        s.close()
        raise
    return s


def _bind_or_skip(family, host, port, listen, first=False):
    """Bind one address; None when it is the implicit IPv6 address of a
    machine without IPv6 (IPv4 is enough then)."""
    try:
        return _socket(family, host, port, first)
    except OSError as exc:
        if family == socket.AF_INET6 and not listen and \
                exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            return None
        raise


def reserve(listen: str, port: int):
    """Bind (not listen) every address, and claim it; returns (sockets to
    hold, port). With port 0 the first address picks a free port and the
    others take the same one (retried if another program holds it on the
    second address). PortInUse when another server holds the port."""
    for _ in range(20):
        held, chosen, host = [], port, None
        try:
            for family, host in addresses(listen):
                s = _bind_or_skip(family, host, chosen, listen, first=True)
                if s is not None:
                    held.append(s)
                    chosen = chosen or s.getsockname()[1]
                    held.append(_claim(family, host, chosen))
            return held, chosen
        except OSError as exc:
            for s in held:
                s.close()
            if exc.errno != errno.EADDRINUSE:
                raise
            if port != 0:
                raise PortInUse(port, host) from None
    raise OSError(errno.EADDRINUSE, "no port free on every listen address")


def _ready(s):
    for option, level, value in KEEPALIVE:
        s.setsockopt(level, option, value)
    s.setblocking(False)
    return s


def open_listeners(listen: str, port: int, inherited=()) -> list:
    """The listening sockets of one acceptor: the inherited ones (socket
    activation), else its own, bound with SO_REUSEPORT."""
    if inherited:
        return [_ready(s) for s in inherited]
    out = []
    for family, host in addresses(listen):
        s = _bind_or_skip(family, host, port, listen)
        if s is not None:
            s.listen(BACKLOG)
            out.append(_ready(s))
    return out


def describe(sock) -> str:
    """host:port of a bound socket, IPv6 hosts in brackets."""
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if sock.family == socket.AF_INET6 else f"{host}:{port}"
