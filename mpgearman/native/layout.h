/* The shared-memory layout between the coordinator and the acceptors.
 *
 * Defined once here and mirrored in mpgearman/ipc/layout.py; a test parses
 * every MPG_* #define below and compares it with the Python value, so keep
 * each one a plain integer literal on one line.  Any change to an offset or
 * a meaning bumps MPG_LAYOUT_VERSION (checked on attach).
 *
 * All integers are native-endian: the segment never leaves the machine.
 *
 * Segment: one memfd mapped MAP_SHARED by the supervisor before it forks.
 *
 *   0        64            64+S          64+2S                 64+2N*S
 *   +--------+-------------+-------------+-----+---------------+
 *   | header | ring 0      | ring 1      | ... | ring 2N-1     |
 *   |        | inbound(0)  | outbound(0) |     | outbound(N-1) |
 *   +--------+-------------+-------------+-----+---------------+
 *   S = ring stride = MPG_RING_CTRL_SIZE + capacity; N = acceptors.
 *   inbound(i)  = ring 2i   : acceptor i writes, the coordinator reads.
 *   outbound(i) = ring 2i+1 : the coordinator writes, acceptor i reads.
 *
 * Header (written once by the supervisor, read-only afterwards):
 *
 *    0  u64 magic            "MPGRINGS" in memory on little-endian
 *    8  u32 layout version
 *   12  u32 ring count       2 per acceptor
 *   16  u64 ring capacity    data bytes per ring, a power of two
 *   24  u64 ring stride      control block + capacity
 *   32  u64 rings offset     where ring 0 starts
 *   40  u64 segment size     bytes in the whole mapping
 *   48  reserved, zero, up to 64
 *
 * Ring: a control block of four cache lines, then the data.  Each line has
 * one writer, so the producer and the consumer never write the same line.
 *
 *     0 +------------------------------+  line 0, written by the consumer
 *       | u64 head                     |  bytes consumed, ever
 *    64 +------------------------------+  line 1, written by the producer
 *       | u64 tail                     |  bytes published, ever
 *    72 | u64 head cache               |  producer's last look at head
 *   128 +------------------------------+  line 2, the doorbell handshake
 *       | u32 reader_sleeping          |  set by the consumer before it
 *       |                              |  blocks, exchanged to 0 by the
 *       |                              |  producer that rings the doorbell
 *   192 +------------------------------+  line 3, read-only after init
 *       | u64 capacity                 |
 *   256 +------------------------------+
 *       | data[capacity]               |
 *       +------------------------------+
 *
 * head and tail only grow; position = counter & (capacity - 1) and
 * tail - head = bytes in flight (<= capacity).  The producer publishes tail
 * with release after writing records; the consumer publishes head with
 * release after copying them out.  The head cache is producer-private: it
 * only saves a read of the consumer's line while the ring has room.
 *
 * Record, 8-byte aligned, never split by the end of the data area:
 *
 *   +---------+--------------+--------+
 *   | u32 len | payload[len] | pad->8 |    size = (4 + len + 7) & ~7
 *   +---------+--------------+--------+
 *
 * A record that would not fit before the end is preceded by a wrap marker
 * (len == MPG_REC_WRAP) filling the rest of the data area; marker and record
 * are published together.  A payload is at most capacity >> 2 bytes, so a
 * record always fits in an empty ring wherever head stands.
 *
 * Doorbell handshake (Dekker-style, both fences seq_cst):
 *   consumer: reader_sleeping = 1; fence; if tail != head: clear, run on.
 *   producer: publish tail; fence; if exchange(reader_sleeping, 0): ring.
 * At least one side sees the other's store, so no wake-up is lost.
 */
#ifndef MPGEARMAN_LAYOUT_H
#define MPGEARMAN_LAYOUT_H

#define MPG_LAYOUT_VERSION 1
#define MPG_SEG_MAGIC 0x53474e495247504dULL
#define MPG_CACHE_LINE 64

