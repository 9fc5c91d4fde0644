/* Binary requests in C: one small handler per packet type, as
 * coordinator/dispatch.py (argument checks, replies, WORK_* forwarding). */
#include <stdio.h>
#include <string.h>

#include "core.h"

#define J(i) (&k->t.jobs[i])
#define F(i) (&k->t.fns[i])
#define C(i) (&k->t.conns[i])

enum {
    CAN_DO = 1, CANT_DO, RESET_ABILITIES, PRE_SLEEP, SUBMIT_JOB = 7, GRAB_JOB = 9,
    WORK_STATUS = 12, WORK_COMPLETE, WORK_FAIL, GET_STATUS, ECHO_REQ, ECHO_RES,
    SUBMIT_JOB_BG, STATUS_RES = 20, SUBMIT_JOB_HIGH, SET_CLIENT_ID, CAN_DO_TIMEOUT,
    WORK_EXCEPTION = 25, OPTION_REQ, OPTION_RES, WORK_DATA, WORK_WARNING, GRAB_JOB_UNIQ,
    SUBMIT_JOB_HIGH_BG = 32, SUBMIT_JOB_LOW, SUBMIT_JOB_LOW_BG, SUBMIT_JOB_EPOCH = 36,
    SUBMIT_REDUCE_JOB, SUBMIT_REDUCE_JOB_BACKGROUND, GRAB_JOB_ALL, GET_STATUS_UNIQUE = 41,
    STATUS_RES_UNIQUE
};
enum { HIGH, NORMAL, LOW };
#define MAX_HANDLE 63
#define MAX_UNIQUE 64
#define MAX_TIMEOUT_TEXT 20
#define LMAX INT64_MAX
#define LMIN INT64_MIN

typedef void (*handler)(core *k, idx c, int ptype, const args_t *a);

/* C strtol over bytes, as coordinator/cnum.py: (value, overflowed). */
static int64_t cstrtol(const char *p, size_t n, int *overflow)
{
    size_t i = 0;
    *overflow = 0;
    while (i < n && (p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
        i++;
    int neg = i < n && p[i] == '-';
    if (i < n && (p[i] == '-' || p[i] == '+'))
        i++;
    uint64_t v = 0;
    int big = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        if (v > (UINT64_MAX - 9) / 10)
            big = 1;
        else
            v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (!neg && (big || v > (uint64_t)LMAX)) {
        *overflow = 1;
        return LMAX;
    }
    if (neg && (big || v > (uint64_t)LMAX + 1)) {
        *overflow = 1;
        return LMIN;
    }
    return neg ? (int64_t)(0 - v) : (int64_t)v;
}

static uint32_t atoi_u32(const char *p, size_t n)
{
    int o;
    return (uint32_t)((uint64_t)cstrtol(p, n, &o) & 0xFFFFFFFFu);
}

static size_t upto_nul(const char *p, size_t n)
{
    const char *z = n ? memchr(p, '\0', n) : NULL;
    return z ? (size_t)(z - p) : n;
}

static void not_expected(core *k, idx c, int t, const args_t *a)
{
    (void)t;
    spool_drop_args(k, a);
    emit_error(k, c, "INVALID_COMMAND", "Command not expected");
}

static void can_do(core *k, idx c, int t, const args_t *a)
{
    (void)t;
    idx f = fn_get(k, a->p[0], a->n[0], 1);
    if (f)
        reg_add(k, c, f, 0);
}

static void can_do_timeout(core *k, idx c, int t, const args_t *a)
{
    (void)t;
    if (a->n[1] > MAX_TIMEOUT_TEXT)
        return;
    int o;
    int64_t v = cstrtol(a->p[1], a->n[1], &o);
    if (o || v == LMAX || v == LMIN)
        return;
    idx f = fn_get(k, a->p[0], a->n[0], 1);
    if (f)
        reg_add(k, c, f, v > 0 ? v : 0);
}

static void cant_do(core *k, idx c, int t, const args_t *a)
{
    (void)t;
    idx f = fn_get(k, a->p[0], a->n[0], 0);
    if (f)
        reg_remove(k, c, f);
}

static void reset_abilities(core *k, idx c, int t, const args_t *a)
{
    (void)t; (void)a;
    reg_reset(k, c);
}

static void pre_sleep(core *k, idx c, int t, const args_t *a)
{
    (void)t; (void)a;
    core_pre_sleep(k, c);
}

static void grab(core *k, idx c, int t, const args_t *a)
{
    (void)a;
    core_grab(k, c, t);
}

static void set_client_id(core *k, idx c, int t, const args_t *a)
{
    (void)t;
    size_t n = upto_nul(a->p[0], a->n[0]);
    blob_set(&C(c)->client_id, a->p[0], n > 127 ? 127 : n);
}

/* p[0..n) equals `want` (lower case), ignoring ASCII case. */
static int option_is(const char *p, size_t n, const char *want)
{
    if (n != strlen(want))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch != want[i])
            return 0;
    }
    return 1;
}

