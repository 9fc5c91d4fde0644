/* The coordinator's per-packet path in C: inbound PACKET records go to the
 * core with their arguments pointing into the ring (nothing copied, no
 * Python object), every other record kind goes back to the caller in order,
 * and the core's output is routed into the outbound rings exactly as
 * coordinator/loop.py _route, _close_run, _pieces and _publish do (the
 * executable specification): sends to one connection merged into one SEND
 * record while nothing else for it comes between (up to merge_limit), big
 * sends cut into pieces, records that do not fit kept pending per acceptor in
 * order, and a dead acceptor generation's output dropped.
 *
 * Must not: call Python, block, or let one connection's bad request cost more
 * than that connection.
 */
#include <stdlib.h>

#include "core_rings.h"

enum { K_PACKET = 2, K_SEND = 11, K_SENDFILE = 12, K_CLOSE = 13 };
#define PACKET_HEAD 11          /* kind u8 | conn u64 | type u16 */
#define SEND_HEAD 9             /* kind u8 | conn u64 */
#define SENDFILE_HEAD 19        /* kind u8 | conn u64 | size u64 | nlen u16 */
#define SERIAL_BITS 40

/* bytes.split's maxsplit per packet type (protocol/packets.py _SPLITS):
   -1 no arguments, -2 not a packet type. */
static const signed char SPLITS[] = {
    -2, 0, 0, -1, -1, -1, -1, 2, 0, -1, -1, 2, 2, 1, 0, 0, 0, 0, 2, 1, 4, 2,
    0, 1, -1, 1, 0, 0, 1, 1, -1, 3, 2, 2, 2, 7, 3, 4, 4, -1, 4, 0, 5};
#define NTYPES (int)(sizeof(SPLITS) / sizeof(SPLITS[0]))

int rings_init(rings *r, unsigned char *base, uint64_t len, uint32_t n,
               const uint64_t *in_off, const uint64_t *out_off,
               uint64_t merge_limit, uint64_t piece)
{
    memset(r, 0, sizeof(*r));
    r->n = n;
    r->merge_limit = merge_limit;
    r->piece = piece ? piece : 1;
    r->in = calloc(n ? n : 1, sizeof(rc_ring));
    r->out = calloc(n ? n : 1, sizeof(rc_ring));
    r->pending = calloc(n ? n : 1, sizeof(pendq));
    r->gens = calloc(n ? n : 1, sizeof(uint16_t));
    if (!r->in || !r->out || !r->pending || !r->gens)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        if (rc_attach(&r->in[i], base, len, in_off[i]) < 0
            || rc_attach(&r->out[i], base, len, out_off[i]) < 0)
            return -2;
    return 0;
}

void rings_fini(rings *r)
{
    for (uint32_t i = 0; r->pending && i < r->n; i++)
        free(r->pending[i].buf);
    free(r->in);
    free(r->out);
    free(r->pending);
    free(r->gens);
    free(r->next);
    memset(r, 0, sizeof(*r));
}

/* -- inbound ------------------------------------------------------------------ */

/* Cut a body as split_args does; -1 where the loop's split would raise. */
static int split(int ptype, const unsigned char *body, uint32_t n, args_t *a)
{
    if (ptype < 0 || ptype >= NTYPES || SPLITS[ptype] == -2)
        return -1;
    a->count = 0;
    int left = SPLITS[ptype];
    if (left < 0)
        return 0;
    if (left > 6)               /* only SUBMIT_JOB_SCHED, not expected anyway */
        left = 6;
    const char *p = (const char *)body, *end = p + n;
    for (;;) {
        const char *z = left ? memchr(p, '\0', (size_t)(end - p)) : NULL;
        a->p[a->count] = p;
        a->n[a->count] = z ? (size_t)(z - p) : (size_t)(end - p);
        a->count++;
        if (z == NULL)
            return 0;
        p = z + 1;
        left--;
    }
}

/* ERROR SERVER_ERROR "Internal server error", as loop.INTERNAL_ERROR. */
static const char INTERNAL_ERROR[] =
    "\0RES\0\0\0\x13\0\0\0\x22SERVER_ERROR\0Internal server error";
#define INTERNAL_ERROR_LEN (sizeof(INTERNAL_ERROR) - 1)

