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
void journal_submit(core *k, idx j, int64_t when)
{
    job_rec *r = J(j);
    fn_rec *f = F(r->fn);
    size_t body = 1 + 8 + 1 + 1 + 8 + 8 + 2 * 3 + 4 + r->handle.len + f->name.len
                  + r->unique.len + r->data.len;
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

void journal_end(core *k, idx j)
{
    J(j)->logged = 0;
    journal_short(k, 'E', J(j)->no);
}
