/* Pools, free lists, hash indexes and heaps of the C job table
 * (core_table.h says what each record holds). */
#include <stdlib.h>
#include <string.h>

#include "core_table.h"

#define POOL_MAX 0x7FFFFFF0u

static int grow(void **arr, uint32_t *cap, uint32_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    if (need > POOL_MAX)
        return -1;
    uint32_t cap2 = *cap ? *cap : 16;
    while (cap2 < need)
        cap2 = cap2 > POOL_MAX / 2 ? POOL_MAX : cap2 * 2;
    void *p = realloc(*arr, (size_t)cap2 * size);
    if (p == NULL)
        return -1;
    memset((char *)p + (size_t)*cap * size, 0, (size_t)(cap2 - *cap) * size);
    *arr = p;
    *cap = cap2;
    return 0;
}

int arr_push(idx **a, uint32_t *n, uint32_t *cap, idx v)
{
    if (*n == UINT32_MAX || grow((void **)a, cap, *n + 1, sizeof(idx)) < 0)
        return -1;
    (*a)[(*n)++] = v;
    return 0;
}

int blob_set(blob *b, const char *p, size_t n)
{
    if (n > UINT32_MAX)
        return -1;
    char *q = malloc(n ? n : 1);
    if (q == NULL)
        return -1;
    if (n)
        memcpy(q, p, n);
    free(b->p);
    b->p = q;
    b->len = (uint32_t)n;
    return 0;
}

void blob_clear(blob *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
}

int blob_eq(const blob *b, const char *p, size_t n)
{
    return b->len == n && (n == 0 || memcmp(b->p, p, n) == 0);
}

static int ht_init(htab *h)
{
    h->nb = 64;
    h->n = 0;
    h->b = calloc(h->nb, sizeof(hnode *));
    return h->b ? 0 : -1;
}

static void ht_fini(htab *h)
{
    for (uint32_t i = 0; i < h->nb && h->b; i++) {
        hnode *n = h->b[i];
        while (n) {
            hnode *next = n->next;
            free(n);
            n = next;
        }
    }
    free(h->b);
    h->b = NULL;
}

int ct_init(table *t)
{
    memset(t, 0, sizeof(*t));
    t->magic = CT_MAGIC;
    t->version = CT_VERSION;
    /* index 0 of every pool is the "none" record */
    if (grow((void **)&t->jobs, &t->capjobs, 1, sizeof(job_rec)) < 0 ||
        grow((void **)&t->fns, &t->capfns, 1, sizeof(fn_rec)) < 0 ||
        grow((void **)&t->regs, &t->capregs, 1, sizeof(reg_rec)) < 0 ||
        grow((void **)&t->conns, &t->capconns, 1, sizeof(conn_rec)) < 0)
        return -1;
    t->njobs = t->nfns = t->nregs = t->nconns = 1;
    if (ht_init(&t->by_name) || ht_init(&t->by_handle) || ht_init(&t->by_conn) ||
        ht_init(&t->by_unique) || ht_init(&t->by_data) || ht_init(&t->by_gunique) ||
        ht_init(&t->by_reg))
        return -1;
    return 0;
}

void ct_free(table *t)
{
    for (uint32_t i = 1; i < t->njobs; i++) {
        job_rec *j = &t->jobs[i];
        blob_clear(&j->handle); blob_clear(&j->unique);
        blob_clear(&j->data); blob_clear(&j->reducer);
        free(j->clients);
    }
    for (uint32_t i = 1; i < t->nfns; i++)
        blob_clear(&t->fns[i].name);
    for (uint32_t i = 1; i < t->nregs; i++) {
        free(t->regs[i].keys);
        free(t->regs[i].tmo);
    }
    for (uint32_t i = 1; i < t->nconns; i++) {
        conn_rec *c = &t->conns[i];
        blob_clear(&c->peer); blob_clear(&c->client_id);
        free(c->regs); free(c->attached);
    }
    free(t->jobs); free(t->fns); free(t->regs); free(t->conns);
    ht_fini(&t->by_name); ht_fini(&t->by_handle); ht_fini(&t->by_conn);
    ht_fini(&t->by_unique); ht_fini(&t->by_data); ht_fini(&t->by_gunique);
    ht_fini(&t->by_reg);
    free(t->epochs.e); free(t->deadlines.e);
    memset(t, 0, sizeof(*t));
}

idx ct_job_new(table *t)
{
    idx j = t->job_free;
    if (j) {
        t->job_free = t->jobs[j].free_next;
    } else {
        if (grow((void **)&t->jobs, &t->capjobs, t->njobs + 1, sizeof(job_rec)) < 0)
            return NIL;
        j = t->njobs++;
    }
    job_rec *r = &t->jobs[j];
    idx *clients = r->clients;
    uint32_t cap = r->capclients;
    memset(r, 0, sizeof(*r));
    r->clients = clients;       /* keep the buffer of a reused slot */
    r->capclients = cap;
    r->live = 1;
    return j;
}

void ct_job_del(table *t, idx j)
{
    job_rec *r = &t->jobs[j];
    blob_clear(&r->handle); blob_clear(&r->unique);
    blob_clear(&r->data); blob_clear(&r->reducer);
    if (r->capclients > 16) {   /* a crowd of clients: give the memory back */
        free(r->clients);
        r->clients = NULL;
        r->capclients = 0;
    }
    r->nclients = 0;
    r->live = 0;
    r->free_next = t->job_free;
    t->job_free = j;
}