static void option_req(core *k, idx c, int t, const args_t *a)
{
    (void)t;
    size_t n = upto_nul(a->p[0], a->n[0]);
    int exc = option_is(a->p[0], n, "exceptions");
    if (exc || option_is(a->p[0], n, "fail_reasons")) {
        if (exc)
            C(c)->exceptions = 1;
        else
            C(c)->fail_reasons = 1;
        emit(k, c, OPTION_RES, 1, a->p, a->n);
    } else {
        emit_error(k, c, "UNKNOWN_OPTION", "Server does not recognize given option");
    }
}

static void echo_req(core *k, idx c, int t, const args_t *a)
{
    (void)t;
    if (a->spooled)
        emit_spooled(k, c, ECHO_RES, 0, NULL, NULL, a->p[0], a->n[0], a->size);
    else
        emit(k, c, ECHO_RES, 1, a->p, a->n);
}

static void too_large_unique(core *k, idx c, const args_t *a)
{
    spool_drop_args(k, a);
    emit_error(k, c, "ARGUMENT_TOO_LARGE", "Unique value too large");
}

static void submit(core *k, idx c, int t, const args_t *a)
{
    if (a->n[1] > MAX_UNIQUE) {
        too_large_unique(k, c, a);
        return;
    }
    int prio = NORMAL, bg = 0;
    switch (t) {
    case SUBMIT_JOB_BG: bg = 1; break;
    case SUBMIT_JOB_HIGH: prio = HIGH; break;
    case SUBMIT_JOB_HIGH_BG: prio = HIGH; bg = 1; break;
    case SUBMIT_JOB_LOW: prio = LOW; break;
    case SUBMIT_JOB_LOW_BG: prio = LOW; bg = 1; break;
    default: break;
    }
    core_submit(k, c, a->p[0], a->n[0], a->p[1], a->n[1], a->p[2], a->n[2], prio, bg, 0,
                NULL, 0, 0, a);
}

static void submit_epoch(core *k, idx c, int t, const args_t *a)
{
    (void)t;
    int o;
    int64_t when = cstrtol(a->p[2], a->n[2], &o);
    if (o) {
        spool_drop_args(k, a);
        core_close(k, c);
    }
    else if (a->n[1] > MAX_UNIQUE)
        too_large_unique(k, c, a);
    else
        core_submit(k, c, a->p[0], a->n[0], a->p[1], a->n[1], a->p[3], a->n[3], NORMAL, 1,
                    when, NULL, 0, 0, a);
}

static void submit_reduce(core *k, idx c, int t, const args_t *a)
{
    if (a->n[1] > MAX_UNIQUE)
        too_large_unique(k, c, a);
    else
        core_submit(k, c, a->p[0], a->n[0], a->p[1], a->n[1], a->p[4], a->n[4], NORMAL,
                    t == SUBMIT_REDUCE_JOB_BACKGROUND, 0, a->p[2], a->n[2], 1, a);
}

/* handle + data to the attached clients, newest attachment first;
 * WORK_EXCEPTION as WORK_FAIL to clients without the exceptions option. */
