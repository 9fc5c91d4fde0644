/* The acceptor loop's way to the coordinator: records onto the inbound
 * ring (or into `pend` while it is full, in order), one tail publish and at
 * most one doorbell per turn; and what it shows other processes: log lines
 * for Python, its counters line, the spool in use.
 */
#include "aloop.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define FULL_WAIT_MIN 0.001
#define FULL_WAIT_MAX 0.016

void
al_log(al_loop *L, int level, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    PyObject *item = Py_BuildValue("(is)", level, text);
    if (item == NULL || PyList_Append(L->logs, item) < 0)
        PyErr_Clear();
    Py_XDECREF(item);
}

void
al_figure(al_loop *L, int off, uint64_t value)
{
    if (L->fig)
        atomic_store_explicit((_Atomic uint64_t *)((unsigned char *)L->fig + off), value,
                              memory_order_relaxed);
}

/* What --max-spool-bytes bounds: the coordinator's held spool plus every
   acceptor's bodies being written (counters.Counters.spool_in_use). */
uint64_t
al_spool_in_use(al_loop *L)
{
    unsigned char *base = L->ctr.buf;
    uint32_t lines;
    memcpy(&lines, base + MPG_CTR_LINES_OFF, 4);
    uint64_t max_lines = ((uint64_t)L->ctr.len - MPG_CTR_PROCS_OFF) / MPG_CTR_LINE_SIZE;
    if (lines > max_lines)
        lines = (uint32_t)max_lines;
#define CTR(line, off) atomic_load_explicit((_Atomic uint64_t *)(base + MPG_CTR_PROCS_OFF \
    + (uint64_t)(line) * MPG_CTR_LINE_SIZE + (off)), memory_order_relaxed)
    uint64_t sum = CTR(MPG_CTR_COORDINATOR, MPG_CTR_C_OFF);
    for (uint32_t line = MPG_CTR_FIRST_ACCEPTOR; line < lines; line++)
        sum += CTR(line, MPG_CTR_D_OFF);
#undef CTR
    return sum;
}

void
al_reserve(al_loop *L, al_conn *c, uint64_t size)
{
    L->writing += size - c->reserved;
    c->reserved = size;
    al_figure(L, MPG_CTR_D_OFF, L->writing);
}

static int
pend_add(al_loop *L, const unsigned char *h, size_t nh, const void *b, size_t nb)
{
    size_t need = 4 + nh + nb;
    if (L->pend_pos && L->pend_pos == L->pend_len)
        L->pend_pos = L->pend_len = 0;
    if (L->pend_len + need > L->pend_cap) {
        if (L->pend_pos) {
            memmove(L->pend, L->pend + L->pend_pos, L->pend_len - L->pend_pos);
            L->pend_len -= L->pend_pos;
            L->pend_pos = 0;
        }
        size_t cap = L->pend_cap ? L->pend_cap : 65536;
        while (cap < L->pend_len + need)
            cap *= 2;
        if (cap != L->pend_cap) {
            unsigned char *p = realloc(L->pend, cap);
            if (p == NULL)
                return -1;
            L->pend = p;
            L->pend_cap = cap;
        }
    }
    uint32_t n = (uint32_t)(nh + nb);
    memcpy(L->pend + L->pend_len, &n, 4);
    memcpy(L->pend + L->pend_len + 4, h, nh);
    if (nb)
        memcpy(L->pend + L->pend_len + 4 + nh, b, nb);
    L->pend_len += need;
    return 0;
}

/* Queue one record: kind, conn, then a and b.  Straight onto the ring
   (published at the end of the turn) unless records already wait. */
int
al_emit(al_loop *L, uint8_t kind, uint64_t conn, const void *a, size_t na,
        const void *b, size_t nb)
{
    unsigned char h[9 + 128];
    if (na > 128)
        return -1;
    h[0] = kind;
    memcpy(h + 1, &conn, 8);
    if (na)
        memcpy(h + 9, a, na);
    L->records_in++;
    if (L->pend_pos == L->pend_len) {
        int rc = rc_write2(&L->rin, &L->tail, &L->headc, h, 9 + na, b, nb);
        if (rc == 1) {
            L->unpublished = 1;
            return 0;
        }
        if (rc < 0) {
            al_log(L, LOG_ERROR, "record of %zu bytes dropped: %s", 9 + na + nb,
                   rc == -1 ? "larger than the ring takes" : "the ring is corrupt");
            return -1;
        }
    }
    if (pend_add(L, h, 9 + na, b, nb) < 0) {
        al_log(L, LOG_ERROR, "out of memory: record dropped");
        return -1;
    }
    return 0;
}

void
al_publish(al_loop *L)
{
    if (L->pend_pos < L->pend_len) {
        int moved = 0, rc = 1;
        while (L->pend_pos < L->pend_len) {
            uint32_t n;
            memcpy(&n, L->pend + L->pend_pos, 4);
            rc = rc_write2(&L->rin, &L->tail, &L->headc, L->pend + L->pend_pos + 4, n,
                           NULL, 0);
            if (rc == 0)
                break;
            if (rc < 0)
                al_log(L, LOG_ERROR, "waiting record of %u bytes dropped", n);
            L->pend_pos += 4 + (size_t)n;
            L->unpublished = moved = 1;
        }
        if (moved)
            L->full_wait = FULL_WAIT_MIN;
        else
            L->full_wait = L->full_wait * 2 < FULL_WAIT_MAX ? L->full_wait * 2 : FULL_WAIT_MAX;
    }
    if (L->unpublished) {
        L->unpublished = 0;
        rc_publish_tail(&L->rin, L->tail);
        if (rc_writer_should_ring(&L->rin)) {
            uint64_t one = 1;
            if (write(L->coord_bell_fd, &one, 8) < 0 && errno != EAGAIN)
                al_log(L, LOG_ERROR, "doorbell: %s", strerror(errno));
        }
    }
    L->ring_full = L->pend_pos < L->pend_len;
    if (L->nmuted && !L->ring_full)
        al_unmute_all(L);
}

