/* The life of a job in C: output records, functions and their queues,
 * registrations, sleep and wake-up, submit, grab, free, requeue, cancel and
 * the timers. Mirrors coordinator/core.py, queues.py, jobtable.py and
 * workers.py operation for operation (same order of output). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define J(i) (&k->t.jobs[i])
#define F(i) (&k->t.fns[i])
#define R(i) (&k->t.regs[i])
#define C(i) (&k->t.conns[i])

enum { NOOP = 6, JOB_CREATED = 8, GRAB_JOB = 9, NO_JOB = 10, JOB_ASSIGN = 11,
       WORK_FAIL = 14, ERROR = 19, JOB_ASSIGN_UNIQ = 31, GRAB_JOB_ALL = 39,
       WORK_WARNING = 29, JOB_ASSIGN_ALL = 40 };
enum { NOT_INDEXED, BY_UNIQUE, BY_DATA };
#define BROAD 32
#define MIN_TIMEOUT_MS 1000

static const double BOUNDS[HIST_BUCKETS - 1] = {
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0};

/* One time into a histogram, as bisect_left(BOUNDS, t) in core.py. */
static void record(hist *h, double t)
{
    if (t < 0)          /* the clock was set back */
        t = 0.0;
    int i = 0;
    while (i < HIST_BUCKETS - 1 && BOUNDS[i] < t)
        i++;
    h->n[i]++;
    h->sum += t;
}

/* -- output ------------------------------------------------------------------ */

char *out_reserve(core *k, idx c, uint64_t len, int close)
{
    outq *q = &k->out;
    if (q->failed)
        return NULL;
    if (q->n == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 64;
        out_rec *r = cap > q->cap ? realloc(q->recs, (size_t)cap * sizeof(out_rec)) : NULL;
        if (r == NULL) { q->failed = 1; return NULL; }
        q->recs = r;
        q->cap = cap;
    }
    if (q->used + len > q->size) {
        uint64_t size = q->size ? q->size : 4096;
        while (size < q->used + len)
            size *= 2;
        char *b = realloc(q->buf, size);
        if (b == NULL) { q->failed = 1; return NULL; }
        q->buf = b;
        q->size = size;
    }
    out_rec *r = &q->recs[q->n++];
    r->conn = C(c)->id;
    r->off = q->used;
    r->len = len;
    r->close = close;
    r->hlen = 0;
    r->ssize = 0;
    q->used += len;
    return q->buf + r->off;
}

static void put_u32(char *p, uint64_t v)
{
    p[0] = (char)(v >> 24); p[1] = (char)(v >> 16); p[2] = (char)(v >> 8); p[3] = (char)v;
}

void emit(core *k, idx c, int ptype, int nargs, const char *const *p, const size_t *n)
{
    uint64_t body = nargs > 1 ? (uint64_t)(nargs - 1) : 0;
    for (int i = 0; i < nargs; i++)
        body += n[i];
    if (body > 0xFFFFFFFFu) {
        k->out.failed = 1;
        return;
    }
    char *w = out_reserve(k, c, 12 + body, 0);
    if (w == NULL)
        return;
    memcpy(w, "\0RES", 4);
    put_u32(w + 4, (uint64_t)ptype);
    put_u32(w + 8, body);
    w += 12;
    for (int i = 0; i < nargs; i++) {
        if (i) *w++ = '\0';
        if (n[i]) memcpy(w, p[i], n[i]);
        w += n[i];
    }
}

void emit_raw(core *k, idx c, const char *p, size_t n)
{
    char *w = out_reserve(k, c, n, 0);
    if (w && n)
        memcpy(w, p, n);
}

void emit_close(core *k, idx c)
{
    out_reserve(k, c, 0, 1);
}

void emit_error(core *k, idx c, const char *code, const char *text)
{
    const char *p[2] = {code, text};
    size_t n[2] = {strlen(code), strlen(text)};
    emit(k, c, ERROR, 2, p, n);
}

static void emit0(core *k, idx c, int ptype)
{
    emit(k, c, ptype, 0, NULL, NULL);
}

/* -- setup -------------------------------------------------------------------- */