static void forward_spooled(core *k, idx j, int ptype, const args_t *a)
{
    job_rec *r = J(j);
    int exc = ptype == WORK_EXCEPTION;
    uint32_t takers = 0;
    for (uint32_t i = 0; i < r->nclients; i++)
        takers += !exc || C(r->clients[i])->exceptions;
    if (!takers)
        spool_drop_args(k, a);
    const char *fp[1] = {r->handle.p};
    size_t fn[1] = {r->handle.len};
    for (uint32_t i = J(j)->nclients; i-- > 0; ) {
        idx to = J(j)->clients[i];
        if (exc && !C(to)->exceptions) {
            emit(k, to, WORK_FAIL, 1, fp, fn);
            continue;
        }
        blob ref = {0};
        if (--takers == 0) {
            emit_spooled(k, to, ptype, 1, a->p, a->n, a->p[1], a->n[1], a->size);
        } else if (spool_share(k, j, a->p[1], a->n[1], a->size, &ref) == 0) {
            emit_spooled(k, to, ptype, 1, a->p, a->n, ref.p, ref.len, a->size);
            blob_clear(&ref);
        } else {            /* no copy for this client: it alone fails */
            emit(k, to, WORK_FAIL, 1, fp, fn);
        }
    }
}

static void forward(core *k, idx j, int ptype, const args_t *a)
{
    if (a->spooled) {
        forward_spooled(k, j, ptype, a);
        return;
    }
    job_rec *r = J(j);
    const char *fp[1] = {r->handle.p};
    size_t fn[1] = {r->handle.len};
    for (uint32_t i = r->nclients; i-- > 0; ) {
        idx to = r->clients[i];
        if (ptype == WORK_EXCEPTION && !C(to)->exceptions)
            emit(k, to, WORK_FAIL, 1, fp, fn);
        else
            emit(k, to, ptype, 2, a->p, a->n);
    }
}

static void work_data(core *k, idx c, int t, const args_t *a)
{
    idx j = core_owned(k, c, a->p[0], a->n[0]);
    if (j == NIL) {
        spool_drop_args(k, a);
        emit_error(k, c, "JOB_NOT_FOUND", "Job does not exist on server");
    } else
        forward(k, j, t, a);
}

static void work_status(core *k, idx c, int t, const args_t *a)
{
    (void)t;
    idx j = core_owned(k, c, a->p[0], a->n[0]);
    if (j == NIL) {
        emit_error(k, c, "JOB_NOT_FOUND", "Job given in work result not found");
        return;
    }
    job_rec *r = J(j);
    r->num = atoi_u32(a->p[1], a->n[1]);
    r->den = atoi_u32(a->p[2], a->n[2] > 10 ? 10 : a->n[2]);
    board_show(k, j, 1);
    for (uint32_t i = r->nclients; i-- > 0; )
        emit(k, r->clients[i], WORK_STATUS, 3, a->p, a->n);
}

static void work_done(core *k, idx c, int t, const args_t *a)
{
    idx j = core_owned(k, c, a->p[0], a->n[0]);
    if (j == NIL) {
        spool_drop_args(k, a);
        if (t == WORK_EXCEPTION)
            emit_error(k, c, "JOB_NOT_FOUND",
                       "An exception was received for a job that does not exist");
        else
            emit_error(k, c, "JOB_NOT_FOUND", "Job given in work result not found");
        return;
    }
    if (t == WORK_EXCEPTION)
        F(J(j)->fn)->exceptions++;
    else
        F(J(j)->fn)->completed++;
    forward(k, j, t, a);
    core_free_job(k, j);
}

static void work_fail(core *k, idx c, int t, const args_t *a)
{
    (void)t;
    size_t n = upto_nul(a->p[0], a->n[0]);
    if (n > MAX_HANDLE) {
        emit_error(k, c, "ARGUMENT_TOO_LARGE",
                   "Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf");
        return;
    }
    idx j = core_owned(k, c, a->p[0], n);
    if (j == NIL) {
        emit_error(k, c, "JOB_NOT_FOUND", "Job given in work result not found");
        return;
    }
    job_rec *r = J(j);
    for (uint32_t i = r->nclients; i-- > 0; )
        emit(k, r->clients[i], WORK_FAIL, 1, a->p, a->n);
    F(r->fn)->failed++;
    core_free_job(k, j);
}

