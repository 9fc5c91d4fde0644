"""One SPSC ring in the shared segment, as an object.

Owns nothing but the (buffer, offset) pair and the choice of implementation:
every call goes straight to mpgearman.native's ring functions (C or twin),
which own the protocol.  Must not keep state of its own: the ring's whole
state is in shared memory, so any process may wrap the same ring.

Single writer on each side: exactly one process calls push/push_many and
writer_should_ring (the producer), exactly one calls pop_batch, reader_idle
and reader_awake (the consumer).  The consumer's loop, with a Doorbell:

    while running:
        batch = ring.pop_batch()
        if batch:
            handle(batch)
        elif ring.reader_idle():          # announce sleep, re-check
            wait_readable(doorbell)       # poll/epoll, with a timeout
            doorbell.drain()
            ring.reader_awake()

and the producer's, after it published:

    if ring.writer_should_ring():
        doorbell.ring()
"""
import struct

from mpgearman.ipc.layout import RING_CAPACITY_OFF
from mpgearman.native import ring as _impl

_U64 = struct.Struct("@Q")


class Ring:
    __slots__ = ("_mem", "_off", "_impl")

    def __init__(self, mem, off: int, impl=None):
        """mem: the writable shared buffer (the mmap); off: the byte offset
        of the ring's control block.  impl: a ring module, for tests that
        pin C or Python; default is the one mpgearman.native chose."""
        self._mem = mem
        self._off = off
        self._impl = impl or _impl

    @property
    def offset(self) -> int:
        return self._off

    @property
    def buffer(self):
        """The shared buffer the ring lives in (for a native loop that
        works on it directly)."""
        return self._mem

    @property
    def capacity(self) -> int:
        """Data bytes in the ring (records carry 4 bytes of length and are
        padded to 8; one payload may be at most capacity // 4)."""
        return _U64.unpack_from(self._mem, self._off + RING_CAPACITY_OFF)[0]

    def push(self, data) -> bool:
        """Append one record and publish it; False when it does not fit."""
        return self._impl.push(self._mem, self._off, data)

    def push_many(self, items) -> int:
        """Append records in order, stopping at the first that does not fit;
        publish once.  Returns how many were pushed."""
        return self._impl.push_many(self._mem, self._off, items)

    def pop_batch(self, max_items: int = 256) -> list:
        """Up to max_items records, oldest first; publish the head once."""
        return self._impl.pop_batch(self._mem, self._off, max_items)

    def reader_idle(self) -> bool:
        """Consumer: announce sleep.  True: the ring is empty and the
        producer will ring the doorbell; False: records arrived, run on."""
        return self._impl.reader_idle(self._mem, self._off)

    def reader_awake(self) -> None:
        """Consumer: withdraw the sleep announcement after waking."""
        self._impl.reader_awake(self._mem, self._off)

    def writer_should_ring(self) -> bool:
        """Producer, after publishing: True if the consumer sleeps (the flag
        is now cleared) and the doorbell must be rung."""
        return self._impl.writer_should_ring(self._mem, self._off)

    def used(self) -> int:
        """Bytes in flight, record headers, padding and wrap markers
        included."""
        return self._impl.used(self._mem, self._off)

    def reset(self) -> None:
        """Drop everything in flight.  Only while neither side runs (e.g.
        the supervisor, after an acceptor died and before its successor
        starts)."""
        self._impl.reset(self._mem, self._off)

    def __repr__(self) -> str:
        return f"Ring(offset={self._off}, capacity={self.capacity})"
