"""Server addresses, the choice of a server for a job, and down-server backoff.

It owns parsing of "host:port" lists and each server's up/down state. It
must not open sockets: callers report connect results with mark_up() and
mark_down() and ask candidates() which servers to try, in order.

Choice: a job with a unique goes to the server with the highest rendezvous
score hash(server, unique) among those that are up, so the same unique
always lands on the same server while the set of live servers is the same;
jobs without a unique rotate over the servers that are up.
"""
import hashlib
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import GearmanError

DEFAULT_PORT = 4730
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 10.0


def parse_servers(servers: str | Iterable[str]) -> list[str]:
    """"host:port", "host", "[v6]:port", comma-separated or a list ->
    normalized "host:port" strings (duplicates dropped, order kept)."""
    if isinstance(servers, str):
        items = servers.split(",")
    else:
        try:
            items = list(servers)
        except TypeError:
            raise GearmanError(f"servers must be a string or a list, not {servers!r}")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise GearmanError(f"server address must be a string, not {item!r}")
        address = format_address(*split_address(item))
        if address not in out:
            out.append(address)
    if not out:
        raise GearmanError("no server address given")
    return out


def split_address(text: str) -> tuple[str, int]:
    text = text.strip()
    if not text:
        raise GearmanError("empty server address")
    host, port = text, str(DEFAULT_PORT)
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[1:end], text[end + 1:]
        if end < 0 or rest and not rest.startswith(":"):
            raise GearmanError(f"bad server address {text!r}: expected [v6addr]:port")
        if rest:
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif text.count(":") > 1:
        raise GearmanError(f"bad server address {text!r}: write IPv6 as [addr]:port")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise GearmanError(f"bad server address {text!r}: expected host:port")
    return host, int(port)


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class ServerState:
    address: str
    host: str
    port: int
    down_until: float = 0.0
    backoff: float = 0.0
    last_error: str = ""


class ServerPool:
    """The configured servers and which of them are worth trying now."""

    def __init__(self, servers: str | Iterable[str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.states = {a: ServerState(a, *split_address(a)) for a in parse_servers(servers)}
        self._rotation = itertools.cycle(list(self.states))

    @property
    def addresses(self) -> list[str]:
        return list(self.states)

    def is_up(self, address: str) -> bool:
        return self.states[address].down_until <= self.clock()

    def mark_up(self, address: str) -> None:
        state = self.states[address]
        state.down_until = state.backoff = 0.0

    def mark_down(self, address: str, error: str) -> None:
        """A failed connect or a lost connection: skip it for a backoff that
        doubles from 0.1 s up to 10 s while it keeps failing."""
        state = self.states[address]
        state.backoff = min(BACKOFF_MAX, state.backoff * 2 or BACKOFF_FIRST)
        state.down_until = self.clock() + state.backoff
        state.last_error = error

    def candidates(self, unique: str | None = None,
                   exclude: Iterable[str] = ()) -> list[str]:
        """Servers to try for a job, best first: the ones that are up (by
        rendezvous score for a unique, else rotating), then the ones in
        backoff (soonest back first) as a last resort."""
        names = [a for a in self.states if a not in exclude]
        if unique:
            names.sort(key=lambda a: _score(a, unique), reverse=True)
        else:
            start = next(self._rotation)
            order = list(self.states)
            i = order.index(start)
            rotated = order[i:] + order[:i]
            names = [a for a in rotated if a in names]
        up = [a for a in names if self.is_up(a)]
        down = sorted((a for a in names if not self.is_up(a)),
                      key=lambda a: self.states[a].down_until)
        return up + down

    def describe_failure(self, tried: Iterable[str] | None = None) -> str:
        """One line naming the servers and the last error of each."""
        parts = []
        for address in tried or self.states:
            error = self.states[address].last_error or "not reachable"
            parts.append(f"{address} ({error})")
        return "no job server available: " + "; ".join(parts)


def _score(address: str, unique: str) -> bytes:
    return hashlib.blake2b(f"{address}\0{unique}".encode(), digest_size=8).digest()