int core_init(core *k, const char *prefix, size_t plen, uint32_t wakeup,
              uint32_t job_retries, int round_robin, int exceptions)
{
    memset(k, 0, sizeof(*k));
    if (ct_init(&k->t) < 0)
        return -1;
    char *p = malloc(plen + 1);
    if (p == NULL)
        return -1;
    memcpy(p, prefix, plen);
    p[plen] = ':';
    k->prefix.p = p;
    k->prefix.len = (uint32_t)plen + 1;
    k->wakeup = wakeup;
    k->job_retries = job_retries;
    k->round_robin = round_robin;
    k->exceptions = exceptions;
    return 0;
}

void core_fini(core *k)
{
    ct_free(&k->t);
    blob_clear(&k->prefix);
    free(k->out.recs);
    free(k->out.buf);
    free(k->jbuf);
    free(k->acks);
    memset(k, 0, sizeof(*k));
}

static double now(core *k)
{
    return k->clock ? k->clock(k->clock_ctx) : 0.0;
}

idx conn_find(core *k, int64_t id)
{
    return ht_get(&k->t.by_conn, 0, (const char *)&id, sizeof(id));
}

int core_connect(core *k, int64_t id, const char *peer, size_t plen, int64_t fd)
{
    if (conn_find(k, id) != NIL)
        core_disconnect(k, id);         /* a reused id: the old one is gone */
    idx c = ct_conn_new(&k->t);
    if (c == NIL)
        return -1;
    conn_rec *r = C(c);
    r->id = id;
    r->fd = fd;
    r->seq = ++k->t.conn_seq;
    r->exceptions = (uint8_t)k->exceptions;
    r->alive = 1;
    if (blob_set(&r->peer, peer, plen) < 0 || blob_set(&r->client_id, "-", 1) < 0 ||
        ht_put(&k->t.by_conn, 0, (const char *)&C(c)->id, sizeof(int64_t), c) < 0) {
        ct_conn_del(&k->t, c);
        return -1;
    }
    k->t.live_conns++;
    return 0;
}

/* -- functions and queues ------------------------------------------------------ */

idx fn_get(core *k, const char *name, size_t n, int create)
{
    idx f = ht_get(&k->t.by_name, 0, name, n);
    if (f == NIL && create) {
        f = ct_fn_new(&k->t, name, n);
        mark_dirty(k, f);
    }
    return f;
}

static void q_push(core *k, idx j)
{
    job_rec *r = J(j);
    fn_rec *f = F(r->fn);
    int p = r->prio;
    r->qnext = NIL;
    f->has_hist = 1;
    f->qn[p]++;
    if (f->qt[p]) J(f->qt[p])->qnext = j; else f->qh[p] = j;
    f->qt[p] = j;
    f->queued++;
}

static idx q_pop(core *k, idx f, int p)
{
    fn_rec *fr = F(f);
    idx j = fr->qh[p];
    fr->qh[p] = J(j)->qnext;
    if (fr->qh[p] == NIL)
        fr->qt[p] = NIL;
    J(j)->qnext = NIL;
    fr->queued--;
    fr->qn[p]--;
    return j;
}

static idx q_take(core *k, idx f)
{
    for (int p = 0; p < 3; p++)
        while (F(f)->qh[p]) {
            idx j = q_pop(k, f, p);
            if (!J(j)->ignore)
                return j;
            core_free_job(k, j);
        }
    return NIL;
}

static idx q_peek(core *k, idx f)
{
    for (int p = 0; p < 3; p++)
        while (F(f)->qh[p]) {
            idx j = F(f)->qh[p];
            if (!J(j)->ignore)
                return j;
            q_pop(k, f, p);
            core_free_job(k, j);
        }
    return NIL;
}

/* -- registrations, sleepers ------------------------------------------------------ */

static idx reg_find(core *k, idx c, idx f)
{
    return ht_get(&k->t.by_reg, c, (const char *)&f, sizeof(f));
}

static void sl_unlink(core *k, idx g)
{
    reg_rec *r = R(g);
    if (!r->in_sl)
        return;
    fn_rec *f = F(r->fn);
    if (r->slprev) R(r->slprev)->slnext = r->slnext; else f->slh = r->slnext;
    if (r->slnext) R(r->slnext)->slprev = r->slprev; else f->slt = r->slprev;
    r->slprev = r->slnext = NIL;
    r->in_sl = 0;
}

static void sl_append(core *k, idx g)
{
    sl_unlink(k, g);            /* move to the back */
    reg_rec *r = R(g);
    fn_rec *f = F(r->fn);
    r->slprev = f->slt;
    r->slnext = NIL;
    if (f->slt) R(f->slt)->slnext = g; else f->slh = g;
    f->slt = g;
    r->in_sl = 1;
}

