/* The C core: gearmand 1.1.20 job semantics over the C job table,
 * sans-IO, the same operations and output as mpgearman/coordinator/core.py
 * (the executable specification; its docstrings say why each rule is so).
 *
 * Output: every reply is an (connection id, bytes) record appended to the
 * core's output list; a Close is a record with close = 1. The caller drains
 * it after each call (core.c turns it into Python objects).
 */
#ifndef MPG_CORE_H
#define MPG_CORE_H

#include "core_table.h"

typedef struct {
    int64_t conn;
    uint64_t off, len;
    int close;
    uint32_t hlen;              /* > 0: a spooled send, head then the spool name */
    uint64_t ssize;             /* ... and the size of the spooled payload */
} out_rec;

typedef struct {
    out_rec *recs;
    uint32_t n, cap;
    char *buf;
    uint64_t used, size;
    int failed;                 /* an allocation failed: the batch is lost */
} outq;

typedef double (*clock_fn)(void *ctx);

typedef struct {                /* a JOB_CREATED that waits for the journal write */
    uint32_t out;               /* its index in the output batch */
    idx job;
    uint64_t no;
} ack_rec;

/* What the core asks of the process around it (core.c calls Python):
 * spool names (coordinator/spoolref.py: share makes another name for the
 * same bytes, 0 or -1 when it cannot; release drops one) and the job
 * status board (ipc/board.py). Any of them may be NULL (nothing to do;
 * a NULL share fails). */
typedef struct {
    int (*share)(void *ctx, const blob *handle, const char *name, size_t n, uint64_t size,
                 blob *out);
    void (*release)(void *ctx, const char *name, size_t n, uint64_t size);
    int (*claim)(void *ctx, uint64_t no);
    void (*show)(void *ctx, uint64_t no, int running, uint32_t num, uint32_t den);
    void (*unclaim)(void *ctx, uint64_t no, int held);
    /* keep (on) or let go (off) the spooled payload of a journaled job;
     * -1 when it cannot be kept */
    int (*keep)(void *ctx, const blob *handle, const char *name, size_t n, uint64_t size,
                int on);
    void *ctx;
} core_hooks;

typedef struct {
    table t;
    outq out;
    blob prefix;                /* "<prefix>:" */
    uint32_t wakeup;            /* NOOPs per queued job, 0 = all sleepers */
    uint32_t job_retries;
    int round_robin, exceptions;
    clock_fn clock;
    void *clock_ctx;
    core_hooks h;
    uint64_t spool_bytes;       /* spooled payloads of live jobs */
    uint64_t max_spool;         /* --max-spool-bytes, 0 = no limit */
    idx *dirty;                 /* functions whose figures changed, first change first */
    uint32_t ndirty, capdirty;
    int journal;                /* journal records are made (core_journal.c) */
    char *jbuf;                 /* this turn's records, taken by take_journal() */
    size_t jused, jsize;
    uint64_t jlive, jjobs;      /* SUBMIT record bytes and number of live journaled jobs */
    int jfailed;                /* the last write failed: background submissions refused */
    ack_rec *acks;              /* jobs journaled since take_acks(), for journal_failed */
    uint32_t nacks, capacks;
} core;

/* A packet's arguments as the parser cuts them (see protocol/packets.py). */
typedef struct {
    const char *p[7];
    size_t n[7];
    int count;
    int spooled;                /* the last argument is a spool name ... */
    uint64_t size;              /* ... of a payload of this size */
} args_t;

int core_init(core *k, const char *prefix, size_t plen, uint32_t wakeup,
              uint32_t job_retries, int round_robin, int exceptions);
void core_fini(core *k);

int core_connect(core *k, int64_t conn, const char *peer, size_t plen, int64_t fd);
void core_disconnect(core *k, int64_t conn);
/* 0, or -1 when the arguments do not fit the type (nothing done). */
int core_packet(core *k, int64_t conn, int ptype, const args_t *a);
/* Seconds until the next timer, or -1 for none. */
double core_tick(core *k);
int core_cancel(core *k, const char *handle, size_t n);

/* ops used by the handlers (core_ops.c) */
void emit(core *k, idx c, int ptype, int nargs, const char *const *p, const size_t *n);
void emit_raw(core *k, idx c, const char *p, size_t n);
char *out_reserve(core *k, idx c, uint64_t len, int close);
void emit_close(core *k, idx c);
void emit_error(core *k, idx c, const char *code, const char *text);
idx fn_get(core *k, const char *name, size_t n, int create);
void core_submit(core *k, idx c, const char *fname, size_t fl, const char *unique, size_t ul,
                 const char *data, size_t dl, int prio, int bg, int64_t when,
                 const char *reducer, size_t rl, int has_reducer, const args_t *a);
void core_grab(core *k, idx c, int kind);
void core_pre_sleep(core *k, idx c);
void core_free_job(core *k, idx j);
void core_fail_clients(core *k, idx j);
idx core_owned(core *k, idx c, const char *handle, size_t n);
idx job_by_handle(core *k, const char *handle, size_t n);
void reg_add(core *k, idx c, idx f, int64_t timeout_ms);
void reg_remove(core *k, idx c, idx f);
void reg_reset(core *k, idx c);
void core_close(core *k, idx c);
idx conn_find(core *k, int64_t id);
void mark_dirty(core *k, idx f);

/* spool refs and the status board (core_spool.c) */
void spool_drop_args(core *k, const args_t *a);
void spool_drop_job(core *k, idx j);
int spool_room(core *k, uint64_t size);
int spool_share(core *k, idx j, const char *name, size_t n, uint64_t size, blob *out);
void emit_spooled(core *k, idx c, int ptype, int nargs, const char *const *p,
                  const size_t *n, const char *name, size_t nl, uint64_t size);
void board_show(core *k, idx j, int running);
void payload_lost(core *k, idx j);
int fn_drop(core *k, idx f);
void journal_submit(core *k, idx j, int64_t when);
void journal_run(core *k, idx j);
void journal_end(core *k, idx j);
size_t journal_submit_size(core *k, idx j);
int journal_ack(core *k, idx c, idx j, int64_t when);
void journal_failed(core *k, idx j, uint64_t no);
void core_unacked(core *k, idx j);
int64_t journal_snapshot(core *k);
int core_restore(core *k, uint64_t no, const char *h, size_t hl, const char *fname, size_t fl,
                 const char *u, size_t ul, const char *d, size_t dl, int prio, int64_t when,
                 int spooled, uint64_t size, uint32_t runs);

#endif
