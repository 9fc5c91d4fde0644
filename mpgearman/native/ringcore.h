/* The SPSC ring protocol of layout.h as plain C, for C callers that own a
 * ring's producer or consumer side without going through Python (the
 * acceptor's native loop).  Same framing, wrap markers, fences and doorbell
 * handshake as ring.c (whose Python functions wrap the same steps), so the
 * other side cannot tell which one wrote.
 *
 * Must not: allocate, do I/O, block, or keep state outside the ring.
 */
#ifndef MPGEARMAN_RINGCORE_H
#define MPGEARMAN_RINGCORE_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "layout.h"

typedef struct {
    unsigned char *ctrl;
    unsigned char *data;
    uint64_t cap;
    uint64_t mask;
} rc_ring;

#define RC_U64(r, off) ((_Atomic uint64_t *)((r)->ctrl + (off)))
#define RC_SLEEPING(r) ((_Atomic uint32_t *)((r)->ctrl + MPG_RING_SLEEPING_OFF))

static inline uint64_t
rc_record_size(uint64_t n)
{
    return (MPG_REC_HEADER_SIZE + n + MPG_REC_ALIGN - 1)
           & ~(uint64_t)(MPG_REC_ALIGN - 1);
}

/* Locate a ring in a mapping of len bytes at off; -1 if it does not fit or
   its capacity is not valid. */
static inline int
rc_attach(rc_ring *r, unsigned char *base, uint64_t len, uint64_t off)
{
    if (off % MPG_CACHE_LINE || len < MPG_RING_CTRL_SIZE
        || off > len - MPG_RING_CTRL_SIZE)
        return -1;
    r->ctrl = base + off;
    uint64_t cap = atomic_load_explicit(RC_U64(r, MPG_RING_CAPACITY_OFF),
                                        memory_order_relaxed);
    if (cap < MPG_RING_MIN_CAPACITY || cap > MPG_RING_MAX_CAPACITY
        || (cap & (cap - 1)) || cap > len - off - MPG_RING_CTRL_SIZE)
        return -1;
    r->cap = cap;
    r->mask = cap - 1;
    r->data = r->ctrl + MPG_RING_DATA_OFF;
    return 0;
}

static inline uint64_t
rc_max_record(const rc_ring *r)
{
    return r->cap >> MPG_RING_MAX_RECORD_SHIFT;
}

/* Producer: copy one record (two parts, concatenated) after *tail without
   publishing.  1 = written, 0 = no room, -1 = too big, -2 = corrupt. */
static inline int
rc_write2(rc_ring *r, uint64_t *tail, uint64_t *head, const void *a,
          uint64_t na, const void *b, uint64_t nb)
{
    uint64_t n = na + nb;
    if (n > rc_max_record(r))
        return -1;
    uint64_t need = rc_record_size(n);
    uint64_t pos = *tail & r->mask;
    uint64_t to_end = r->cap - pos;
    uint64_t total = need <= to_end ? need : to_end + need;
    if (*tail - *head > r->cap - total) {
        *head = atomic_load_explicit(RC_U64(r, MPG_RING_HEAD_OFF),
                                     memory_order_acquire);
        atomic_store_explicit(RC_U64(r, MPG_RING_HEAD_CACHE_OFF), *head,
                              memory_order_relaxed);
        if (*tail - *head > r->cap)
            return -2;
        if (*tail - *head > r->cap - total)
            return 0;
    }
    if (need > to_end) {
        uint32_t wrap = MPG_REC_WRAP;
        memcpy(r->data + pos, &wrap, sizeof wrap);
        *tail += to_end;
        pos = 0;
    }
    uint32_t len32 = (uint32_t)n;
    memcpy(r->data + pos, &len32, sizeof len32);
    if (na)
        memcpy(r->data + pos + MPG_REC_HEADER_SIZE, a, na);
    if (nb)
        memcpy(r->data + pos + MPG_REC_HEADER_SIZE + na, b, nb);
    *tail += need;
    return 1;
}

static inline void
rc_producer_begin(rc_ring *r, uint64_t *tail, uint64_t *head)
{
    *tail = atomic_load_explicit(RC_U64(r, MPG_RING_TAIL_OFF), memory_order_relaxed);
    *head = atomic_load_explicit(RC_U64(r, MPG_RING_HEAD_CACHE_OFF),
                                 memory_order_relaxed);
}

static inline void
rc_publish_tail(rc_ring *r, uint64_t tail)
{
    atomic_store_explicit(RC_U64(r, MPG_RING_TAIL_OFF), tail, memory_order_release);
}

/* Producer, after publishing: 1 if the consumer sleeps (flag now cleared). */
static inline int
rc_writer_should_ring(rc_ring *r)
{
    atomic_thread_fence(memory_order_seq_cst);
    return atomic_load_explicit(RC_SLEEPING(r), memory_order_relaxed) != 0
           && atomic_exchange_explicit(RC_SLEEPING(r), 0,
                                       memory_order_acq_rel) != 0;
}

/* Consumer: the next record at *head (below tail), skipping wrap markers.
   1 = rec and len set (advance with rc_record_size(len)), 0 = none left,
   -2 = corrupt. */
static inline int
rc_peek(rc_ring *r, uint64_t *head, uint64_t tail, const unsigned char **rec,
        uint32_t *len)
{
    while (*head != tail) {
        uint64_t pos = *head & r->mask;
        uint64_t avail = tail - *head;
        uint32_t n;
        memcpy(&n, r->data + pos, sizeof n);
        if (n == MPG_REC_WRAP) {
            if (r->cap - pos > avail)
                return -2;
            *head += r->cap - pos;
            continue;
        }
        uint64_t size = rc_record_size(n);
        if (n > rc_max_record(r) || size > r->cap - pos || size > avail)
            return -2;
        *rec = r->data + pos + MPG_REC_HEADER_SIZE;
        *len = n;
        return 1;
    }
    return 0;
}

static inline uint64_t
rc_consumer_tail(rc_ring *r)
{
    return atomic_load_explicit(RC_U64(r, MPG_RING_TAIL_OFF), memory_order_acquire);
}

static inline uint64_t
rc_consumer_head(rc_ring *r)
{
    return atomic_load_explicit(RC_U64(r, MPG_RING_HEAD_OFF), memory_order_relaxed);
}

static inline void
rc_publish_head(rc_ring *r, uint64_t head)
{
    atomic_store_explicit(RC_U64(r, MPG_RING_HEAD_OFF), head, memory_order_release);
}

/* Consumer: announce sleep; 1 if the ring is empty (the producer will ring). */
static inline int
rc_reader_idle(rc_ring *r)
{
    atomic_store_explicit(RC_SLEEPING(r), 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    int idle = rc_consumer_tail(r) == rc_consumer_head(r);
    if (!idle)
        atomic_store_explicit(RC_SLEEPING(r), 0, memory_order_relaxed);
    return idle;
}

static inline void
rc_reader_awake(rc_ring *r)
{
    atomic_store_explicit(RC_SLEEPING(r), 0, memory_order_relaxed);
}

#endif