static void br_unlink(core *k, idx c)
{
    conn_rec *r = C(c);
    if (!r->in_broad)
        return;
    if (r->brprev) C(r->brprev)->brnext = r->brnext; else k->t.brh = r->brnext;
    if (r->brnext) C(r->brnext)->brprev = r->brprev; else k->t.brt = r->brprev;
    r->brprev = r->brnext = NIL;
    r->in_broad = 0;
}

static void br_append(core *k, idx c)
{
    br_unlink(k, c);
    conn_rec *r = C(c);
    r->brprev = k->t.brt;
    if (k->t.brt) C(k->t.brt)->brnext = c; else k->t.brh = c;
    k->t.brt = c;
    r->in_broad = 1;
}

void reg_add(core *k, idx c, idx f, int64_t timeout_ms)
{
    idx g = reg_find(k, c, f);
    if (g == NIL) {
        g = ct_reg_new(&k->t);
        if (g == NIL)
            return;
        if (ht_put(&k->t.by_reg, c, (const char *)&f, sizeof(f), g) < 0) {
            ct_reg_del(&k->t, g);
            return;
        }
        if (arr_push(&C(c)->regs, &C(c)->nregs, &C(c)->capregs, g) < 0) {
            ht_del(&k->t.by_reg, c, (const char *)&f, sizeof(f));
            ct_reg_del(&k->t, g);
            return;
        }
        R(g)->conn = c;
        R(g)->fn = f;
    }
    reg_rec *r = R(g);
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 2;
        int64_t *keys = cap > r->cap ? realloc(r->keys, cap * sizeof(int64_t)) : NULL;
        if (keys == NULL) return;
        r->keys = keys;
        int64_t *tmo = realloc(r->tmo, cap * sizeof(int64_t));
        if (tmo == NULL) return;
        r->tmo = tmo;
        r->cap = cap;
    }
    r->keys[r->n] = ++k->t.top;
    r->tmo[r->n] = timeout_ms;
    r->n++;
    F(f)->workers++;
    mark_dirty(k, f);
    if (C(c)->sleeping && !C(c)->noop_sent)
        sl_append(k, g);
}

static void reg_drop(core *k, idx g)
{
    reg_rec *r = R(g);
    ht_del(&k->t.by_reg, r->conn, (const char *)&r->fn, sizeof(r->fn));
    F(r->fn)->workers -= r->n;
    mark_dirty(k, r->fn);
    sl_unlink(k, g);
    ct_reg_del(&k->t, g);
}

void reg_remove(core *k, idx c, idx f)
{
    conn_rec *r = C(c);
    for (uint32_t i = 0; i < r->nregs; i++)
        if (R(r->regs[i])->fn == f) {
            idx g = r->regs[i];
            memmove(&r->regs[i], &r->regs[i + 1], (r->nregs - i - 1) * sizeof(idx));
            r->nregs--;
            reg_drop(k, g);
            return;
        }
}

void reg_reset(core *k, idx c)
{
    for (uint32_t i = 0; i < C(c)->nregs; i++)
        reg_drop(k, C(c)->regs[i]);
    C(c)->nregs = 0;
    br_unlink(k, c);
}

static void reg_rotate(core *k, idx g)
{
    reg_rec *r = R(g);
    int64_t t = r->tmo[r->n - 1];
    memmove(&r->keys[1], &r->keys[0], (r->n - 1) * sizeof(int64_t));
    memmove(&r->tmo[1], &r->tmo[0], (r->n - 1) * sizeof(int64_t));
    r->keys[0] = --k->t.bottom;
    r->tmo[0] = t;
}

/* The registration, in order, whose function has queued jobs. */
static idx pick(core *k, idx c)
{
    conn_rec *r = C(c);
    idx best = NIL;
    int64_t key = 0;
    for (uint32_t i = 0; i < r->nregs; i++) {
        reg_rec *g = R(r->regs[i]);
        if (F(g->fn)->queued && (best == NIL || g->keys[g->n - 1] > key)) {
            best = r->regs[i];
            key = g->keys[g->n - 1];
        }
    }
    return best;
}

static void sleep_conn(core *k, idx c)
{
    conn_rec *r = C(c);
    r->sleeping = 1;
    if (r->noop_sent)
        return;
    if (r->nregs > BROAD) {
        br_append(k, c);
        return;
    }
    for (uint32_t i = 0; i < r->nregs; i++)
        sl_append(k, r->regs[i]);
}