/* Segment header. */
#define MPG_SEG_MAGIC_OFF 0
#define MPG_SEG_VERSION_OFF 8
#define MPG_SEG_RING_COUNT_OFF 12
#define MPG_SEG_RING_CAPACITY_OFF 16
#define MPG_SEG_RING_STRIDE_OFF 24
#define MPG_SEG_RINGS_OFFSET_OFF 32
#define MPG_SEG_SIZE_OFF 40
#define MPG_SEG_HEADER_SIZE 64
#define MPG_SEG_RINGS_PER_ACCEPTOR 2
#define MPG_SEG_INBOUND_SLOT 0
#define MPG_SEG_OUTBOUND_SLOT 1

/* Ring control block. */
#define MPG_RING_HEAD_OFF 0
#define MPG_RING_TAIL_OFF 64
#define MPG_RING_HEAD_CACHE_OFF 72
#define MPG_RING_SLEEPING_OFF 128
#define MPG_RING_CAPACITY_OFF 192
#define MPG_RING_CTRL_SIZE 256
#define MPG_RING_DATA_OFF 256
#define MPG_RING_MIN_CAPACITY 64
#define MPG_RING_MAX_CAPACITY 4294967296ULL
#define MPG_RING_MAX_RECORD_SHIFT 2

/* Records. */
#define MPG_REC_HEADER_SIZE 4
#define MPG_REC_ALIGN 8
#define MPG_REC_WRAP 0xffffffffU

/*
 * The job status board: a second mapping, written only by the coordinator,
 * read by the acceptors to answer GET_STATUS without a trip to the
 * coordinator.
 *
 *   +----------------------+  0
 *   | magic u64            |
 *   | version u32 | n u32  |  n = acceptors
 *   | slot count u64       |
 *   +----------------------+  MPG_BOARD_DONE_OFF
 *   | done[0] u64 | pad    |  records of inbound ring i the coordinator has
 *   | done[1] u64 | pad    |  handled and whose answers it has published
 *   | ...                  |  (one cache line each)
 *   +----------------------+  MPG_BOARD_DONE_OFF + n * 64
 *   | slot[0] ... slot[S-1]|  S a power of two; job handle number h lives
 *   +----------------------+  in slot h & (S-1)
 *
 * slot (32 bytes):
 *   +------+---------+-----------+-----+-----+------------+-----+
 *   | seq  | running | handle no | num | den | collisions | pad |
 *   | u32  | u32     | u64       | u32 | u32 | u32        | u32 |
 *   +------+---------+-----------+-----+-----+------------+-----+
 * seq is a seqlock: odd while the coordinator rewrites the slot; a reader
 * retries until it sees the same even value before and after its copy, at
 * most MPG_SLOT_READ_TRIES times: a writer that died mid-update leaves seq
 * odd for good, and then the reader gives up (and asks the coordinator).
 * handle no 0 = empty.  collisions counts live jobs whose slot was taken
 * when they were created: while it is non-zero a miss is not an answer.
 */
#define MPG_BOARD_MAGIC 0x44524f4247504dULL
#define MPG_BOARD_VERSION 1
#define MPG_BOARD_MAGIC_OFF 0
#define MPG_BOARD_VERSION_OFF 8
#define MPG_BOARD_COUNT_OFF 12
#define MPG_BOARD_SLOTS_OFF 16
#define MPG_BOARD_DONE_OFF 64
#define MPG_BOARD_DONE_STRIDE 64
#define MPG_SLOT_SIZE 32
#define MPG_SLOT_SEQ_OFF 0
#define MPG_SLOT_RUNNING_OFF 4
#define MPG_SLOT_HANDLE_OFF 8
#define MPG_SLOT_NUM_OFF 16
#define MPG_SLOT_DEN_OFF 20
#define MPG_SLOT_COLLISIONS_OFF 24
#define MPG_SLOT_READ_TRIES 1024

