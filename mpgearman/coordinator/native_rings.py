"""The coordinator loop's per-packet path with the rings served in C.

When the Core is the C one (it carries the extension object as `c`),
PACKET records never become Python objects: `native.serve` pops each
inbound ring, applies PACKET records to the C core with their arguments
pointing into the ring, and stops at the first record of another kind
(CONNECT, SPOOLED, ADMIN, CLOSED, RELAY), which the loop's Python handlers
take, in order. Output made in Python (relays, admin answers, spooled
replies, closes) joins the C core's output queue in order, and
`native.route` / `native.publish` do what loop._route and loop._publish do
(merged SEND records, pieces, pending records per acceptor, dead
generations dropped). Owns nothing but that glue: the loop keeps its
counters and its handlers.
"""
import logging
import os

from .actions import Close, Send, SendSpooled

log = logging.getLogger(__name__)

SEND, CLOSE, SPOOLED = 0, 1, 2    # kinds of native.put
ROUNDS = 16        # per slot and turn, as the Python drain
BUDGET = 256       # records per serve call


def native_of(core):
    """The C core behind `core` when it serves the rings in C: whenever the
    C core runs, unless MPGEARMAN_CORE_RINGS=python keeps the per-packet
    path in Python (loop._drain, _route, _publish), else None."""
    if os.environ.get("MPGEARMAN_CORE_RINGS") == "python":
        return None
    native = getattr(core, "c", None)
    return native if native is not None and hasattr(native, "serve") else None


class NativeRings:
    def __init__(self, loop, native):
        self.loop, self.native = loop, native
        self.waiting = ()         # slots with records waiting for ring space
        rings_in, rings_out = loop.rings_in, loop.rings_out
        if rings_in:
            native.attach_rings(rings_in[0].buffer, [r.offset for r in rings_in],
                                [r.offset for r in rings_out], loop.merge_limit, loop.piece)

    def drain(self) -> None:
        loop, serve = self.loop, self.native.serve
        for i, _ in loop.live:
            for _ in range(ROUNDS):
                n, rec, bad = serve(i, BUDGET)
                loop.consumed[i] += n
                if bad is not None:
                    count, conn, ptype = bad
                    log.error("%d request(s) could not be handled (malformed or out of "
                              "memory), the last of type %d from connection %#x; each "
                              "answered ERROR and its connection closed", count, ptype, conn)
                if rec is not None:
                    loop._apply(i, [rec], 0)
                    self.spill()
                elif n < BUDGET:
                    break

    def tick(self):
        """The Core's timers; their output stays in the C queue (the Python
        side's tick would turn all of it into actions)."""
        return self.native.tick()

    def spill(self) -> None:
        """The Python side's output into the C output queue, in order."""
        out = self.loop.core.out
        if not out:
            return
        put = self.native.put
        for action in out:
            kind = type(action)
            if kind is Send:
                put(action[0], bytes(action[1]), SEND)
            elif kind is Close:
                put(action[0], b"", CLOSE)
            elif kind is SendSpooled:
                # Kept as the C core keeps its own spooled sends, so that a
                # Python-side call's drain before the next route gives it
                # back as a SendSpooled (never as a Close).
                put(action[0], bytes(action.head), SPOOLED, action.ref.name, action.ref.size)
        out.clear()

    def route(self) -> None:
        """Spool names of a dead acceptor's output are released by the C
        core through the Core's release callback."""
        self.spill()
        self.native.route()

    def publish(self) -> None:
        loop = self.loop
        bells, self.waiting = self.native.publish()
        for i in bells:
            loop.acceptor_bells[i].ring()
        for i, _ in loop.live:
            if i not in self.waiting and loop.done[i] != loop.consumed[i]:
                loop.done[i] = loop.consumed[i]
                loop.board.set_done(i, loop.done[i])

    def close(self) -> None:
        self.native.detach_rings()

    def take_pending(self, i: int) -> list:
        return self.native.take_pending(i)

    def set_gen(self, i: int, gen: int) -> None:
        self.native.set_gen(i, gen)