static void wake(core *k, idx f)
{
    uint32_t sent = 0, limit = k->wakeup;
    while (F(f)->slh) {
        idx g = F(f)->slh;
        idx c = R(g)->conn;
        sl_unlink(k, g);
        conn_rec *r = C(c);
        if (r->sleeping && !r->noop_sent) {
            r->noop_sent = 1;
            emit0(k, c, NOOP);
            if (++sent == limit)
                return;
        }
    }
    for (idx c = k->t.brh; c; ) {
        idx next = C(c)->brnext;
        conn_rec *r = C(c);
        if (!r->sleeping || r->noop_sent) {
            br_unlink(k, c);
        } else if (reg_find(k, c, f)) {
            br_unlink(k, c);
            C(c)->noop_sent = 1;
            emit0(k, c, NOOP);
            if (++sent == limit)
                return;
        }
        c = next;
    }
}

/* -- the job table ------------------------------------------------------------------ */

idx job_by_handle(core *k, const char *handle, size_t n)
{
    return ht_get(&k->t.by_handle, 0, handle, n);
}

static idx find_twin(core *k, idx f, const char *u, size_t ul, const char *d, size_t dl,
                     int spooled)
{
    if (ul == 1 && u[0] == '-')     /* spooled data cannot be compared */
        return dl && !spooled ? ht_get(&k->t.by_data, f, d, dl) : NIL;
    return ht_get(&k->t.by_unique, f, u, ul);
}

static void job_index(core *k, idx j)
{
    job_rec *r = J(j);
    if (r->unique.len == 1 && r->unique.p[0] == '-') {
        if (r->data.len && !r->spooled &&
            ht_put(&k->t.by_data, r->fn, r->data.p, r->data.len, j) == 0)
            r->indexed = BY_DATA;
        return;
    }
    if (ht_put(&k->t.by_unique, r->fn, r->unique.p, r->unique.len, j) < 0)
        return;
    idx older = ht_get(&k->t.by_gunique, 0, r->unique.p, r->unique.len);
    if (ht_put(&k->t.by_gunique, 0, r->unique.p, r->unique.len, j) < 0) {
        ht_del(&k->t.by_unique, r->fn, r->unique.p, r->unique.len);
        return;
    }
    r->indexed = BY_UNIQUE;
    r->same_unique = older;
}

static void job_unindex(core *k, idx j)
{
    job_rec *r = J(j);
    int kind = r->indexed;
    r->indexed = NOT_INDEXED;
    if (kind == BY_DATA) {
        ht_del(&k->t.by_data, r->fn, r->data.p, r->data.len);
    } else if (kind == BY_UNIQUE) {
        ht_del(&k->t.by_unique, r->fn, r->unique.p, r->unique.len);
        idx head = ht_get(&k->t.by_gunique, 0, r->unique.p, r->unique.len);
        if (head == j) {
            if (r->same_unique == NIL) {
                ht_del(&k->t.by_gunique, 0, r->unique.p, r->unique.len);
            } else {
                job_rec *o = J(r->same_unique);
                ht_put(&k->t.by_gunique, 0, o->unique.p, o->unique.len, r->same_unique);
            }
        } else {
            while (head && J(head)->same_unique != j)
                head = J(head)->same_unique;
            if (head)
                J(head)->same_unique = r->same_unique;
        }
        r->same_unique = NIL;
    }
}

static void detach(core *k, idx c, idx j)
{
    conn_rec *r = C(c);
    for (uint32_t i = 0; i < r->natt; i++)
        if (r->attached[i] == j) {
            r->attached[i] = r->attached[--r->natt];
            return;
        }
}

static void attach(core *k, idx c, idx j)
{
    if (arr_push(&J(j)->clients, &J(j)->nclients, &J(j)->capclients, c) < 0)
        return;
    conn_rec *r = C(c);
    for (uint32_t i = 0; i < r->natt; i++)
        if (r->attached[i] == j)
            return;
    if (arr_push(&r->attached, &r->natt, &r->capatt, j) < 0)
        J(j)->nclients--;
}

static void run_unlink(core *k, idx j)
{
    job_rec *r = J(j);
    conn_rec *w = C(r->worker);
    if (r->rprev) J(r->rprev)->rnext = r->rnext; else w->rhead = r->rnext;
    if (r->rnext) J(r->rnext)->rprev = r->rprev; else w->rtail = r->rprev;
    r->rprev = r->rnext = NIL;
    F(r->fn)->running--;
    r->worker = NIL;
}

