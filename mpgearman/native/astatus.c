/* GET_STATUS answered from the job status board (layout.h), without a
 * trip to the coordinator: the twin of Acceptor.local_status in
 * acceptor/loop.py.  Only when that keeps replies in order: the coordinator
 * has handled every record this connection sent before (its done counter
 * for our ring) and the outbound ring is empty, so all their answers are
 * queued on the connection already.  Anything unusual (another prefix, a
 * leading zero, a slot shared with other jobs, a slot caught mid-update)
 * goes to the coordinator.
 */
#include "aloop.h"

#include <stdio.h>
#include <stdlib.h>

#define U32AT(p, off) atomic_load_explicit((_Atomic uint32_t *)((p) + (off)), \
                                           memory_order_relaxed)

/* (known, running, num, den) of job `no`; 0 when only the coordinator can
   tell (board.StatusBoard.lookup). */
static int
lookup(al_loop *L, uint64_t no, int exact, uint32_t out[4])
{
    unsigned char *s = (unsigned char *)L->board.buf + L->board_slots
                       + (no & L->board_mask) * MPG_SLOT_SIZE;
    uint32_t seq, running, num, den, coll;
    uint64_t held;
    for (int tries = 0;; tries++) {
        if (tries >= MPG_SLOT_READ_TRIES)
            return 0;
        seq = atomic_load_explicit((_Atomic uint32_t *)(s + MPG_SLOT_SEQ_OFF),
                                   memory_order_acquire);
        if (seq & 1)
            continue;
        running = U32AT(s, MPG_SLOT_RUNNING_OFF);
        held = atomic_load_explicit((_Atomic uint64_t *)(s + MPG_SLOT_HANDLE_OFF),
                                    memory_order_relaxed);
        num = U32AT(s, MPG_SLOT_NUM_OFF);
        den = U32AT(s, MPG_SLOT_DEN_OFF);
        coll = U32AT(s, MPG_SLOT_COLLISIONS_OFF);
        atomic_thread_fence(memory_order_acquire);
        if (U32AT(s, MPG_SLOT_SEQ_OFF) == seq)
            break;
    }
    if (exact && held == no) {
        out[0] = 1, out[1] = running, out[2] = num, out[3] = den;
        return 1;
    }
    if (coll)
        return 0;
    out[0] = out[1] = out[2] = out[3] = 0;
    return 1;
}

int
al_local_status(al_loop *L, al_conn *c, const unsigned char *arg, size_t len)
{
    if (!L->board.obj)
        return 0;
    uint64_t done = atomic_load_explicit(
        (_Atomic uint64_t *)((unsigned char *)L->board.buf + MPG_BOARD_DONE_OFF
                             + (uint64_t)L->index * MPG_BOARD_DONE_STRIDE),
        memory_order_acquire);
    if (done < c->last || rc_consumer_tail(&L->rout) != rc_consumer_head(&L->rout))
        return 0;
    const unsigned char *nul = memchr(arg, 0, len);
    size_t hlen = nul ? (size_t)(nul - arg) : len;
    size_t plen = L->prefix_len;
    if (hlen > 63 || hlen <= plen || memcmp(arg, L->prefix, plen) != 0
        || arg[plen] == '0')
        return 0;
    uint64_t no = 0;
    int exact = 1;
    for (size_t i = plen; i < hlen; i++) {
        if (arg[i] < '0' || arg[i] > '9')
            return 0;
        uint64_t next = no * 10 + (uint64_t)(arg[i] - '0');   /* low bits stay right */
        if (no > (UINT64_MAX - 9) / 10)
            exact = 0;
        no = next;
    }
    uint32_t st[4];
    if (!lookup(L, no, exact, st))
        return 0;
    char tail[64];
    int nt = snprintf(tail, sizeof tail, "%c%u%c%u%c%u%c%u", 0, st[0], 0, st[1], 0,
                      st[2], 0, st[3]);
    unsigned char pkt[AL_HEADER + 64 + sizeof tail];
    uint32_t size = (uint32_t)(hlen + (size_t)nt);
    memcpy(pkt, "\0RES\0\0\0\x14", 8);
    pkt[8] = (unsigned char)(size >> 24);
    pkt[9] = (unsigned char)(size >> 16);
    pkt[10] = (unsigned char)(size >> 8);
    pkt[11] = (unsigned char)size;
    memcpy(pkt + AL_HEADER, arg, hlen);
    memcpy(pkt + AL_HEADER + hlen, tail, (size_t)nt);
    if (al_queue(L, c, pkt, AL_HEADER + size) < 0)
        return 0;
    L->local_answers++;
    return 1;
}