/* A request that could not be handled costs only its connection, as
   loop._contain: ERROR SERVER_ERROR, then the close, then the core forgets
   it. What the failed request had queued is taken back first. */
static void contain(core *k, int64_t conn, uint32_t n0, uint64_t used0)
{
    k->out.failed = 0;
    k->out.n = n0;
    k->out.used = used0;
    out_put(k, conn, INTERNAL_ERROR, INTERNAL_ERROR_LEN, 0);
    out_put(k, conn, NULL, 0, 1);
    core_disconnect(k, conn);
}

static void apply_packet(rings *r, core *k, const unsigned char *rec, uint32_t len)
{
    int64_t conn;
    uint16_t ptype;
    memcpy(&conn, rec + 1, 8);
    memcpy(&ptype, rec + 9, 2);
    if (conn_find(k, conn) == NIL)
        return;                 /* already closed */
    uint32_t n0 = k->out.n;
    uint64_t used0 = k->out.used;
    args_t a = {.count = 0};
    if (split(ptype, rec + PACKET_HEAD, len - PACKET_HEAD, &a) < 0
        || core_packet(k, conn, ptype, &a) < 0 || k->out.failed) {
        contain(k, conn, n0, used0);
        r->contained++;
        r->bad_conn = conn;
        r->bad_type = ptype;
    }
}

int64_t rings_serve(rings *r, core *k, uint32_t i, uint32_t budget,
                    const unsigned char **rec, uint32_t *len)
{
    rc_ring *ring = &r->in[i];
    uint64_t head = rc_consumer_head(ring), tail = rc_consumer_tail(ring);
    int64_t done = 0;
    *rec = NULL;
    while (done < (int64_t)budget) {
        const unsigned char *p;
        uint32_t n;
        int got = rc_peek(ring, &head, tail, &p, &n);
        if (got < 0) {
            rc_publish_head(ring, head);
            return -2;
        }
        if (got == 0)
            break;
        head += rc_record_size(n);
        done++;
        if (n >= PACKET_HEAD && p[0] == K_PACKET) {
            apply_packet(r, k, p, n);
            continue;
        }
        *rec = p;               /* still valid: the producer cannot reuse it */
        *len = n;               /* before the head is published again */
        break;
    }
    /* A returned record stays valid (its bytes cannot be reused by the
       producer) until the caller publishes r->held with rings_release. */
    r->held = head;
    if (*rec == NULL)
        rc_publish_head(ring, head);
    return done;
}

void rings_release(rings *r, uint32_t i)
{
    rc_publish_head(&r->in[i], r->held);
}

/* -- output made outside the core --------------------------------------------- */

static int grow(void **p, uint64_t *cap, uint64_t need, uint64_t unit, uint64_t first)
{
    if (need <= *cap)
        return 0;
    uint64_t c = *cap ? *cap : first;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * unit);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static out_rec *out_add(core *k, int64_t conn, const void *p, uint64_t n,
                        const void *p2, uint64_t n2)
{
    outq *q = &k->out;
    uint64_t rcap = q->cap;
    if (grow((void **)&q->recs, &rcap, (uint64_t)q->n + 1, sizeof(out_rec), 64) < 0
        || rcap > UINT32_MAX || grow((void **)&q->buf, &q->size, q->used + n + n2, 1, 4096) < 0) {
        q->cap = rcap > UINT32_MAX ? q->cap : (uint32_t)rcap;
        return NULL;
    }
    q->cap = (uint32_t)rcap;
    out_rec *r = &q->recs[q->n++];
    memset(r, 0, sizeof(*r));
    r->conn = conn;
    r->off = q->used;
    r->len = n + n2;
    if (n)
        memcpy(q->buf + q->used, p, n);
    if (n2)
        memcpy(q->buf + q->used + n, p2, n2);
    q->used += n + n2;
    return r;
}

int out_put(core *k, int64_t conn, const void *p, uint64_t n, int close)
{
    out_rec *r = out_add(k, conn, p, close ? 0 : n, NULL, 0);
    if (r == NULL)
        return -1;
    r->close = close ? 1 : 0;
    return 0;
}