void core_free_job(core *k, idx j)
{
    if (J(j)->logged)
        journal_end(k, j);
    job_rec *r = J(j);
    ht_del(&k->t.by_handle, 0, r->handle.p, r->handle.len);
    if (r->indexed)
        job_unindex(k, j);
    if (r->tprev) J(r->tprev)->tnext = r->tnext; else k->t.jhead = r->tnext;
    if (r->tnext) J(r->tnext)->tprev = r->tprev; else k->t.jtail = r->tprev;
    k->t.live_jobs--;
    F(r->fn)->total--;
    mark_dirty(k, r->fn);
    if (k->h.unclaim)
        k->h.unclaim(k->h.ctx, r->no, r->held);
    if (r->worker) {
        record(&F(r->fn)->runs, now(k) - r->since);
        run_unlink(k, j);
    }
    r->timer = 0;
    for (uint32_t i = 0; i < r->nclients; i++)
        detach(k, r->clients[i], j);
    spool_drop_job(k, j);
    ct_job_del(&k->t, j);
}

void core_fail_clients(core *k, idx j)
{
    job_rec *r = J(j);
    const char *p[1] = {r->handle.p};
    size_t n[1] = {r->handle.len};
    for (uint32_t i = r->nclients; i-- > 0; )
        emit(k, r->clients[i], WORK_FAIL, 1, p, n);
}

idx core_owned(core *k, idx c, const char *handle, size_t n)
{
    idx j = job_by_handle(k, handle, n);
    return j && J(j)->worker == c ? j : NIL;
}

/* -- timers ------------------------------------------------------------------------ */

static void promote(core *k, double t)
{
    heap *h = &k->t.epochs;
    uint32_t first = k->out.n;
    (void)first;
    idx due[64];
    for (;;) {
        uint32_t n = 0;
        while (h->n && h->e[0].at <= t && n < 64) {
            idx j = heap_pop(h).job;
            J(j)->waiting = 0;
            J(j)->since = t;
            F(J(j)->fn)->waiting--;
            mark_dirty(k, J(j)->fn);
            q_push(k, j);
            due[n++] = j;
        }
        for (uint32_t i = 0; i < n; i++)
            wake(k, J(due[i])->fn);
        if (n < 64)
            return;
    }
}

static void promote_due(core *k)
{
    if (k->t.epochs.n) {
        double t = now(k);
        if (k->t.epochs.e[0].at <= t)
            promote(k, t);
    }
}

/* Retries ran out: clients with the fail_reasons option get WORK_WARNING
 * naming the cause just before their WORK_FAIL. */
static void fail_retries_out(core *k, idx j, int timed_out)
{
    job_rec *r = J(j);
    char why[96];
    int w = snprintf(why, sizeof(why), "retries exhausted after %u attempts: %s",
                     (unsigned)r->retries, timed_out ? "CAN_DO_TIMEOUT expired" : "worker lost");
    const char *p[2] = {r->handle.p, why};
    size_t n[2] = {r->handle.len, (size_t)w};
    for (uint32_t i = r->nclients; i-- > 0; ) {
        if (C(r->clients[i])->fail_reasons)
            emit(k, r->clients[i], WORK_WARNING, 2, p, n);
        emit(k, r->clients[i], WORK_FAIL, 1, p, n);
    }
}

static void requeue(core *k, idx j, int timed_out)
{
    job_rec *r = J(j);
    fn_rec *f = F(r->fn);
    r->retries++;
    if (k->job_retries && r->retries >= k->job_retries) {
        f->failed++;
        fail_retries_out(k, j, timed_out);
        core_free_job(k, j);
        return;
    }
    f->requeued++;
    mark_dirty(k, r->fn);
    run_unlink(k, j);
    r = J(j);
    r->timer = 0;
    r->num = r->den = 0;
    board_show(k, j, 0);
    r->since = now(k);
    q_push(k, j);
    wake(k, r->fn);
}

