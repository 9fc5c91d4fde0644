/* The C core's journal records: the same bytes as mpgearman/durable/format.py
 * (the specification), appended to core.jbuf while journaling is on, taken
 * by the loop once per turn (take_journal). Records: u32 body length, u32
 * CRC32 of the body, body = type byte + little-endian fields. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define J(i) (&k->t.jobs[i])
#define F(i) (&k->t.fns[i])

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int b = 0; b < 8; b++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc32(const unsigned char *p, size_t n)
{
    if (crc_table[1] == 0)
        crc_init();
    uint32_t c = 0xFFFFFFFFu;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* Room for n more bytes; NULL (and jfailed set) when memory runs out. */
static unsigned char *room(core *k, size_t n)
{
    if (k->jused + n > k->jsize) {
        size_t size = k->jsize ? k->jsize : 4096;
        while (size < k->jused + n)
            size *= 2;
        char *p = realloc(k->jbuf, size);
        if (p == NULL) {
            k->out.failed = 1;
            return NULL;
        }
        k->jbuf = p;
        k->jsize = size;
    }
    return (unsigned char *)k->jbuf + k->jused;
}

static unsigned char *put(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

static unsigned char *put_bytes(unsigned char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* SUBMIT S | u64 no | u8 prio | u8 spooled | i64 when | u64 size | u16 x3 | u32
 *          | handle | function | unique | data */
size_t journal_submit_size(core *k, idx j)
{
    job_rec *r = J(j);
    return 8 + 1 + 8 + 1 + 1 + 8 + 8 + 2 * 3 + 4 + r->handle.len + F(r->fn)->name.len
           + r->unique.len + r->data.len;
}

void journal_submit(core *k, idx j, int64_t when)
{
    job_rec *r = J(j);
    fn_rec *f = F(r->fn);
    size_t body = journal_submit_size(k, j) - 8;
    unsigned char *p = room(k, 8 + body);
    if (p == NULL)
        return;
    unsigned char *b = p + 8;
    unsigned char *q = b;
    *q++ = 'S';
    q = put(q, r->no, 8);
    *q++ = r->prio;
    *q++ = r->spooled;          /* then data is the spool file's name */
    q = put(q, (uint64_t)when, 8);
    q = put(q, r->spooled ? r->size : r->data.len, 8);
    q = put(q, r->handle.len, 2);
    q = put(q, f->name.len, 2);
    q = put(q, r->unique.len, 2);
    q = put(q, r->data.len, 4);
    q = put_bytes(q, r->handle.p, r->handle.len);
    q = put_bytes(q, f->name.p, f->name.len);
    q = put_bytes(q, r->unique.p, r->unique.len);
    put_bytes(q, r->data.p, r->data.len);
    put(p, body, 4);
    put(p + 4, crc32(b, body), 4);
    k->jused += 8 + body;
    k->jlive += 8 + body;
    k->jjobs++;
    r->logged = 1;
}

static void journal_short(core *k, char kind, uint64_t no)
{
    unsigned char *p = room(k, 8 + 9);
    if (p == NULL)
        return;
    p[8] = (unsigned char)kind;
    put(p + 9, no, 8);
    put(p, 9, 4);
    put(p + 4, crc32(p + 8, 9), 4);
    k->jused += 8 + 9;
}

void journal_run(core *k, idx j)
{
    journal_short(k, 'R', J(j)->no);
}

static void keep(core *k, idx j, int on)
{
    job_rec *r = J(j);
    if (r->spooled && k->h.keep)
        k->h.keep(k->h.ctx, &r->handle, r->data.p, r->data.len, r->size, on);
}

void journal_end(core *k, idx j)
{
    J(j)->logged = 0;
    keep(k, j, 0);
    k->jlive -= journal_submit_size(k, j);
    k->jjobs--;
    journal_short(k, 'E', J(j)->no);
}

/* Journal a background job whose JOB_CREATED comes next (core.py
 * _journal_submit): its spooled payload kept for a restart first; -1 (ERROR
 * sent, job no longer a background one) when that cannot be. */
int journal_ack(core *k, idx c, idx j, int64_t when)
{
    job_rec *r = J(j);
    if (r->spooled && k->h.keep &&
        k->h.keep(k->h.ctx, &r->handle, r->data.p, r->data.len, r->size, 1) < 0) {
        core_unacked(k, j);
        emit_error(k, c, "QUEUE_ERROR", "Job queue could not be written to disk");
        return -1;
    }
    journal_submit(k, j, when);
    if (k->nacks == k->capacks) {
        uint32_t cap = k->capacks ? 2 * k->capacks : 16;
        ack_rec *a = realloc(k->acks, cap * sizeof(ack_rec));
        if (a == NULL) {
            k->out.failed = 1;
            return 0;
        }
        k->acks = a;
        k->capacks = cap;
    }
    k->acks[k->nacks++] = (ack_rec){k->out.n, j, r->no};
    return 0;
}

/* The journal write of the turn that acknowledged job j (number no) failed
 * (journaling.py failed): it is no longer journaled nor a background job.
 * A job that ended since is left alone (its index may name another job). */
void journal_failed(core *k, idx j, uint64_t no)
{
    k->jfailed = 1;
    if (j == NIL || j >= k->t.njobs || !J(j)->live || J(j)->no != no || !J(j)->logged)
        return;
    J(j)->logged = 0;
    keep(k, j, 0);
    k->jlive -= journal_submit_size(k, j);
    k->jjobs--;
    core_unacked(k, j);
}

/* The records that rebuild the journaled jobs, oldest first, after this
 * turn's records (durable/compact.py snapshot_records: a running job counts
 * that run as an attempt). Returns where they start in jbuf, or -1. */
int64_t journal_snapshot(core *k)
{
    int64_t *when = calloc(k->t.njobs + 1, sizeof(int64_t));
    if (when == NULL)
        return -1;
    for (uint32_t i = 0; i < k->t.epochs.n; i++) {
        heap_ent *e = &k->t.epochs.e[i];
        if (e->job < k->t.njobs && J(e->job)->waiting && !when[e->job])
            when[e->job] = (int64_t)e->at;
    }
    size_t start = k->jused;
    uint64_t live = k->jlive, jobs = k->jjobs;
    for (idx j = k->t.jhead; j; j = J(j)->tnext) {
        if (!J(j)->logged)
            continue;
        journal_submit(k, j, when[j]);
        for (uint32_t n = J(j)->retries + (J(j)->worker != NIL); n; n--)
            journal_run(k, j);
    }
    free(when);
    k->jlive = live;
    k->jjobs = jobs;
    if (k->out.failed) {
        k->out.failed = 0;
        k->jused = start;
        return -1;
    }
    return (int64_t)start;
}