int out_put_spooled(core *k, int64_t conn, const void *head, uint32_t hlen,
                    const void *name, uint32_t nlen, uint64_t size)
{
    if (hlen == 0)
        return -2;
    out_rec *r = out_add(k, conn, head, hlen, name, nlen);
    if (r == NULL)
        return -1;
    r->hlen = hlen;
    r->ssize = size;
    return 0;
}

/* -- routing ------------------------------------------------------------------- */

enum { T_DROP, T_LEAD, T_FOLLOW, T_PIECES, T_CLOSE, T_SPOOLED };
#define NONE UINT32_MAX

typedef struct { int64_t conn; uint32_t lead, last; uint64_t size; int open; } run_t;

static int pend_reserve(pendq *pq, uint64_t more)
{
    if (pq->head && pq->used + more > pq->size) {      /* compact first */
        memmove(pq->buf, pq->buf + pq->head, pq->used - pq->head);
        pq->used -= pq->head;
        pq->head = 0;
    }
    return grow((void **)&pq->buf, &pq->size, pq->used + more, 1, 4096);
}

static unsigned char *pend_add(pendq *pq, uint64_t len)
{
    uint32_t n32 = (uint32_t)len;
    unsigned char *w = pq->buf + pq->used;
    memcpy(w, &n32, 4);
    pq->used += 4 + len;
    pq->count++;
    return w + 4;
}

static void put_head(unsigned char *w, int kind, int64_t conn)
{
    w[0] = (unsigned char)kind;
    memcpy(w + 1, &conn, 8);
}

static run_t *run_of(run_t *tab, uint32_t mask, int64_t conn)
{
    uint64_t h = (uint64_t)conn * 0x9E3779B97F4A7C15ULL;
    for (uint32_t s = (uint32_t)(h >> 32) & mask;; s = (s + 1) & mask)
        if (tab[s].lead == NONE || tab[s].conn == conn) {
            tab[s].conn = conn;
            return &tab[s];
        }
}

/* Pass 1: what becomes of each output record, and the bytes each slot's
   pending queue must take. */
static int classify(rings *r, core *k, unsigned char *tag, uint64_t *need)
{
    outq *q = &k->out;
    uint32_t m = q->n, size = 16;
    while (size < 2 * m)
        size *= 2;
    run_t *tab = malloc(size * sizeof(run_t));
    if (tab == NULL)
        return -1;
    for (uint32_t s = 0; s < size; s++)
        tab[s].lead = NONE;
    for (uint32_t j = 0; j < m; j++) {
        out_rec *o = &q->recs[j];
        uint64_t i = (uint64_t)o->conn >> 56;
        r->next[j] = NONE;
        if (i >= r->n || (((uint64_t)o->conn >> SERIAL_BITS) & 0xFFFF) != r->gens[i]) {
            tag[j] = T_DROP;
            if (o->hlen && k->h.release)      /* its spool name is ours to drop */
                k->h.release(k->h.ctx, q->buf + o->off + o->hlen, o->len - o->hlen, o->ssize);
            continue;
        }
        run_t *run = run_of(tab, size - 1, o->conn);
        if (o->hlen) {                  /* head, then a spool file: one SENDFILE */
            if (run->lead != NONE)
                run->open = 0;
            tag[j] = T_SPOOLED;
            need[i] += 4 + SENDFILE_HEAD + o->len;
        } else if (o->close == 0) {
            if (run->lead != NONE && run->open && run->size + o->len <= r->merge_limit) {
                run->size += o->len;
                r->next[run->last] = j;
                run->last = j;
                tag[j] = T_FOLLOW;
                need[i] += o->len;
            } else if (o->len > r->piece) {
                if (run->lead != NONE)
                    run->open = 0;
                tag[j] = T_PIECES;
                need[i] += o->len + ((o->len + r->piece - 1) / r->piece) * (4 + SEND_HEAD);
            } else {
                run->lead = run->last = j;
                run->size = o->len;
                run->open = 1;
                tag[j] = T_LEAD;
                need[i] += 4 + SEND_HEAD + o->len;
            }
        } else {
            if (run->lead != NONE)
                run->open = 0;
            tag[j] = T_CLOSE;
            need[i] += 4 + SEND_HEAD;
        }
    }
    free(tab);
    return 0;
}