double core_tick(core *k)
{
    double t = now(k);
    if (k->t.epochs.n)
        promote(k, t);
    heap *d = &k->t.deadlines;
    while (d->n && d->e[0].at <= t) {
        heap_ent e = heap_pop(d);
        if (J(e.job)->live && J(e.job)->timer == e.tok) {
            J(e.job)->timer = 0;
            requeue(k, e.job, 1);
        }
    }
    while (d->n && !(J(d->e[0].job)->live && J(d->e[0].job)->timer == d->e[0].tok))
        heap_pop(d);
    double due = -1;
    if (k->t.epochs.n)
        due = k->t.epochs.e[0].at;
    if (d->n && (due < 0 || d->e[0].at < due))
        due = d->e[0].at;
    if (due < 0 && !k->t.epochs.n && !d->n)
        return -1;
    return due - t > 0 ? due - t : 0.0;
}

/* -- submit, sleep, grab ------------------------------------------------------------------ */

static int make_handle(core *k, idx j)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)J(j)->no);
    size_t len = k->prefix.len + (size_t)n;
    char *p = malloc(len);
    if (p == NULL)
        return -1;
    memcpy(p, k->prefix.p, k->prefix.len);
    memcpy(p + k->prefix.len, num, (size_t)n);
    J(j)->handle.p = p;
    J(j)->handle.len = (uint32_t)len;
    return ht_put(&k->t.by_handle, 0, p, len, j);
}

static idx new_job(core *k, idx f, const char *u, size_t ul, const char *d, size_t dl,
                   int prio, int bg, const char *red, size_t rl, int has_red,
                   const args_t *a)
{
    idx j = ct_job_new(&k->t);
    if (j == NIL)
        return NIL;
    J(j)->no = k->t.count + 1;
    J(j)->spooled = (uint8_t)a->spooled;
    J(j)->size = a->size;
    if (blob_set(&J(j)->unique, u, ul) < 0 || blob_set(&J(j)->data, d, dl) < 0 ||
        (has_red && blob_set(&J(j)->reducer, red, rl) < 0) || make_handle(k, j) < 0) {
        ht_del(&k->t.by_handle, 0, J(j)->handle.p, J(j)->handle.len);
        ct_job_del(&k->t, j);
        return NIL;
    }
    k->t.count++;
    if (k->h.claim)
        J(j)->held = (uint8_t)k->h.claim(k->h.ctx, J(j)->no);
    job_rec *r = J(j);
    r->fn = f;
    r->prio = (uint8_t)prio;
    r->bg = r->keep = (uint8_t)bg;
    r->has_reducer = (uint8_t)has_red;
    r->tprev = k->t.jtail;
    if (k->t.jtail) J(k->t.jtail)->tnext = j; else k->t.jhead = j;
    k->t.jtail = j;
    k->t.live_jobs++;
    if (ul)
        job_index(k, j);
    return j;
}

void core_submit(core *k, idx c, const char *fname, size_t fl, const char *u, size_t ul,
                 const char *d, size_t dl, int prio, int bg, int64_t when,
                 const char *red, size_t rl, int has_red, const args_t *a)
{
    idx f = fn_get(k, fname, fl, 1);
    if (f == NIL) {
        spool_drop_args(k, a);
        k->out.failed = 1;
        return;
    }
    idx j = ul ? find_twin(k, f, u, ul, d, dl, a->spooled) : NIL;
    if (j != NIL) {
        spool_drop_args(k, a);      /* coalesced: the new payload is dropped */
        if (bg && k->journal && !J(j)->logged && k->jfailed) {
            emit_error(k, c, "QUEUE_ERROR", "Job queue could not be written to disk");
            return;
        }
        if (bg) {
            J(j)->keep = 1;
            if (k->journal && !J(j)->logged && journal_ack(k, c, j, 0) < 0)
                return;
        } else
            attach(k, c, j);
        J(j)->ignore = 0;
    } else {
        int64_t limit = F(f)->maxq[prio];
        if (limit > 0 && (int64_t)F(f)->total >= limit) {
            spool_drop_args(k, a);
            emit_error(k, c, "QUEUE_ERROR", "Job queue is full");
            return;
        }
        if (bg && k->journal && k->jfailed) {
            spool_drop_args(k, a);
            emit_error(k, c, "QUEUE_ERROR", "Job queue could not be written to disk");
            return;
        }
        if (a->spooled && !spool_room(k, a->size)) {
            spool_drop_args(k, a);
            emit_error(k, c, "QUEUE_ERROR", "Spool is full (--max-spool-bytes)");
            return;
        }
        j = new_job(k, f, u, ul, d, dl, prio, bg, red, rl, has_red, a);
        if (j == NIL) {
            if (a->spooled)
                k->spool_bytes -= a->size;
            spool_drop_args(k, a);
            k->out.failed = 1;
            return;
        }
        F(f)->total++;
        mark_dirty(k, f);
        F(f)->submitted++;
        if (!bg)
            attach(k, c, j);
        double t = J(j)->since = now(k);
        if (when && (double)when > t) {
            heap_ent e = {j, ++k->t.seq, (double)when};
            if (heap_push(&k->t.epochs, e) == 0) {
                J(j)->waiting = 1;
                F(f)->waiting++;
            } else {
                q_push(k, j);       /* no room to wait: due now */
                wake(k, f);
            }
        } else {
            q_push(k, j);
            wake(k, f);
        }
        if (bg && k->journal && journal_ack(k, c, j, when) < 0)
            return;
    }
    const char *p[1] = {J(j)->handle.p};
    size_t n[1] = {J(j)->handle.len};
    emit(k, c, JOB_CREATED, 1, p, n);
}

