"""The shared-memory segment that carries the rings between processes.

Owns creating the segment (an anonymous memfd mapped MAP_SHARED, so the
supervisor makes it before forking and every child inherits the mapping),
writing and checking its header, and handing out Ring objects for
inbound(i) / outbound(i).  Nothing has a name in /dev/shm: the fd is closed
once mapped, and the memory goes away with the last process that maps it.

Must not: run the ring protocol (ring.py / mpgearman.native do), or attach
by name: a process that did not inherit the mapping has no way in, on
purpose.
"""
import mmap
import os
import struct

from mpgearman.ipc import layout as L
from mpgearman.ipc.ring import Ring
from mpgearman.native import ring as _impl

_U64 = struct.Struct("@Q")
_U32 = struct.Struct("@I")


def map_shared(name: str, size: int) -> mmap.mmap:
    """Zeroed memory that forked children share: an anonymous memfd mapped
    MAP_SHARED, its fd closed at once (nothing to find in /dev/shm, nothing
    left behind)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        return mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


class SegmentError(RuntimeError):
    """The memory is not a segment of the layout this code speaks."""


class Segment:
    """Header fields are read from memory on each access: the segment,
    not this object, is the source of truth."""

    __slots__ = ("_mem",)

    def __init__(self, mem):
        """Wrap an existing segment buffer (inherited mmap, or any writable
        buffer in tests).  Call check() before trusting it."""
        self._mem = mem

    @classmethod
    def create(cls, n_rings_pairs: int, ring_size: int) -> "Segment":
        """A fresh segment with one inbound and one outbound ring of
        ring_size data bytes per acceptor, all empty."""
        if n_rings_pairs < 1:
            raise ValueError(f"need at least one ring pair, not {n_rings_pairs}")
        if not L.valid_capacity(ring_size):
            raise ValueError(
                f"ring size {ring_size} is not a power of two in "
                f"[{L.RING_MIN_CAPACITY}, {L.RING_MAX_CAPACITY}]")
        count = n_rings_pairs * L.SEG_RINGS_PER_ACCEPTOR
        size = L.segment_size(count, ring_size)
        seg = cls(map_shared("mpgearman-rings", size))
        mem = seg.buffer
        seg._write_header(count, ring_size, size)
        for index in range(count):
            _impl.init(mem, L.ring_offset(index, ring_size), ring_size)
        return seg

    def _write_header(self, count: int, capacity: int, size: int) -> None:
        mem = self._mem
        _U32.pack_into(mem, L.SEG_VERSION_OFF, L.LAYOUT_VERSION)
        _U32.pack_into(mem, L.SEG_RING_COUNT_OFF, count)
        _U64.pack_into(mem, L.SEG_RING_CAPACITY_OFF, capacity)
        _U64.pack_into(mem, L.SEG_RING_STRIDE_OFF, L.ring_stride(capacity))
        _U64.pack_into(mem, L.SEG_RINGS_OFFSET_OFF, L.SEG_HEADER_SIZE)
        _U64.pack_into(mem, L.SEG_SIZE_OFF, size)
        # Magic last: a half-written header never looks valid.
        _U64.pack_into(mem, L.SEG_MAGIC_OFF, L.SEG_MAGIC)

    # -- header fields -------------------------------------------------------

    @property
    def buffer(self):
        return self._mem

    @property
    def ring_count(self) -> int:
        return _U32.unpack_from(self._mem, L.SEG_RING_COUNT_OFF)[0]

    @property
    def pairs(self) -> int:
        """How many acceptors the segment has rings for."""
        return self.ring_count // L.SEG_RINGS_PER_ACCEPTOR

    @property
    def ring_capacity(self) -> int:
        return _U64.unpack_from(self._mem, L.SEG_RING_CAPACITY_OFF)[0]

    @property
    def size(self) -> int:
        return _U64.unpack_from(self._mem, L.SEG_SIZE_OFF)[0]

    def check(self) -> "Segment":
        """Raise SegmentError unless the header and every ring match this
        build's layout.  Returns self."""
        mem = self._mem
        have = len(memoryview(mem).cast("B"))
        if have < L.SEG_HEADER_SIZE:
            raise SegmentError(f"segment of {have} bytes has no room for a header")
        magic = _U64.unpack_from(mem, L.SEG_MAGIC_OFF)[0]
        if magic != L.SEG_MAGIC:
            raise SegmentError(f"not an mpgearman ring segment: magic "
                               f"{magic:#018x}, expected {L.SEG_MAGIC:#018x}")
        version = _U32.unpack_from(mem, L.SEG_VERSION_OFF)[0]
        if version != L.LAYOUT_VERSION:
            raise SegmentError(f"segment has layout version {version}, this "
                               f"build speaks {L.LAYOUT_VERSION}")
        native = getattr(_impl, "LAYOUT_VERSION", None)
        if native != L.LAYOUT_VERSION:
            raise SegmentError(f"ring module {_impl.__name__} was built for "
                               f"layout {native}, layout.py is "
                               f"{L.LAYOUT_VERSION}: rebuild the extension")
        self._check_geometry(have)
        return self

    def _check_geometry(self, have: int) -> None:
        mem, count, cap = self._mem, self.ring_count, self.ring_capacity
        if count == 0 or count % L.SEG_RINGS_PER_ACCEPTOR:
            raise SegmentError(f"ring count {count} is not a positive "
                               f"multiple of {L.SEG_RINGS_PER_ACCEPTOR}")
        if not L.valid_capacity(cap):
            raise SegmentError(f"ring capacity {cap} is not a power of two in "
                               f"[{L.RING_MIN_CAPACITY}, {L.RING_MAX_CAPACITY}]")
        fields = {
            "ring stride": (L.SEG_RING_STRIDE_OFF, L.ring_stride(cap)),
            "rings offset": (L.SEG_RINGS_OFFSET_OFF, L.SEG_HEADER_SIZE),
            "segment size": (L.SEG_SIZE_OFF, L.segment_size(count, cap)),
        }
        for name, (offset, expected) in fields.items():
            value = _U64.unpack_from(mem, offset)[0]
            if value != expected:
                raise SegmentError(f"{name} is {value}, expected {expected} "
                                   f"for {count} rings of {cap} bytes")
        if have < self.size:
            raise SegmentError(f"segment header says {self.size} bytes, "
                               f"only {have} are mapped")
        for index in range(count):
            off = L.ring_offset(index, cap)
            ring_cap = _U64.unpack_from(mem, off + L.RING_CAPACITY_OFF)[0]
            if ring_cap != cap:
                raise SegmentError(f"ring {index} has capacity {ring_cap}, "
                                   f"the header says {cap}")

    # -- rings ---------------------------------------------------------------

    def _ring(self, index: int, acceptor: int, impl) -> Ring:
        if not 0 <= acceptor < self.pairs:
            raise IndexError(f"acceptor {acceptor} out of range "
                             f"0..{self.pairs - 1}")
        return Ring(self._mem, L.ring_offset(index, self.ring_capacity), impl)

    def inbound(self, i: int, impl=None) -> Ring:
        """Acceptor i -> coordinator."""
        return self._ring(L.inbound_index(i), i, impl)

    def outbound(self, i: int, impl=None) -> Ring:
        """Coordinator -> acceptor i."""
        return self._ring(L.outbound_index(i), i, impl)

    def close(self) -> None:
        """Unmap in this process (others keep their mappings)."""
        close = getattr(self._mem, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> "Segment":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
