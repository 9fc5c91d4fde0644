/* The acceptor loop's connections, by id (the records' key) and by
 * descriptor (epoll's): a chained hash table that doubles as it fills, and
 * an array indexed by fd.
 */
#include "aloop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static inline uint64_t
slot_of(al_loop *L, uint64_t id)
{
    return ((id ^ (id >> 29)) * 0x9E3779B97F4A7C15ULL >> 20) & L->hash_mask;
}

al_conn *
al_find(al_loop *L, uint64_t id)
{
    al_conn *c = L->hash[slot_of(L, id)];
    while (c && c->id != id)
        c = c->hnext;
    return c;
}

static int
grow_hash(al_loop *L)
{
    uint64_t size = (L->hash_mask + 1) * 2;
    al_conn **table = calloc(size, sizeof *table);
    if (table == NULL)
        return -1;
    al_conn **old = L->hash;
    uint64_t old_size = L->hash_mask + 1;
    L->hash = table;
    L->hash_mask = size - 1;
    for (uint64_t i = 0; i < old_size; i++) {
        while (old[i]) {
            al_conn *c = old[i];
            old[i] = c->hnext;
            uint64_t s = slot_of(L, c->id);
            c->hnext = table[s];
            table[s] = c;
        }
    }
    free(old);
    return 0;
}

int
al_insert(al_loop *L, al_conn *c)
{
    if (c->fd >= L->by_fd_cap) {
        int cap = L->by_fd_cap * 2 > c->fd + 1 ? L->by_fd_cap * 2 : c->fd + 1;
        al_conn **t = realloc(L->by_fd, (size_t)cap * sizeof *t);
        if (t == NULL)
            return -1;
        memset(t + L->by_fd_cap, 0, (size_t)(cap - L->by_fd_cap) * sizeof *t);
        L->by_fd = t;
        L->by_fd_cap = cap;
    }
    if (L->nconns >= L->hash_mask && grow_hash(L) < 0)
        return -1;
    uint64_t s = slot_of(L, c->id);
    c->hnext = L->hash[s];
    L->hash[s] = c;
    L->by_fd[c->fd] = c;
    L->nconns++;
    return 0;
}

void
al_unlink(al_loop *L, al_conn *c)
{
    al_conn **p = &L->hash[slot_of(L, c->id)];
    while (*p && *p != c)
        p = &(*p)->hnext;
    if (*p)
        *p = c->hnext;
    L->by_fd[c->fd] = NULL;
    L->nconns--;
}

/* Visit every connection (rare: sweeps, lingering, unmuting, shutdown). */