static void get_status(core *k, idx c, int t, const args_t *a)
{
    (void)t;
    size_t n = upto_nul(a->p[0], a->n[0]);
    if (n > MAX_HANDLE)
        return;
    idx j = job_by_handle(k, a->p[0], n);
    char num[16] = "0", den[16] = "0";
    const char *p[5] = {a->p[0], "0", "0", num, den};
    size_t l[5] = {n, 1, 1, 1, 1};
    if (j) {
        p[1] = "1";
        p[2] = J(j)->worker ? "1" : "0";
        l[3] = (size_t)snprintf(num, sizeof(num), "%u", J(j)->num);
        l[4] = (size_t)snprintf(den, sizeof(den), "%u", J(j)->den);
    }
    emit(k, c, STATUS_RES, 5, p, l);
}

static void get_status_unique(core *k, idx c, int t, const args_t *a)
{
    (void)t;
    size_t n = upto_nul(a->p[0], a->n[0]);
    if (n > MAX_UNIQUE) {
        core_close(k, c);
        return;
    }
    idx j = ht_get(&k->t.by_gunique, 0, a->p[0], n);
    char num[16] = "0", den[16] = "0", cl[16] = "0";
    const char *p[6] = {a->p[0], "0", "0", num, den, cl};
    size_t l[6] = {n, 1, 1, 1, 1, 1};
    if (j) {
        p[1] = "1";
        p[2] = J(j)->worker ? "1" : "0";
        l[3] = (size_t)snprintf(num, sizeof(num), "%u", J(j)->num);
        l[4] = (size_t)snprintf(den, sizeof(den), "%u", J(j)->den);
        l[5] = (size_t)snprintf(cl, sizeof(cl), "%u", J(j)->nclients);
    }
    emit(k, c, STATUS_RES_UNIQUE, 6, p, l);
}

typedef struct { handler fn; int nargs; } entry;

static const entry TABLE[STATUS_RES_UNIQUE + 1] = {
    [CAN_DO] = {can_do, 1}, [CANT_DO] = {cant_do, 1},
    [RESET_ABILITIES] = {reset_abilities, 0}, [PRE_SLEEP] = {pre_sleep, 0},
    [SUBMIT_JOB] = {submit, 3}, [GRAB_JOB] = {grab, 0},
    [WORK_STATUS] = {work_status, 3}, [WORK_COMPLETE] = {work_done, 2},
    [WORK_FAIL] = {work_fail, 1}, [GET_STATUS] = {get_status, 1},
    [ECHO_REQ] = {echo_req, 1}, [SUBMIT_JOB_BG] = {submit, 3},
    [SUBMIT_JOB_HIGH] = {submit, 3}, [SET_CLIENT_ID] = {set_client_id, 1},
    [CAN_DO_TIMEOUT] = {can_do_timeout, 2}, [WORK_EXCEPTION] = {work_done, 2},
    [OPTION_REQ] = {option_req, 1}, [WORK_DATA] = {work_data, 2},
    [WORK_WARNING] = {work_data, 2}, [GRAB_JOB_UNIQ] = {grab, 0},
    [SUBMIT_JOB_HIGH_BG] = {submit, 3}, [SUBMIT_JOB_LOW] = {submit, 3},
    [SUBMIT_JOB_LOW_BG] = {submit, 3}, [SUBMIT_JOB_EPOCH] = {submit_epoch, 4},
    [SUBMIT_REDUCE_JOB] = {submit_reduce, 5},
    [SUBMIT_REDUCE_JOB_BACKGROUND] = {submit_reduce, 5},
    [GRAB_JOB_ALL] = {grab, 0}, [GET_STATUS_UNIQUE] = {get_status_unique, 1},
};

int core_packet(core *k, int64_t conn, int ptype, const args_t *a)
{
    const entry *e = ptype > 0 && ptype <= STATUS_RES_UNIQUE ? &TABLE[ptype] : NULL;
    if (e && e->fn && a->count != e->nargs)
        return -1;
    idx c = conn_find(k, conn);
    if (c == NIL) {         /* already closed: only the spool name needs care */
        spool_drop_args(k, a);
        return 0;
    }
    if (e && e->fn)
        e->fn(k, c, ptype, a);
    else
        not_expected(k, c, ptype, a);
    return 0;
}