/* A background submission that is not acknowledged after all
 * (coordinator/journaling.py drop): no longer a background job, freed when
 * a worker reaches it unless foreground clients wait for it. */
void core_unacked(core *k, idx j)
{
    job_rec *r = J(j);
    r->keep = r->bg = 0;
    if (!r->nclients) {
        r->ignore = 1;
        if (r->indexed)
            job_unindex(k, j);
    }
}

/* A background job read back from the journal (coordinator/journaling.py
 * restore): its number and handle as journaled, `runs` attempts made, queued
 * now or waiting for `when`; no JOB_CREATED, no wakeup (nobody is connected
 * yet). Returns -1 when memory runs out. */
int core_restore(core *k, uint64_t no, const char *h, size_t hl, const char *fname, size_t fl,
                 const char *u, size_t ul, const char *d, size_t dl, int prio, int64_t when,
                 int spooled, uint64_t size, uint32_t runs)
{
    idx f = fn_get(k, fname, fl, 1);
    idx j = f == NIL ? NIL : ct_job_new(&k->t);
    if (j == NIL)
        return -1;
    job_rec *r = J(j);
    r->no = no;
    r->spooled = (uint8_t)spooled;
    r->size = size;
    if (blob_set(&r->unique, u, ul) < 0 || blob_set(&r->data, d, dl) < 0 ||
        blob_set(&r->handle, h, hl) < 0 ||
        ht_put(&k->t.by_handle, 0, r->handle.p, r->handle.len, j) < 0) {
        ct_job_del(&k->t, j);
        return -1;
    }
    if (no > k->t.count)
        k->t.count = no;
    if (k->h.claim)
        r->held = (uint8_t)k->h.claim(k->h.ctx, no);
    r->fn = f;
    r->prio = (uint8_t)prio;
    r->bg = r->keep = r->logged = 1;
    r->retries = runs;
    r->tprev = k->t.jtail;
    if (k->t.jtail) J(k->t.jtail)->tnext = j; else k->t.jhead = j;
    k->t.jtail = j;
    k->t.live_jobs++;
    if (ul)
        job_index(k, j);
    if (spooled)
        k->spool_bytes += size;
    k->jlive += journal_submit_size(k, j);
    k->jjobs++;
    F(f)->total++;
    mark_dirty(k, f);
    double t = r->since = now(k);
    if (when && (double)when > t) {
        heap_ent e = {j, ++k->t.seq, (double)when};
        if (heap_push(&k->t.epochs, e) == 0) {
            r->waiting = 1;
            F(f)->waiting++;
            return 0;
        }
    }
    q_push(k, j);
    return 0;
}

void core_pre_sleep(core *k, idx c)
{
    promote_due(k);
    for (;;) {
        idx g = pick(k, c);
        if (g == NIL) {
            sleep_conn(k, c);
            return;
        }
        if (q_peek(k, R(g)->fn) != NIL) {
            emit0(k, c, NOOP);
            return;
        }
    }
}

