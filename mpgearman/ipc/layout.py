"""The shared-memory layout, mirrored from mpgearman/native/layout.h.

Owns the numbers (offsets, sizes, magic, version) and the arithmetic that
places rings in a segment.  The diagrams and the reasons live in layout.h;
a test checks that every MPG_* #define there equals the constant here with
the MPG_ prefix dropped.  Must not touch memory: shm.py and the ring
implementations do that.
"""

LAYOUT_VERSION = 1
SEG_MAGIC = 0x53474E495247504D      # b"MPGRINGS" read as a little-endian u64
CACHE_LINE = 64

# Segment header.
SEG_MAGIC_OFF = 0
SEG_VERSION_OFF = 8
SEG_RING_COUNT_OFF = 12
SEG_RING_CAPACITY_OFF = 16
SEG_RING_STRIDE_OFF = 24
SEG_RINGS_OFFSET_OFF = 32
SEG_SIZE_OFF = 40
SEG_HEADER_SIZE = 64
SEG_RINGS_PER_ACCEPTOR = 2
SEG_INBOUND_SLOT = 0
SEG_OUTBOUND_SLOT = 1

# Ring control block.
RING_HEAD_OFF = 0
RING_TAIL_OFF = 64
RING_HEAD_CACHE_OFF = 72
RING_SLEEPING_OFF = 128
RING_CAPACITY_OFF = 192
RING_CTRL_SIZE = 256
RING_DATA_OFF = 256
RING_MIN_CAPACITY = 64
RING_MAX_CAPACITY = 1 << 32
RING_MAX_RECORD_SHIFT = 2

# Job status board (a second mapping; see layout.h).
BOARD_MAGIC = 0x44524F4247504D       # b"MPGBORD" read as a little-endian u64
BOARD_VERSION = 1
BOARD_MAGIC_OFF = 0
BOARD_VERSION_OFF = 8
BOARD_COUNT_OFF = 12
BOARD_SLOTS_OFF = 16
BOARD_DONE_OFF = 64
BOARD_DONE_STRIDE = 64
SLOT_SIZE = 32
SLOT_SEQ_OFF = 0
SLOT_RUNNING_OFF = 4
SLOT_HANDLE_OFF = 8
SLOT_NUM_OFF = 16
SLOT_DEN_OFF = 20
SLOT_COLLISIONS_OFF = 24
SLOT_READ_TRIES = 1024             # seqlock attempts before a reader gives up

# Counters for monitoring (a third mapping; see layout.h).
CTR_MAGIC = 0x5352544E4347504D      # b"MPGCNTRS" read as a little-endian u64
CTR_VERSION = 2
CTR_MAGIC_OFF = 0
CTR_VERSION_OFF = 8
CTR_LINES_OFF = 12
CTR_SLOTS_OFF = 16
CTR_NAME_MAX_OFF = 20
CTR_PROCS_OFF = 64
CTR_LINE_SIZE = 64
CTR_SUPERVISOR = 0
CTR_COORDINATOR = 1
CTR_METRICS = 2
CTR_FIRST_ACCEPTOR = 3
CTR_PID_OFF = 0
CTR_A_OFF = 8
CTR_B_OFF = 16
CTR_C_OFF = 24
CTR_D_OFF = 32
CTR_SLOT_SIZE = 512
CTR_SLOT_FIELDS = 46                # name length + 5 counters + 8 gauges + 2 histograms
CTR_HIST_FIELDS = 16                # 15 bucket counts, then the sum in microseconds
CTR_SLOT_NAME_OFF = 384
CTR_NAME_MAX = 128
CTR_OVERFLOW_SLOT = 0

# Records.
REC_HEADER_SIZE = 4
REC_ALIGN = 8
REC_WRAP = 0xFFFFFFFF


def valid_capacity(capacity: int) -> bool:
    return (RING_MIN_CAPACITY <= capacity <= RING_MAX_CAPACITY
            and capacity & (capacity - 1) == 0)


def max_payload(capacity: int) -> int:
    """The largest payload a ring of this capacity accepts."""
    return capacity >> RING_MAX_RECORD_SHIFT


def record_size(payload_len: int) -> int:
    return (REC_HEADER_SIZE + payload_len + REC_ALIGN - 1) & ~(REC_ALIGN - 1)


def ring_stride(capacity: int) -> int:
    return RING_CTRL_SIZE + capacity


def segment_size(ring_count: int, capacity: int) -> int:
    return SEG_HEADER_SIZE + ring_count * ring_stride(capacity)


def ring_offset(index: int, capacity: int) -> int:
    """Byte offset of ring `index`'s control block in the segment."""
    return SEG_HEADER_SIZE + index * ring_stride(capacity)


def inbound_index(acceptor: int) -> int:
    return acceptor * SEG_RINGS_PER_ACCEPTOR + SEG_INBOUND_SLOT


def outbound_index(acceptor: int) -> int:
    return acceptor * SEG_RINGS_PER_ACCEPTOR + SEG_OUTBOUND_SLOT
