/* The acceptor's native event loop (module _aloop): shared declarations of
 * aloop.c (the turn), atable.c (connections by id and fd), arecords.c
 * (records to the coordinator, logs, figures), aaccept.c (accepting and
 * closing), aconn_in.c (bytes in -> records), aconn_out.c (records ->
 * bytes out), astatus.c (local GET_STATUS), aloop_py.c (the Python type).
 *
 * Behaviour is that of mpgearman/acceptor/ (the pure-Python twin): read
 * that package's docstrings for the why; the comments here say the how.
 */
#ifndef MPGEARMAN_ALOOP_H
#define MPGEARMAN_ALOOP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include "ringcore.h"

#define AL_HEADER 12
#define AL_MAX_TYPE 42
#define AL_MAX_ARGS 8192        /* non-data arguments must end within this */
#define AL_MAX_LINE 8192        /* admin line including its \n */
#define AL_PROGRESS (64 * 1024) /* bytes of an unfinished request per limit */
#define AL_RECV_SIZE (256 * 1024)

/* Type table flags (built by the Python side from protocol/packets.py). */
#define AL_ARGC 0x0f
#define AL_HAS_DATA 0x10
#define AL_REQUEST 0x20
#define AL_SUBMISSION 0x40
#define AL_GET_STATUS 15

/* Record kinds (ipc/messages.py). */
enum { K_CONNECT = 1, K_PACKET, K_SPOOLED, K_ADMIN, K_CLOSED, K_RELAY,
       K_SEND = 11, K_SENDFILE, K_CLOSE };

/* Where a connection's decoder stands between reads. */
enum { ST_BOUNDARY, ST_SKIP, ST_STREAM };

/* One queued output item: bytes, or head bytes then a spool file. */
typedef struct al_item {
    struct al_item *next;
    int fd;              /* spool file, or -1 for plain bytes */
    uint64_t foff;       /* next file byte to send */
    uint64_t fleft;      /* file bytes still to send */
    size_t len, done;    /* data[] bytes and how many have been sent */
    unsigned char data[];
} al_item;

typedef struct al_conn {
    struct al_conn *hnext;       /* id hash chain */
    struct al_conn *tnext;       /* touched list */
    int fd;
    uint64_t id, number;
    /* input: bytes of an unfinished request kept between reads */
    unsigned char *in;
    size_t in_len, in_cap;
    int state;
    uint32_t ptype;              /* ST_SKIP: rejected type; ST_STREAM: type */
    int reject_magic;            /* ST_SKIP: wrong magic rather than type */
    uint64_t left;               /* ST_SKIP / ST_STREAM bytes to go */
    size_t searched, nuls;       /* line / argument search progress */
    /* a body being streamed to the spool */
    int spool_fd;                /* -1: none; -2: refused (spool full) */
    char spool_name[64];
    unsigned char *spool_args;   /* the SPOOLED record's args part */
    size_t spool_args_len;
    uint64_t spool_size, reserved;
    /* output */
    al_item *out, *out_last;
    uint64_t out_bytes;
    int reading, closing, muted, touched, lingering;
    uint32_t mask;
    double linger_until, due;
    uint64_t got;
    uint64_t last;               /* records_in after its latest record */
} al_conn;