/*
 * The counters: a third mapping, for monitoring only (`mpgearman stat`,
 * GET /metrics).  Every 64-byte process line and the function slots have
 * exactly one writer each; readers (the metrics process, the coordinator's
 * `stats` admin command) add them up when asked.  Fields are u64, each
 * written by one aligned 8-byte store: a reader may see one field newer
 * than its neighbour, never half a field.
 *
 *   +----------------------------------+  0
 *   | magic u64                        |
 *   | version u32 | process lines u32  |  lines = MPG_CTR_FIRST_ACCEPTOR + acceptors
 *   | function slots u32 | name max u32|
 *   +----------------------------------+  MPG_CTR_PROCS_OFF
 *   | line[0]  supervisor              |  each line written by the process it
 *   | line[1]  coordinator             |  describes (pid set at its start)
 *   | line[2]  metrics                 |
 *   | line[3+i] acceptor i             |
 *   +----------------------------------+  MPG_CTR_PROCS_OFF + lines * 64
 *   | slot[0]  the overflow bucket     |  function slots, written by the
 *   | slot[1] ... slot[F-1]            |  coordinator only
 *   +----------------------------------+
 *
 * process line: u64 pid, then u64 figures A B C D:
 *   acceptor:    A connections accepted, B connections open, C bytes spooled,
 *                D bytes of the bodies being written to the spool now
 *   coordinator: A function slots in use (stored after the slot's name, so
 *                a reader that sees the count sees the name), B functions
 *                counted in the overflow bucket, C bytes of the spooled
 *                payloads of live jobs
 * C of the coordinator plus D of the acceptors is what --max-spool-bytes
 * bounds (the one use of these figures beyond monitoring).
 *
 * function slot (MPG_CTR_SLOT_SIZE bytes):
 *   +--------+-----------+-----------+--------+-----------+----------+
 *   | namelen| submitted | completed | failed | exceptions| requeued |  counters
 *   +--------+-----------+-----------+--------+-----------+----------+
 *   | queued high | queued normal | queued low | running | workers   |  gauges
 *   +-------------+---------------+------------+---------+-----------+
 *   | busy workers | idle workers | oldest queued (unix time, us; 0 none) |
 *   +--------------+--------------+---------------------------------------+
 *   | wait histogram: MPG_CTR_HIST_FIELDS u64 = 15 bucket counts (not   |
 *   |   cumulative; bounds in coordinator/queues.py), sum in us          |
 *   | run histogram: the same                                           |
 *   +--------------------------------------------------------------------+
 *   | pad up to MPG_CTR_SLOT_NAME_OFF | name[MPG_CTR_NAME_MAX]         |
 * Slot 0 is the overflow bucket: the functions that found the table full,
 * or whose name is longer than the name field, summed (its oldest queued
 * time is 0: times do not add up).
 */
#define MPG_CTR_MAGIC 0x5352544e4347504dULL
#define MPG_CTR_VERSION 2
#define MPG_CTR_MAGIC_OFF 0
#define MPG_CTR_VERSION_OFF 8
#define MPG_CTR_LINES_OFF 12
#define MPG_CTR_SLOTS_OFF 16
#define MPG_CTR_NAME_MAX_OFF 20
#define MPG_CTR_PROCS_OFF 64
#define MPG_CTR_LINE_SIZE 64
#define MPG_CTR_SUPERVISOR 0
#define MPG_CTR_COORDINATOR 1
#define MPG_CTR_METRICS 2
#define MPG_CTR_FIRST_ACCEPTOR 3
#define MPG_CTR_PID_OFF 0
#define MPG_CTR_A_OFF 8
#define MPG_CTR_B_OFF 16
#define MPG_CTR_C_OFF 24
#define MPG_CTR_D_OFF 32
#define MPG_CTR_SLOT_SIZE 512
#define MPG_CTR_SLOT_FIELDS 46
#define MPG_CTR_HIST_FIELDS 16
#define MPG_CTR_SLOT_NAME_OFF 384
#define MPG_CTR_NAME_MAX 128
#define MPG_CTR_OVERFLOW_SLOT 0

#endif
