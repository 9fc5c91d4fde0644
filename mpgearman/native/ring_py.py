"""Pure-Python twin of _ring (ring.c): SPSC byte-record rings in shared memory.

Owns the same protocol as ring.c, function for function: the same arguments,
results, exceptions (type and message) and the same bytes written to the
shared buffer, so either side of a ring may run either implementation.  The
layout is in layout.h / mpgearman/ipc/layout.py.

Must not: do I/O, block, keep state between calls, or take any lock shared
with another process.

Memory ordering, which Python cannot spell:
- Shared fields are read with native-format struct.unpack_from and written
  through a memoryview cast to 'Q' / 'I' (_store64/_store32): CPython copies
  either with one fixed-size memcpy, a single aligned load or store on
  x86-64, so the other process never sees a torn value.  Not with
  struct.pack_into: it zero-fills the field before writing it, and a reader
  would see the zero (a tail of 0 reads as a corrupt ring).  pack_into is
  fine for record headers, which nobody reads before tail is published.
- x86-64 keeps stores in order and loads in order (TSO), which gives the
  release/acquire that ring.c asks for, as long as each step below is a
  separate call into C, as it is.
- The one reordering TSO allows, a later load passing an earlier store, would
  break the sleeping-flag handshake; _fence() stops it with a process-local
  lock, whose acquire is a locked read-modify-write (a full barrier on
  x86-64).  On any other CPU none of this holds: `serve` refuses the twin
  there (mpgearman.native.check_platform) and the C module must be built.
- writer_should_ring reads then clears the flag instead of exchanging it; a
  clear that races with the reader setting the flag again only costs a
  spurious doorbell, never a lost one, because the caller rings right after.
"""
import mmap
import operator
import struct
import threading

from mpgearman.ipc.layout import (
    CACHE_LINE, LAYOUT_VERSION, REC_HEADER_SIZE, REC_WRAP, RING_CAPACITY_OFF,
    RING_CTRL_SIZE, RING_DATA_OFF, RING_HEAD_CACHE_OFF, RING_HEAD_OFF,
    RING_MAX_CAPACITY, RING_MAX_RECORD_SHIFT, RING_MIN_CAPACITY,
    RING_SLEEPING_OFF, RING_TAIL_OFF,
)

__all__ = ["LAYOUT_VERSION", "init", "pop_batch", "push", "push_many",
           "reader_awake", "reader_idle", "reset", "used", "writer_should_ring"]

_U64 = struct.Struct("@Q")
_U32 = struct.Struct("@I")
_M64 = (1 << 64) - 1
_SSIZE_MAX = (1 << 63) - 1
_FENCE = threading.Lock()


def _store64(mem, at: int, value: int) -> None:
    memoryview(mem)[at:at + 8].cast("Q")[0] = value


def _store32(mem, at: int, value: int) -> None:
    memoryview(mem)[at:at + 4].cast("I")[0] = value


def _fence() -> None:
    _FENCE.acquire()
    _FENCE.release()


def _ssize(value) -> int:
    value = operator.index(value)
    if not -_SSIZE_MAX - 1 <= value <= _SSIZE_MAX:
        raise OverflowError("cannot fit 'int' into an index-sized integer")
    return value


def _buffer(mem):
    """mem as something sliced and measured in bytes."""
    view = memoryview(mem)
    if view.readonly:
        raise BufferError("Object is not writable.")
    return view.cast("B")


def _open(mem, off, cap=None):
    """(buffer, off, capacity) after the checks ring.c's check_geometry does.

    The common case (an mmap, a good ring) takes one combined test; anything
    else goes to _geometry_error for the exact message.
    """
    if type(mem) is not mmap.mmap:
        mem = _buffer(mem)
    if type(off) is not int:
        off = _ssize(off)
    size = len(mem)
    if not 0 <= off <= size - RING_CTRL_SIZE or off & (CACHE_LINE - 1):
        _geometry_error(size, off, None)
    if cap is None:
        cap = _U64.unpack_from(mem, off + RING_CAPACITY_OFF)[0]
    if (cap & (cap - 1) or not RING_MIN_CAPACITY <= cap <= RING_MAX_CAPACITY
            or cap > size - off - RING_CTRL_SIZE):
        _geometry_error(size, _ssize(off), cap)
    return mem, off, cap


def _geometry_error(size: int, off: int, cap):
    off = _ssize(off)
    if off < 0 or off % CACHE_LINE:
        raise ValueError(
            f"ring offset {off} is not a non-negative multiple of {CACHE_LINE}")
    if off > size - RING_CTRL_SIZE:
        raise ValueError(f"ring control block at offset {off} does not fit "
                         f"in a {size}-byte buffer")
    if cap < RING_MIN_CAPACITY or cap > RING_MAX_CAPACITY or cap & (cap - 1):
        raise ValueError(
            f"ring capacity {cap} at offset {off} is not a power of two "
            f"in [{RING_MIN_CAPACITY}, {RING_MAX_CAPACITY}]")
    raise ValueError(f"ring at offset {off} with capacity {cap} does not "
                     f"fit in a {size}-byte buffer")


def _corrupt(what: str) -> RuntimeError:
    return RuntimeError(f"ring is corrupt: {what}")


def _payload(item):
    """(object to copy from, length) for any contiguous bytes-like item."""
    if type(item) is bytes:
        return item, len(item)
    view = memoryview(item)
    if not view.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    view = view.cast("B")
    return view, len(view)