static void assign(core *k, idx c, idx j, int kind, const blob *ref)
{
    job_rec *r = J(j);
    fn_rec *f = F(r->fn);
    const char *p[5] = {r->handle.p, f->name.p, r->unique.p, r->reducer.p, r->data.p};
    size_t n[5] = {r->handle.len, f->name.len, r->unique.len, r->reducer.len, r->data.len};
    if (r->spooled) {
        int ptype = JOB_ASSIGN_UNIQ, nargs = 3;
        if (kind == GRAB_JOB) {
            ptype = JOB_ASSIGN;
            nargs = 2;
        } else if (kind == GRAB_JOB_ALL && r->has_reducer && r->reducer.len) {
            ptype = JOB_ASSIGN_ALL;
            nargs = 4;
        }
        emit_spooled(k, c, ptype, nargs, p, n, ref->p, ref->len, r->size);
        return;
    }
    if (kind == GRAB_JOB) {
        p[2] = r->data.p; n[2] = r->data.len;
        emit(k, c, JOB_ASSIGN, 3, p, n);
    } else if (kind == GRAB_JOB_ALL && r->has_reducer && r->reducer.len) {
        emit(k, c, JOB_ASSIGN_ALL, 5, p, n);
    } else {
        p[3] = r->data.p; n[3] = r->data.len;
        emit(k, c, JOB_ASSIGN_UNIQ, 4, p, n);
    }
}

void core_grab(core *k, idx c, int kind)
{
    C(c)->sleeping = 0;
    C(c)->noop_sent = 0;
    promote_due(k);
    idx g, j;
    blob ref = {0};
    for (;;) {
        g = pick(k, c);
        if (g == NIL) {
            emit0(k, c, NO_JOB);
            return;
        }
        j = q_take(k, R(g)->fn);
        if (j == NIL)
            continue;
        if (!J(j)->spooled)
            break;
        if (spool_share(k, j, J(j)->data.p, J(j)->data.len, J(j)->size, &ref) == 0)
            break;
        payload_lost(k, j);         /* and the worker gets the next job */
    }
    job_rec *r = J(j);
    r->worker = c;
    board_show(k, j, 1);
    if (r->logged)
        journal_run(k, j);
    double t = now(k);
    record(&F(r->fn)->waits, t - r->since);
    r = J(j);
    r->since = t;
    F(r->fn)->running++;
    mark_dirty(k, r->fn);
    r->rprev = C(c)->rtail;
    r->rnext = NIL;
    if (C(c)->rtail) J(C(c)->rtail)->rnext = j; else C(c)->rhead = j;
    C(c)->rtail = j;
    reg_rec *reg = R(g);
    int64_t tmo = reg->tmo[reg->n - 1];
    if (tmo > 0) {
        heap_ent e = {j, ++k->t.token, t + (double)(tmo > MIN_TIMEOUT_MS ? tmo : MIN_TIMEOUT_MS) / 1000.0};
        if (heap_push(&k->t.deadlines, e) == 0)
            J(j)->timer = e.tok;
    }
    if (k->round_robin)
        reg_rotate(k, g);
    assign(k, c, j, kind, &ref);
    blob_clear(&ref);
}

/* -- the end of a connection ------------------------------------------------------------- */

void core_disconnect(core *k, int64_t id)
{
    idx c = conn_find(k, id);
    if (c == NIL)
        return;
    ht_del(&k->t.by_conn, 0, (const char *)&id, sizeof(id));
    k->t.live_conns--;
    conn_rec *r = C(c);
    r->alive = 0;
    r->sleeping = 0;
    for (uint32_t i = 0; i < C(c)->natt; i++) {
        job_rec *jr = J(C(c)->attached[i]);
        uint32_t kept = 0;
        for (uint32_t x = 0; x < jr->nclients; x++)
            if (jr->clients[x] != c)
                jr->clients[kept++] = jr->clients[x];
        jr->nclients = kept;
        if (!kept && !jr->keep)
            jr->ignore = 1;
    }
    C(c)->natt = 0;
    for (idx j = C(c)->rhead; j; ) {
        idx next = J(j)->rnext;
        requeue(k, j, 0);
        j = next;
    }
    reg_reset(k, c);
    ct_conn_del(&k->t, c);
}

void core_close(core *k, idx c)
{
    emit_close(k, c);
    core_disconnect(k, C(c)->id);
}

int core_cancel(core *k, const char *handle, size_t n)
{
    idx j = job_by_handle(k, handle, n);
    if (j == NIL)
        return 0;
    core_fail_clients(k, j);
    job_rec *r = J(j);
    for (uint32_t i = 0; i < r->nclients; i++)
        detach(k, r->clients[i], j);
    r->nclients = 0;
    r->ignore = 1;
    r->bg = r->keep = 0;
    if (r->logged)
        journal_end(k, j);
    if (r->indexed)
        job_unindex(k, j);
    return 1;
}