idx ct_fn_new(table *t, const char *name, size_t n)
{
    if (grow((void **)&t->fns, &t->capfns, t->nfns + 1, sizeof(fn_rec)) < 0)
        return NIL;
    idx f = t->nfns;
    memset(&t->fns[f], 0, sizeof(fn_rec));
    if (blob_set(&t->fns[f].name, name, n) < 0)
        return NIL;
    if (ht_put(&t->by_name, 0, t->fns[f].name.p, n, f) < 0) {
        blob_clear(&t->fns[f].name);
        return NIL;
    }
    t->nfns++;
    return f;
}

idx ct_reg_new(table *t)
{
    idx r = t->reg_free;
    if (r) {
        t->reg_free = t->regs[r].free_next;
    } else {
        if (grow((void **)&t->regs, &t->capregs, t->nregs + 1, sizeof(reg_rec)) < 0)
            return NIL;
        r = t->nregs++;
    }
    reg_rec *g = &t->regs[r];
    int64_t *keys = g->keys, *tmo = g->tmo;
    uint32_t cap = g->cap;
    memset(g, 0, sizeof(*g));
    g->keys = keys; g->tmo = tmo; g->cap = cap;
    return r;
}

void ct_reg_del(table *t, idx r)
{
    t->regs[r].n = 0;
    t->regs[r].conn = NIL;
    t->regs[r].free_next = t->reg_free;
    t->reg_free = r;
}

idx ct_conn_new(table *t)
{
    idx c = t->conn_free;
    if (c) {
        t->conn_free = t->conns[c].free_next;
    } else {
        if (grow((void **)&t->conns, &t->capconns, t->nconns + 1, sizeof(conn_rec)) < 0)
            return NIL;
        c = t->nconns++;
    }
    memset(&t->conns[c], 0, sizeof(conn_rec));
    t->conns[c].live = 1;
    return c;
}

void ct_conn_del(table *t, idx c)
{
    conn_rec *r = &t->conns[c];
    blob_clear(&r->peer); blob_clear(&r->client_id);
    free(r->regs); free(r->attached);
    r->regs = r->attached = NULL;
    r->live = 0;
    r->free_next = t->conn_free;
    t->conn_free = c;
}

/* FNV-1a over the tag and the key */
uint64_t ct_hash(uint32_t tag, const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ tag;
    h *= 1099511628211ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ull;
    }
    return h;
}

idx ht_get(htab *h, uint32_t tag, const char *k, size_t n)
{
    uint64_t hv = ct_hash(tag, k, n);
    for (hnode *e = h->b[hv & (h->nb - 1)]; e; e = e->next)
        if (e->h == hv && e->tag == tag && e->klen == n && (n == 0 || memcmp(e->k, k, n) == 0))
            return e->val;
    return NIL;
}

static void ht_grow(htab *h)
{
    if (h->nb >= (1u << 30))
        return;
    uint32_t nb = h->nb * 2;
    hnode **b = calloc(nb, sizeof(hnode *));
    if (b == NULL)
        return;         /* longer chains, still correct */
    for (uint32_t i = 0; i < h->nb; i++) {
        hnode *e = h->b[i];
        while (e) {
            hnode *next = e->next;
            e->next = b[e->h & (nb - 1)];
            b[e->h & (nb - 1)] = e;
            e = next;
        }
    }
    free(h->b);
    h->b = b;
    h->nb = nb;
}

/* Insert or replace. */
int ht_put(htab *h, uint32_t tag, const char *k, size_t n, idx val)
{
    uint64_t hv = ct_hash(tag, k, n);
    for (hnode *e = h->b[hv & (h->nb - 1)]; e; e = e->next)
        if (e->h == hv && e->tag == tag && e->klen == n && (n == 0 || memcmp(e->k, k, n) == 0)) {
            if (n > sizeof(e->inl))
                e->k = k;
            e->val = val;
            return 0;
        }
    hnode *e = malloc(sizeof(*e));
    if (e == NULL)
        return -1;
    e->h = hv; e->tag = tag; e->k = k; e->klen = (uint32_t)n; e->val = val;
    if (n <= sizeof(e->inl)) {
        if (n)
            memcpy(e->inl, k, n);
        e->k = e->inl;
    }
    e->next = h->b[hv & (h->nb - 1)];
    h->b[hv & (h->nb - 1)] = e;
    if (++h->n > h->nb)
        ht_grow(h);
    return 0;
}

void ht_del(htab *h, uint32_t tag, const char *k, size_t n)
{
    uint64_t hv = ct_hash(tag, k, n);
    hnode **pp = &h->b[hv & (h->nb - 1)];
    for (hnode *e = *pp; e; pp = &e->next, e = *pp)
        if (e->h == hv && e->tag == tag && e->klen == n && (n == 0 || memcmp(e->k, k, n) == 0)) {
            *pp = e->next;
            free(e);
            h->n--;
            return;
        }
}

static int ent_less(const heap_ent *a, const heap_ent *b)
{
    return a->at < b->at || (a->at == b->at && a->tok < b->tok);
}

int heap_push(heap *h, heap_ent e)
{
    if (grow((void **)&h->e, &h->cap, h->n + 1, sizeof(heap_ent)) < 0)
        return -1;
    uint32_t i = h->n++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!ent_less(&e, &h->e[p]))
            break;
        h->e[i] = h->e[p];
        i = p;
    }
    h->e[i] = e;
    return 0;
}

heap_ent heap_pop(heap *h)
{
    heap_ent top = h->e[0];
    heap_ent last = h->e[--h->n];
    uint32_t i = 0;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        const heap_ent *best = &last;
        if (l < h->n && ent_less(&h->e[l], best)) { m = l; best = &h->e[l]; }
        if (r < h->n && ent_less(&h->e[r], best)) { m = r; }
        if (m == i)
            break;
        h->e[i] = h->e[m];
        i = m;
    }
    if (h->n)
        h->e[i] = last;
    return top;
}