typedef struct {
    PyObject_HEAD
    int ep;
    int lfds[16];
    int nlisten, listening;
    int bell_fd, coord_bell_fd, inbox_fd;
    Py_buffer seg;               /* the rings' mapping */
    rc_ring rin, rout;
    uint64_t tail, headc;        /* inbound producer working values */
    int unpublished;             /* records written after the last publish */
    Py_buffer ctr;               /* counters mapping (len 0: none) */
    Py_buffer board;             /* job status board (obj NULL: none) */
    uint64_t board_slots, board_mask;
    unsigned char prefix[80];    /* job handle prefix and ':' */
    size_t prefix_len;
    uint64_t local_answers;
    uint64_t *fig;               /* our counters line */
    unsigned index, gen, slots;
    uint64_t serial;
    uint64_t max_payload, stream_threshold, max_small, max_queued, max_spool;
    double request_timeout;
    uint64_t capacity;
    unsigned char types[AL_MAX_TYPE + 1];
    int spool_dir;               /* dirfd of the spool */
    char tag[48];
    uint64_t spool_serial, writing, spooled;
    /* connections */
    al_conn **by_fd;
    int by_fd_cap;
    al_conn **hash;
    uint64_t hash_mask;
    uint64_t nconns;
    al_conn *touched;
    /* records waiting for room on the inbound ring: [u32 len][bytes]... */
    unsigned char *pend;
    size_t pend_len, pend_pos, pend_cap;
    int ring_full;
    double full_wait;
    /* turn state */
    double now, accept_paused, next_sweep, capacity_logged;
    int at_capacity, log_resume, release, stop;
    uint64_t turn_read, budget, nlinger, ndue, nmuted;
    unsigned char *rbuf;
    PyObject *logs;              /* [(level, text)], taken by Python */
    /* statistics for tests and bench */
    uint64_t records_in, records_out, writes;
} al_loop;

#define ACCEPT_PAUSE 0.1
/* epoll data of what is not a connection (whose data is its fd) */
#define TAG_LISTEN (1ULL << 32)
#define TAG_BELL (2ULL << 32)
#define TAG_INBOX (3ULL << 32)

static inline double
al_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define FOR_EACH_CONN(L, c, body)                                          \
    for (uint64_t i_ = 0; i_ <= (L)->hash_mask; i_++) {                    \
        al_conn *next_;                                                    \
        for (al_conn *c = (L)->hash[i_]; c; c = next_) {                   \
            next_ = c->hnext;                                              \
            body                                                           \
        }                                                                  \
    }

/* aloop.c: the turn */
void al_touch(al_loop *L, al_conn *c);
void al_untouch(al_loop *L, al_conn *c);
void al_set_mask(al_loop *L, al_conn *c, uint32_t mask);
void al_unmute_all(al_loop *L);

/* atable.c */
al_conn *al_find(al_loop *L, uint64_t id);
int al_insert(al_loop *L, al_conn *c);
void al_unlink(al_loop *L, al_conn *c);

/* arecords.c */
void al_publish(al_loop *L);
void al_log(al_loop *L, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int al_emit(al_loop *L, uint8_t kind, uint64_t conn, const void *a, size_t na,
            const void *b, size_t nb);
void al_reserve(al_loop *L, al_conn *c, uint64_t size);
void al_figure(al_loop *L, int off, uint64_t value);
uint64_t al_spool_in_use(al_loop *L);

/* aaccept.c */
void al_accept(al_loop *L, int lfd);
void al_close_conn(al_loop *L, al_conn *c);
void al_linger(al_loop *L, al_conn *c);
void al_update_listening(al_loop *L);

PyObject *loop_run(al_loop *L, PyObject *const *args, Py_ssize_t nargs);
PyObject *loop_take_logs(al_loop *L, PyObject *const *args, Py_ssize_t nargs);
PyObject *loop_close_all(al_loop *L, PyObject *const *args, Py_ssize_t nargs);
PyObject *loop_stats(al_loop *L, PyObject *const *args, Py_ssize_t nargs);

/* aconn_in.c */
int al_read(al_loop *L, al_conn *c);
void al_refuse(al_loop *L, al_conn *c, const char *code, const char *text);
int al_discard(al_loop *L, al_conn *c);
void al_spool_abort(al_loop *L, al_conn *c);
void al_deadline_start(al_loop *L, al_conn *c);
void al_deadline_done(al_loop *L, al_conn *c);

/* astatus.c */
int al_local_status(al_loop *L, al_conn *c, const unsigned char *arg, size_t len);

/* aconn_out.c */
int al_queue(al_loop *L, al_conn *c, const unsigned char *data, size_t len);
void al_apply(al_loop *L, const unsigned char *rec, uint32_t len);
int al_flush(al_conn *c);        /* 1 done, 0 more to write, -1 failed */
void al_free_output(al_conn *c);

#define LOG_INFO 20
#define LOG_WARNING 30
#define LOG_ERROR 40

#endif