static void emit_lead(rings *r, outq *q, uint32_t j, pendq *pq)
{
    uint64_t total = 0;
    for (uint32_t x = j; x != NONE; x = r->next[x])
        total += q->recs[x].len;
    unsigned char *w = pend_add(pq, SEND_HEAD + total);
    put_head(w, K_SEND, q->recs[j].conn);
    w += SEND_HEAD;
    for (uint32_t x = j; x != NONE; x = r->next[x]) {
        if (q->recs[x].len)
            memcpy(w, q->buf + q->recs[x].off, q->recs[x].len);
        w += q->recs[x].len;
    }
}

/* SENDFILE | conn u64 | size u64 | nlen u16 | name | head (messages.sendfile),
   from an output record holding the head, then the name. */
static void emit_sendfile(const out_rec *o, const unsigned char *data, unsigned char *w)
{
    uint64_t size = o->ssize;
    uint16_t nlen = (uint16_t)(o->len - o->hlen);
    put_head(w, K_SENDFILE, o->conn);
    memcpy(w + 9, &size, 8);
    memcpy(w + 17, &nlen, 2);
    memcpy(w + SENDFILE_HEAD, data + o->hlen, nlen);
    memcpy(w + SENDFILE_HEAD + nlen, data, o->hlen);
}

int rings_route(rings *r, core *k)
{
    outq *q = &k->out;
    uint32_t m = q->n;
    if (m == 0)
        return 0;
    uint64_t cap = r->next_cap;
    if (grow((void **)&r->next, &cap, m, sizeof(uint32_t), 64) < 0)
        return -1;
    r->next_cap = (uint32_t)cap;
    unsigned char *tag = malloc(m);
    uint64_t *need = calloc(r->n ? r->n : 1, sizeof(uint64_t));
    int rc = tag && need ? classify(r, k, tag, need) : -1;
    for (uint32_t i = 0; rc == 0 && i < r->n; i++)
        if (need[i] && pend_reserve(&r->pending[i], need[i]) < 0)
            rc = -1;
    for (uint32_t j = 0; rc == 0 && j < m; j++) {
        out_rec *o = &q->recs[j];
        pendq *pq = &r->pending[(uint64_t)o->conn >> 56];
        const unsigned char *data = (const unsigned char *)q->buf + o->off;
        if (tag[j] == T_LEAD) {
            emit_lead(r, q, j, pq);
        } else if (tag[j] == T_PIECES) {
            for (uint64_t at = 0; at < o->len; at += r->piece) {
                uint64_t step = o->len - at < r->piece ? o->len - at : r->piece;
                unsigned char *w = pend_add(pq, SEND_HEAD + step);
                put_head(w, K_SEND, o->conn);
                memcpy(w + SEND_HEAD, data + at, step);
            }
        } else if (tag[j] == T_CLOSE) {
            put_head(pend_add(pq, SEND_HEAD), K_CLOSE, o->conn);
        } else if (tag[j] == T_SPOOLED) {
            emit_sendfile(o, data, pend_add(pq, SENDFILE_HEAD + o->len));
        }
    }
    if (rc == 0) {
        q->n = 0;
        q->used = 0;
    }
    free(tag);
    free(need);
    return rc;
}

void rings_publish(rings *r, unsigned char *bells)
{
    for (uint32_t i = 0; i < r->n; i++) {
        pendq *pq = &r->pending[i];
        bells[i] = 0;
        if (pq->count == 0)
            continue;
        rc_ring *ring = &r->out[i];
        uint64_t tail, head, at = pq->head;
        uint32_t pushed = 0;
        rc_producer_begin(ring, &tail, &head);
        while (pushed < pq->count) {
            uint32_t n;
            memcpy(&n, pq->buf + at, 4);
            if (rc_write2(ring, &tail, &head, pq->buf + at + 4, n, NULL, 0) != 1)
                break;
            at += 4 + (uint64_t)n;
            pushed++;
        }
        if (pushed == 0)
            continue;
        rc_publish_tail(ring, tail);
        pq->count -= pushed;
        pq->head = pq->count ? at : 0;
        if (!pq->count)
            pq->used = 0;
        bells[i] = (unsigned char)rc_writer_should_ring(ring);
    }
}
