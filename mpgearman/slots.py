"""Acceptor slots: which acceptor runs where, which waits to be restarted,
and which set serves.

A slot is one ring pair in the shared segment, one doorbell and one line
of the status board; an acceptor is started into a slot. There are 2N
slots for N acceptors, so a reload can start a fresh set beside the
serving one and retire the old set only once the new one is ready:

  slots   [0 .. N-1]   [N .. 2N-1]
  roll 1:  retired  ->  serving        roll 2: the other way round

A retired slot is free again once the coordinator has cleared its rings
("reset"). A dead acceptor's slot is restarted at once, unless the
acceptor died soon after its start: then after a delay that doubles each
time, so a crash loop costs neither CPU nor a flood of logs.

Owns the bookkeeping only. Must not fork, signal or talk to processes:
the supervisor does what this decides.
"""
import logging
import time

logger = logging.getLogger(__name__)

MAX_SLOTS = 256           # slots a connection id can name (8 bits)
CRASH_WINDOW = 5.0        # an acceptor that dies sooner than this after its start
MAX_BACKOFF = 30.0        # ... is restarted after a delay doubling up to this


class AcceptorSlots:
    def __init__(self, n: int, clock=time.monotonic):
        self.n = n
        self.count = 2 * n if 2 * n <= MAX_SLOTS else n
        self.clock = clock
        self.pids = [0] * self.count
        self.gens = [0] * self.count          # generation of the slot's rings
        self.started_at = [0.0] * self.count
        self.backoff = [0.0] * self.count
        self.restarts = {}        # slot -> monotonic time to start it again
        self.active = list(range(n))          # the serving set
        self.incoming = []        # a new set, until all of it is ready
        self.roll_started = 0.0
        self.retiring = set()     # an old set, until its rings are cleared
        self.ready = set()

    # -- one acceptor -------------------------------------------------------------

    def started(self, i: int, pid: int) -> None:
        self.pids[i] = pid
        self.started_at[i] = self.clock()

    def now_ready(self, i: int) -> bool:
        """Slot i's acceptor is ready; True when that completes a roll."""
        self.ready.add(i)
        return bool(self.incoming) and self.ready.issuperset(self.incoming)

    def exited(self, i: int) -> bool:
        """Slot i's acceptor is gone; True when it had been retired."""
        self.pids[i] = 0
        self.ready.discard(i)
        return i in self.retiring

    def reset(self, i: int, gen: int) -> bool:
        """The coordinator cleared slot i's rings. True: start it again
        (scheduled, see due()); False: a retired slot, free now."""
        self.gens[i] = gen
        if i in self.retiring:
            self.retiring.discard(i)
            return False
        lived = self.clock() - self.started_at[i]
        if lived < CRASH_WINDOW:
            self.backoff[i] = min(max(self.backoff[i] * 2, 0.5), MAX_BACKOFF)
            logger.error("acceptor %d died %.1f s after its start; next start in %.1f s",
                         i, lived, self.backoff[i])
        else:
            self.backoff[i] = 0.0
        self.restarts[i] = self.clock() + self.backoff[i]
        return True

    def due(self):
        """(slots to start now, seconds until the next one is due)."""
        now, wait, start = self.clock(), 1.0, []
        for i, when in list(self.restarts.items()):
            if when <= now:
                del self.restarts[i]
                start.append(i)
            else:
                wait = min(wait, when - now)
        return start, wait

    # -- the serving set ----------------------------------------------------------

    def all_ready(self) -> bool:
        return self.ready.issuperset(self.active)

    def up(self) -> int:
        """Acceptors of the serving set that are ready."""
        return len(self.ready.intersection(self.active))

    @property
    def rolling(self) -> bool:
        return bool(self.incoming or self.retiring)

    def begin_roll(self) -> list:
        """The slots to start a new set in; [] when there are no spare
        slots (more than MAX_SLOTS/2 acceptors)."""
        self.incoming = [i for i in range(self.count) if i not in self.active]
        self.roll_started = self.clock()
        for i in self.incoming:
            self.restarts.pop(i, None)
        return self.incoming

    def roll_overdue(self, limit: float) -> bool:
        return bool(self.incoming) and self.clock() - self.roll_started > limit

    def finish_roll(self):
        """The new set serves; returns (the old set, pids to stop)."""
        old, self.active, self.incoming = self.active, self.incoming, []
        return old, self._retire(old)

    def abort_roll(self) -> list:
        """The new set never got ready: the old one keeps serving; returns
        the pids of the new set to stop."""
        new, self.incoming = self.incoming, []
        return self._retire(new)

    def _retire(self, slots) -> list:
        stop = []
        for i in slots:
            if self.restarts.pop(i, None) is not None:
                continue            # dead and its rings already cleared: free
            self.retiring.add(i)
            self.ready.discard(i)
            if self.pids[i]:
                stop.append(self.pids[i])
        return stop
