"""Unfinished requests must finish: which connections are in the middle of
a request, and by when each must have moved on.

An idle connection is never timed out: workers sleep for hours between
jobs, and clients keep connections open. A connection whose decoder holds
part of a request (a packet header, an admin line, a body) must, within
`limit` seconds, finish it or deliver at least PROGRESS more of its bytes;
each time it does, it has `limit` seconds again. A request's clock starts
with the read that brought its first byte. So a header or an admin line
(a few bytes) must be complete within the limit, and a body must keep
coming at PROGRESS bytes per limit at least (1 KiB/s with the defaults),
however big it is: one byte every three seconds holds nothing for long,
and neither does a 4 GiB header followed by nothing.

Owns the bookkeeping only (the `due` and `got` fields of connections, the
set of those being timed); the acceptor reads sockets, keeps the clock,
and cuts what `expired` returns.
"""
PROGRESS = 64 * 1024      # bytes of an unfinished request that earn another `limit`


class Deadlines:
    def __init__(self, limit: float):
        self.limit = limit        # seconds; 0 = never time out
        self.open = set()         # connections in the middle of a request

    def after_read(self, conn, now: float, n: int, finished: bool) -> None:
        """`conn` read `n` bytes and its decoder is not idle; `finished`:
        the read completed at least one request, so what is held now
        belongs to a request that began in it."""
        if not self.limit:
            return
        if finished or not conn.due:
            self.start(conn, now)
            return
        conn.got += n
        if conn.got >= PROGRESS:
            self.start(conn, now)

    def start(self, conn, now: float) -> None:
        """A request began (or made enough progress): `limit` from now."""
        if self.limit:
            conn.due = now + self.limit
            conn.got = 0
            self.open.add(conn)

    def done(self, conn) -> None:
        """`conn` is between requests, or no longer read."""
        if conn.due:
            conn.due = 0.0
            self.open.discard(conn)

    def restart(self, conns, now: float) -> None:
        """These were not read for a while through no fault of theirs
        (back-pressure): their clocks start again."""
        for conn in conns:
            if conn.due:
                self.start(conn, now)

    def expired(self, now: float, paused) -> list:
        """The connections past their deadline, except those in `paused`
        (not polled for input: they cannot make progress)."""
        return [c for c in self.open if c.due <= now and c not in paused]
