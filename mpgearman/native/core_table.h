/* The coordinator's job table in C: records, pools and indexes.
 *
 * Owns: the layout of jobs, functions, connections and registrations, kept
 * in index-addressed pools (a record names another by its pool index, never
 * by a pointer; index 0 is "none"), each pool with a free list, behind a
 * versioned header; and the hash indexes over them (function names, job
 * handles, connection ids, per-function uniques and "-" data, the
 * cross-function unique chain heads).
 * Must not: decide anything about a job's life (core_ops.c and
 * core_handlers.c do), or know Python (core.c is the binding).
 *
 * Single writer: only the coordinator calls in here.
 */
#ifndef MPG_CORE_TABLE_H
#define MPG_CORE_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define CT_MAGIC 0x4D50474Au      /* "MPGJ" */
#define CT_VERSION 1u
#define NIL 0u
#define HIST_BUCKETS 15         /* len(BOUNDS) + 1 of coordinator/queues.py */

typedef struct {                /* bucket counts, then the sum of the seconds */
    uint64_t n[HIST_BUCKETS];
    double sum;
} hist;

typedef uint32_t idx;

typedef struct { char *p; uint32_t len; } blob;   /* owned bytes; p may be NULL if len 0 */

typedef struct {
    idx job;
    uint64_t tok;       /* deadline token, or epoch sequence */
    double at;
} heap_ent;

typedef struct {
    heap_ent *e;
    uint32_t n, cap;
} heap;

typedef struct {
    blob handle, unique, data, reducer;
    uint64_t no;
    idx fn, worker;
    idx rprev, rnext;           /* in the worker's running list */
    idx qnext;                  /* in a priority queue */
    idx tprev, tnext;           /* in the table, creation order */
    idx same_unique;            /* older job with this unique, other function */
    idx *clients;               /* conn indexes, oldest first, duplicates kept */
    uint32_t nclients, capclients;
    uint32_t num, den, retries;
    uint64_t timer;             /* deadline token, 0 = none */
    double since;               /* last queued, then when assigned */
    uint8_t prio, ignore, bg, keep, indexed, has_reducer, live, waiting;
    uint8_t spooled, held;      /* data is a spool name; holds its status board slot */
    uint64_t size;              /* of the spooled payload */
    uint8_t logged;             /* its SUBMIT is in the journal, no END yet */
    idx free_next;
} job_rec;

typedef struct {
    blob name;
    idx qh[3], qt[3];
    uint32_t qn[3];             /* per priority, ignored jobs included */
    uint32_t queued, total, running, workers, waiting;
    int64_t maxq[3];
    idx slh, slt;               /* sleeper list of registration records */
    uint64_t submitted, completed, failed, exceptions, requeued;
    hist waits, runs;           /* queued -> assigned, assigned -> ended */
    int has_hist;               /* made when its first job is queued */
    uint8_t dirty, dropped;     /* in the dirty list; dropped (admin), no name */
    uint64_t order;             /* listing order: creation (or re-creation) */
} fn_rec;

typedef struct {                /* one connection's registrations for one function */
    idx conn, fn;
    int64_t *keys;              /* ascending; parallel to tmo; the last one serves */
    int64_t *tmo;
    uint32_t n, cap;
    idx slprev, slnext;
    uint8_t in_sl;
    idx free_next;
} reg_rec;

typedef struct {
    int64_t id;
    blob peer, client_id;
    int64_t fd;
    uint8_t exceptions, alive, sleeping, noop_sent, in_broad, live;
    uint8_t fail_reasons;       /* OPTION_REQ fail_reasons: say why retries ran out */
    idx *regs;                  /* reg records, in first-registration order */
    uint32_t nregs, capregs;
    idx rhead, rtail;           /* running jobs, assignment order */
    idx *attached;              /* jobs waited on (no duplicates) */
    uint32_t natt, capatt;
    idx brprev, brnext;
    uint64_t seq;               /* connection order, for the listings */
    idx free_next;
} conn_rec;

typedef struct hnode {
    struct hnode *next;
    uint64_t h;
    uint32_t tag, klen;
    const char *k;              /* borrowed from the record that owns the key, or inl */
    idx val;
    char inl[8];                /* a key of up to 8 bytes is copied here: records in
                                   pools move when a pool grows */
} hnode;

typedef struct {
    hnode **b;
    uint32_t nb, n;
} htab;

typedef struct {
    uint32_t magic, version;
    job_rec *jobs; uint32_t njobs, capjobs; idx job_free;
    fn_rec *fns; uint32_t nfns, capfns;                 /* never freed: status lists them all */
    reg_rec *regs; uint32_t nregs, capregs; idx reg_free;
    conn_rec *conns; uint32_t nconns, capconns; idx conn_free;
    htab by_name, by_handle, by_conn, by_unique, by_data, by_gunique;
    htab by_reg;                /* (conn, function) -> its registration record */
    idx jhead, jtail;           /* live jobs, creation order */
    uint32_t live_jobs, live_conns;
    idx brh, brt;               /* broad sleepers */
    heap epochs, deadlines;
    uint64_t count, seq, token, conn_seq;
    int64_t top, bottom;
} table;

int ct_init(table *t);
void ct_free(table *t);

int blob_set(blob *b, const char *p, size_t n);
void blob_clear(blob *b);
int blob_eq(const blob *b, const char *p, size_t n);

idx ct_job_new(table *t);
void ct_job_del(table *t, idx j);
idx ct_fn_new(table *t, const char *name, size_t n);
idx ct_reg_new(table *t);
void ct_reg_del(table *t, idx r);
idx ct_conn_new(table *t);
void ct_conn_del(table *t, idx c);

uint64_t ct_hash(uint32_t tag, const char *k, size_t n);
idx ht_get(htab *h, uint32_t tag, const char *k, size_t n);
int ht_put(htab *h, uint32_t tag, const char *k, size_t n, idx val);
void ht_del(htab *h, uint32_t tag, const char *k, size_t n);

int heap_push(heap *h, heap_ent e);
heap_ent heap_pop(heap *h);

int arr_push(idx **a, uint32_t *n, uint32_t *cap, idx v);

#endif
