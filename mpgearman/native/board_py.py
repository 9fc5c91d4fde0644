"""Pure-Python twin of _board (board.c): the job status board's seqlock
slots and u64 counters, same functions, same results.

Shared fields are read and written through memoryview casts, which are
single loads and stores of the whole field (struct.pack_into may write a
field in pieces). Ordering relies on x86-64's total store order: on any
other CPU `serve` refuses this twin (mpgearman.native.check_platform) and
the C module must be built.
"""
from ..ipc import layout as L

LAYOUT_VERSION = L.BOARD_VERSION


def _fields(mem, off, size, writable):
    if off < 0 or off % 8 or off > len(mem) - size:
        raise ValueError(f"offset {off} is not an aligned place for {size} bytes "
                         f"in a {len(mem)}-byte buffer")
    view = memoryview(mem)[off:off + size]
    if writable and view.readonly:
        raise TypeError("buffer is read-only")
    return view.cast("I"), view.cast("Q")


def write(mem, off, handle_no, running, num, den):
    u32, u64 = _fields(mem, off, L.SLOT_SIZE, True)
    seq = u32[L.SLOT_SEQ_OFF // 4]
    u32[L.SLOT_SEQ_OFF // 4] = (seq + 1) & 0xFFFFFFFF
    u32[L.SLOT_RUNNING_OFF // 4] = running
    u64[L.SLOT_HANDLE_OFF // 8] = handle_no
    u32[L.SLOT_NUM_OFF // 4] = num
    u32[L.SLOT_DEN_OFF // 4] = den
    u32[L.SLOT_SEQ_OFF // 4] = (seq + 2) & 0xFFFFFFFF


def read(mem, off):
    """The slot's fields, consistent; None when no consistent copy came in
    SLOT_READ_TRIES tries (a writer stuck or dead halfway through)."""
    u32, u64 = _fields(mem, off, L.SLOT_SIZE, False)
    for _ in range(L.SLOT_READ_TRIES):
        seq = u32[L.SLOT_SEQ_OFF // 4]
        if seq & 1:
            continue
        fields = (u64[L.SLOT_HANDLE_OFF // 8], u32[L.SLOT_RUNNING_OFF // 4],
                  u32[L.SLOT_NUM_OFF // 4], u32[L.SLOT_DEN_OFF // 4],
                  u32[L.SLOT_COLLISIONS_OFF // 4])
        if u32[L.SLOT_SEQ_OFF // 4] == seq:
            return fields
    return None


def set_collisions(mem, off, value):
    u32, _ = _fields(mem, off, L.SLOT_SIZE, True)
    u32[L.SLOT_COLLISIONS_OFF // 4] = value


def load(mem, off):
    return _fields(mem, off, 8, False)[1][0]


def store(mem, off, value):
    _fields(mem, off, 8, True)[1][0] = value