def _write(mem, off, cap, tail, head, item):
    """Copy one record in after tail, unpublished.

    Returns (written, tail, head) like ring.c's write_record.
    """
    src, n = _payload(item)
    limit = cap >> RING_MAX_RECORD_SHIFT
    if n > limit:
        raise ValueError(
            f"record of {n} bytes exceeds the ring's limit of {limit}")
    need = (n + REC_HEADER_SIZE + 7) & ~7
    pos = tail & (cap - 1)
    to_end = cap - pos
    total = need if need <= to_end else to_end + need
    if (tail - head) & _M64 > cap - total:
        head = _U64.unpack_from(mem, off + RING_HEAD_OFF)[0]
        _store64(mem, off + RING_HEAD_CACHE_OFF, head)
        if (tail - head) & _M64 > cap:
            raise _corrupt("head is ahead of tail")
        if (tail - head) & _M64 > cap - total:
            return False, tail, head
    data = off + RING_DATA_OFF
    if need > to_end:
        _U32.pack_into(mem, data + pos, REC_WRAP)
        tail = (tail + to_end) & _M64
        pos = 0
    _U32.pack_into(mem, data + pos, n)
    start = data + pos + REC_HEADER_SIZE
    mem[start:start + n] = src
    return True, (tail + need) & _M64, head


def push(mem, off, data) -> bool:
    mem, off, cap = _open(mem, off)
    tail = _U64.unpack_from(mem, off + RING_TAIL_OFF)[0]
    head = _U64.unpack_from(mem, off + RING_HEAD_CACHE_OFF)[0]
    written, tail, _ = _write(mem, off, cap, tail, head, data)
    if written:
        _store64(mem, off + RING_TAIL_OFF, tail)
    return written


def push_many(mem, off, items) -> int:
    if not isinstance(items, (list, tuple)):
        try:
            items = list(items)
        except TypeError:
            raise TypeError("push_many needs a sequence") from None
    mem, off, cap = _open(mem, off)
    tail = _U64.unpack_from(mem, off + RING_TAIL_OFF)[0]
    head = _U64.unpack_from(mem, off + RING_HEAD_CACHE_OFF)[0]
    count = 0
    for item in items:
        # An exception leaves tail unpublished: the ring is as it was.
        written, tail, head = _write(mem, off, cap, tail, head, item)
        if not written:
            break
        count += 1
    if count:
        _store64(mem, off + RING_TAIL_OFF, tail)
    return count


def pop_batch(mem, off, max_items) -> list:
    max_items = _ssize(max_items)
    if max_items < 0:
        raise ValueError("max_items must be >= 0")
    mem, off, cap = _open(mem, off)
    head = start = _U64.unpack_from(mem, off + RING_HEAD_OFF)[0]
    tail = _U64.unpack_from(mem, off + RING_TAIL_OFF)[0]
    if (tail - head) & _M64 > cap:
        raise _corrupt("tail is more than capacity ahead of head")
    mask, limit, data = cap - 1, cap >> RING_MAX_RECORD_SHIFT, off + RING_DATA_OFF
    out = []
    while head != tail and len(out) < max_items:
        pos = head & mask
        avail = (tail - head) & _M64
        n = _U32.unpack_from(mem, data + pos)[0]
        if n == REC_WRAP:
            if cap - pos > avail:
                raise _corrupt("wrap marker past tail")
            head = (head + cap - pos) & _M64
            continue
        size = (n + REC_HEADER_SIZE + 7) & ~7
        if n > limit or size > cap - pos or size > avail:
            raise _corrupt("record length out of bounds")
        first = data + pos + REC_HEADER_SIZE
        out.append(bytes(mem[first:first + n]))
        head = (head + size) & _M64
    if head != start:
        _store64(mem, off + RING_HEAD_OFF, head)
    return out


def reader_idle(mem, off) -> bool:
    mem, off, _ = _open(mem, off)
    _store32(mem, off + RING_SLEEPING_OFF, 1)
    _fence()
    tail = _U64.unpack_from(mem, off + RING_TAIL_OFF)[0]
    head = _U64.unpack_from(mem, off + RING_HEAD_OFF)[0]
    if tail != head:
        _store32(mem, off + RING_SLEEPING_OFF, 0)
        return False
    return True


def reader_awake(mem, off) -> None:
    mem, off, _ = _open(mem, off)
    _store32(mem, off + RING_SLEEPING_OFF, 0)


def writer_should_ring(mem, off) -> bool:
    mem, off, _ = _open(mem, off)
    _fence()
    if _U32.unpack_from(mem, off + RING_SLEEPING_OFF)[0] == 0:
        return False
    _store32(mem, off + RING_SLEEPING_OFF, 0)
    return True


def used(mem, off) -> int:
    mem, off, _ = _open(mem, off)
    head = _U64.unpack_from(mem, off + RING_HEAD_OFF)[0]
    tail = _U64.unpack_from(mem, off + RING_TAIL_OFF)[0]
    return (tail - head) & _M64


def reset(mem, off) -> None:
    mem, off, _ = _open(mem, off)
    for field in (RING_HEAD_OFF, RING_TAIL_OFF, RING_HEAD_CACHE_OFF):
        _store64(mem, off + field, 0)
    _store32(mem, off + RING_SLEEPING_OFF, 0)
    _fence()


def init(mem, off, capacity) -> None:
    capacity = _ssize(capacity) & _M64
    mem, off, cap = _open(mem, off, capacity)
    # Only the control block (see ring.c init): the data area stays untouched.
    mem[off:off + RING_CTRL_SIZE] = bytes(RING_CTRL_SIZE)
    _store64(mem, off + RING_CAPACITY_OFF, cap)
    _fence()
