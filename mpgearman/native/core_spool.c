/* Spool refs and the job status board in the C core, as core.py does
 * them: a payload bigger than the spool threshold is a spool name and a
 * size (args_t.spooled, job_rec.spooled); every name handed in belongs to
 * the core, each spooled send gives one away, share() makes the extra
 * ones and a job's name is released when the job is freed.
 *
 * Also the functions' dirty list (what coordinator/figures.py publishes)
 * and dropping a function (admin `drop function`).
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define J(i) (&k->t.jobs[i])
#define F(i) (&k->t.fns[i])


void mark_dirty(core *k, idx f)
{
    if (f == NIL || F(f)->dirty)
        return;
    if (arr_push(&k->dirty, &k->ndirty, &k->capdirty, f) == 0)
        F(f)->dirty = 1;
}

void spool_drop_args(core *k, const args_t *a)
{
    if (a->spooled && a->count && k->h.release)
        k->h.release(k->h.ctx, a->p[a->count - 1], a->n[a->count - 1], a->size);
}

/* The job's payload is going with it. */
void spool_drop_job(core *k, idx j)
{
    job_rec *r = J(j);
    if (!r->spooled)
        return;
    k->spool_bytes -= r->size;
    if (k->h.release)
        k->h.release(k->h.ctx, r->data.p, r->data.len, r->size);
    r->spooled = 0;
}

/* Count a new job's spooled payload against --max-spool-bytes; 0 (nothing
 * counted) when it does not fit. */
int spool_room(core *k, uint64_t size)
{
    if (k->max_spool && k->spool_bytes + size > k->max_spool)
        return 0;
    k->spool_bytes += size;
    return 1;
}

/* Another name for a spooled payload or result of job j in *out (the
 * caller clears it), or -1 when the spool cannot make one. */
int spool_share(core *k, idx j, const char *name, size_t n, uint64_t size, blob *out)
{
    if (k->h.share == NULL)
        return -1;
    return k->h.share(k->h.ctx, &J(j)->handle, name, n, size, out);
}

static void put_u32(char *p, uint64_t v)
{
    p[0] = (char)(v >> 24); p[1] = (char)(v >> 16); p[2] = (char)(v >> 8); p[3] = (char)v;
}

/* The head of a packet whose data is the spool file `name` (size bytes),
 * as encoder.encode_head: each argument NUL-terminated, then the data. */
void emit_spooled(core *k, idx c, int ptype, int nargs, const char *const *p,
                  const size_t *n, const char *name, size_t nl, uint64_t size)
{
    uint64_t prefix = 0;
    for (int i = 0; i < nargs; i++)
        prefix += n[i] + 1;
    if (prefix + size > 0xFFFFFFFFu) {
        k->out.failed = 1;
        return;
    }
    uint64_t hlen = 12 + prefix;
    char *w = out_reserve(k, c, hlen + nl, 0);
    if (w == NULL)
        return;
    out_rec *rec = &k->out.recs[k->out.n - 1];
    rec->hlen = (uint32_t)hlen;
    rec->ssize = size;
    memcpy(w, "\0RES", 4);
    put_u32(w + 4, (uint64_t)ptype);
    put_u32(w + 8, prefix + size);
    w += 12;
    for (int i = 0; i < nargs; i++) {
        if (n[i]) memcpy(w, p[i], n[i]);
        w += n[i];
        *w++ = '\0';
    }
    if (nl) memcpy(w, name, nl);
}

void board_show(core *k, idx j, int running)
{
    job_rec *r = J(j);
    if (r->held && k->h.show)
        k->h.show(k->h.ctx, r->no, running, running ? r->num : 0, running ? r->den : 0);
}

/* A queued job whose payload cannot be read any more fails on its own. */
void payload_lost(core *k, idx j)
{
    F(J(j)->fn)->failed++;
    core_fail_clients(k, j);
    core_free_job(k, j);
}

/* Admin `drop function`: the record stays (a tombstone, unnamed) and a
 * later use of the name makes a new one, as a new Function in core.py. */
int fn_drop(core *k, idx f)
{
    fn_rec *r = F(f);
    ht_del(&k->t.by_name, 0, r->name.p, r->name.len);
    r->dropped = 1;
    return 0;
}
