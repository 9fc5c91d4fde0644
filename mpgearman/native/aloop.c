/* _aloop: the acceptor's event loop in C (twin: mpgearman/acceptor/loop.py).
 *
 * One epoll over the listeners, the connections, the outbound ring's
 * doorbell and the signal inbox.  Each turn: accept, read and decode (records
 * go straight onto the inbound ring, or wait in `pend` while it is full),
 * apply the coordinator's records from the outbound ring, write every
 * touched connection once, publish the inbound tail once and ring the
 * coordinator's doorbell only if it sleeps.  Python is entered only when
 * run() returns: when its time slice is over (heartbeat), a signal arrived,
 * or log lines are waiting.
 *
 * This file: the object, the turn, accepting, closing, back-pressure,
 * deadlines and lingering.  aconn_in.c decodes input, aconn_out.c writes.
 */
#include "aloop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TAG_LISTEN (1ULL << 32)
#define TAG_BELL (2ULL << 32)
#define TAG_INBOX (3ULL << 32)
#define ACCEPT_PAUSE 0.1
#define LINGER 5.0
#define FULL_WAIT_MIN 0.001
#define FULL_WAIT_MAX 0.016
#define LOG_EVERY 60.0
#define SWEEP 0.5
#define IDLE_TIMEOUT 1.0
#define RELEASE_ABOVE (1u << 20)

static double
mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void
al_log(al_loop *L, int level, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    PyObject *item = Py_BuildValue("(is)", level, text);
    if (item == NULL || PyList_Append(L->logs, item) < 0)
        PyErr_Clear();
    Py_XDECREF(item);
}

void
al_figure(al_loop *L, int off, uint64_t value)
{
    if (L->fig)
        atomic_store_explicit((_Atomic uint64_t *)((unsigned char *)L->fig + off), value,
                              memory_order_relaxed);
}

/* What --max-spool-bytes bounds: the coordinator's held spool plus every
   acceptor's bodies being written (counters.Counters.spool_in_use). */
uint64_t
al_spool_in_use(al_loop *L)
{
    unsigned char *base = L->ctr.buf;
    uint32_t lines;
    memcpy(&lines, base + MPG_CTR_LINES_OFF, 4);
    uint64_t max_lines = ((uint64_t)L->ctr.len - MPG_CTR_PROCS_OFF) / MPG_CTR_LINE_SIZE;
    if (lines > max_lines)
        lines = (uint32_t)max_lines;
#define CTR(line, off) atomic_load_explicit((_Atomic uint64_t *)(base + MPG_CTR_PROCS_OFF \
    + (uint64_t)(line) * MPG_CTR_LINE_SIZE + (off)), memory_order_relaxed)
    uint64_t sum = CTR(MPG_CTR_COORDINATOR, MPG_CTR_C_OFF);
    for (uint32_t line = MPG_CTR_FIRST_ACCEPTOR; line < lines; line++)
        sum += CTR(line, MPG_CTR_D_OFF);
#undef CTR
    return sum;
}

void
al_reserve(al_loop *L, al_conn *c, uint64_t size)
{
    L->writing += size - c->reserved;
    c->reserved = size;
    al_figure(L, MPG_CTR_D_OFF, L->writing);
}

/* -- connections by id and by descriptor ------------------------------ */

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

static int
insert(al_loop *L, al_conn *c)
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

static void
unlink_conn(al_loop *L, al_conn *c)
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
#define FOR_EACH_CONN(L, c, body)                                          \
    for (uint64_t i_ = 0; i_ <= (L)->hash_mask; i_++) {                    \
        al_conn *next_;                                                    \
        for (al_conn *c = (L)->hash[i_]; c; c = next_) {                   \
            next_ = c->hnext;                                              \
            body                                                           \
        }                                                                  \
    }

/* -- records for the coordinator ---------------------------------------- */

static int
pend_add(al_loop *L, const unsigned char *h, size_t nh, const void *b, size_t nb)
{
    size_t need = 4 + nh + nb;
    if (L->pend_pos && L->pend_pos == L->pend_len)
        L->pend_pos = L->pend_len = 0;
    if (L->pend_len + need > L->pend_cap) {
        if (L->pend_pos) {
            memmove(L->pend, L->pend + L->pend_pos, L->pend_len - L->pend_pos);
            L->pend_len -= L->pend_pos;
            L->pend_pos = 0;
        }
        size_t cap = L->pend_cap ? L->pend_cap : 65536;
        while (cap < L->pend_len + need)
            cap *= 2;
        if (cap != L->pend_cap) {
            unsigned char *p = realloc(L->pend, cap);
            if (p == NULL)
                return -1;
            L->pend = p;
            L->pend_cap = cap;
        }
    }
    uint32_t n = (uint32_t)(nh + nb);
    memcpy(L->pend + L->pend_len, &n, 4);
    memcpy(L->pend + L->pend_len + 4, h, nh);
    if (nb)
        memcpy(L->pend + L->pend_len + 4 + nh, b, nb);
    L->pend_len += need;
    return 0;
}

/* Queue one record: kind, conn, then a and b.  Straight onto the ring
   (published at the end of the turn) unless records already wait. */
int
al_emit(al_loop *L, uint8_t kind, uint64_t conn, const void *a, size_t na,
        const void *b, size_t nb)
{
    unsigned char h[9 + 128];
    if (na > 128)
        return -1;
    h[0] = kind;
    memcpy(h + 1, &conn, 8);
    if (na)
        memcpy(h + 9, a, na);
    L->records_in++;
    if (L->pend_pos == L->pend_len) {
        int rc = rc_write2(&L->rin, &L->tail, &L->headc, h, 9 + na, b, nb);
        if (rc == 1) {
            L->unpublished = 1;
            return 0;
        }
        if (rc < 0) {
            al_log(L, LOG_ERROR, "record of %zu bytes dropped: %s", 9 + na + nb,
                   rc == -1 ? "larger than the ring takes" : "the ring is corrupt");
            return -1;
        }
    }
    if (pend_add(L, h, 9 + na, b, nb) < 0) {
        al_log(L, LOG_ERROR, "out of memory: record dropped");
        return -1;
    }
    return 0;
}

static void
unmute_all(al_loop *L);

static void
publish(al_loop *L)
{
    if (L->pend_pos < L->pend_len) {
        int moved = 0, rc = 1;
        while (L->pend_pos < L->pend_len) {
            uint32_t n;
            memcpy(&n, L->pend + L->pend_pos, 4);
            rc = rc_write2(&L->rin, &L->tail, &L->headc, L->pend + L->pend_pos + 4, n,
                           NULL, 0);
            if (rc == 0)
                break;
            if (rc < 0)
                al_log(L, LOG_ERROR, "waiting record of %u bytes dropped", n);
            L->pend_pos += 4 + (size_t)n;
            L->unpublished = moved = 1;
        }
        if (moved)
            L->full_wait = FULL_WAIT_MIN;
        else
            L->full_wait = L->full_wait * 2 < FULL_WAIT_MAX ? L->full_wait * 2 : FULL_WAIT_MAX;
    }
    if (L->unpublished) {
        L->unpublished = 0;
        rc_publish_tail(&L->rin, L->tail);
        if (rc_writer_should_ring(&L->rin)) {
            uint64_t one = 1;
            if (write(L->coord_bell_fd, &one, 8) < 0 && errno != EAGAIN)
                al_log(L, LOG_ERROR, "doorbell: %s", strerror(errno));
        }
    }
    L->ring_full = L->pend_pos < L->pend_len;
    if (L->nmuted && !L->ring_full)
        unmute_all(L);
}

/* -- polling ------------------------------------------------------------- */

void
al_set_mask(al_loop *L, al_conn *c, uint32_t mask)
{
    if (mask == c->mask)
        return;
    c->mask = mask;
    struct epoll_event ev = {.events = mask, .data.u64 = (uint64_t)c->fd};
    epoll_ctl(L->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

void
al_touch(al_loop *L, al_conn *c)
{
    if (!c->touched) {
        c->touched = 1;
        c->tnext = L->touched;
        L->touched = c;
    }
}

static void
untouch(al_loop *L, al_conn *c)
{
    if (!c->touched)
        return;
    al_conn **p = &L->touched;
    while (*p && *p != c)
        p = &(*p)->tnext;
    if (*p)
        *p = c->tnext;
    c->touched = 0;
}

static void
mute(al_loop *L, al_conn *c)
{
    if (!c->muted) {
        c->muted = 1;
        L->nmuted++;
    }
    al_set_mask(L, c, c->mask & ~(uint32_t)EPOLLIN);
}

static void
unmute_all(al_loop *L)
{
    FOR_EACH_CONN(L, c, {
        if (c->muted) {
            c->muted = 0;
            if (c->due)
                al_deadline_start(L, c);
            if (c->reading && !c->closing)
                al_set_mask(L, c, c->mask | EPOLLIN);
        }
    })
    L->nmuted = 0;
}

static void
update_listening(al_loop *L)
{
    int listen = !(L->accept_paused || L->at_capacity);
    if (listen == L->listening)
        return;
    L->listening = listen;
    for (int i = 0; i < L->nlisten; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_LISTEN | (uint64_t)i};
        epoll_ctl(L->ep, listen ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, L->lfds[i], &ev);
    }
}

static void
set_at_capacity(al_loop *L, int full)
{
    if (full == L->at_capacity)
        return;
    L->at_capacity = full;
    double now = mono();
    if (full && (L->capacity_logged < 0 || now - L->capacity_logged >= LOG_EVERY)) {
        L->capacity_logged = now;
        L->log_resume = 1;
        al_log(L, LOG_WARNING, "%llu connections, this acceptor's share of "
               "--max-connections: not accepting new ones until one closes",
               (unsigned long long)L->nconns);
    } else if (!full && L->log_resume) {
        L->log_resume = 0;
        al_log(L, LOG_INFO, "below %llu connections again: accepting",
               (unsigned long long)L->capacity);
    }
    update_listening(L);
}

/* -- accepting and closing ------------------------------------------------ */

static void
peer_text(const struct sockaddr_storage *ss, char *out, size_t n)
{
    out[0] = 0;
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)n);
    } else if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)n);
        if (strncmp(out, "::ffff:", 7) == 0)
            memmove(out, out + 7, strlen(out + 7) + 1);
    }
}

static int
out_of_fds(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

static void
accept_some(al_loop *L, int lfd)
{
    for (int i = 0; i < 256; i++) {
        if (L->capacity && L->nconns >= L->capacity) {
            set_at_capacity(L, 1);
            return;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            if (out_of_fds(errno)) {
                al_log(L, LOG_ERROR, "accept failed (%s); pausing new connections",
                       strerror(errno));
                L->accept_paused = mono() + ACCEPT_PAUSE;
                update_listening(L);
            } else {
                al_log(L, LOG_WARNING, "accept failed: %s", strerror(errno));
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        al_conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            return;
        }
        c->fd = fd;
        c->id = (uint64_t)L->index << 56 | (uint64_t)(L->gen & 0xFFFF) << 40 | ++L->serial;
        c->number = (uint64_t)fd * L->slots + L->index;
        c->reading = 1;
        c->mask = EPOLLIN;
        c->spool_fd = -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)fd};
        if (insert(L, c) < 0 || epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            if (L->by_fd_cap > fd && L->by_fd[fd] == c)
                unlink_conn(L, c);
            close(fd);
            free(c);
            continue;
        }
        char peer[INET6_ADDRSTRLEN + 8];
        peer_text(&ss, peer, sizeof peer);
        uint32_t number = (uint32_t)c->number;
        al_emit(L, K_CONNECT, c->id, &number, 4, peer, strlen(peer));
        c->last = L->records_in;
        al_figure(L, MPG_CTR_A_OFF, L->serial);
        al_figure(L, MPG_CTR_B_OFF, L->nconns);
    }
}

void
al_close_conn(al_loop *L, al_conn *c)
{
    if (c->lingering)
        L->nlinger--;
    if (c->muted)
        L->nmuted--;
    al_deadline_done(L, c);
    untouch(L, c);
    unlink_conn(L, c);
    epoll_ctl(L->ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->out_bytes + c->in_len > RELEASE_ABOVE)
        L->release = 1;
    al_free_output(c);
    al_spool_abort(L, c);
    close(c->fd);
    al_emit(L, K_CLOSED, c->id, NULL, 0, NULL, 0);
    al_figure(L, MPG_CTR_B_OFF, L->nconns);
    free(c->in);
    free(c);
    if (L->at_capacity && !L->stop && L->nconns < L->capacity)
        set_at_capacity(L, 0);
}

/* Close our side, but keep reading (and dropping) what the peer still
   sends for a while: unread input at close sends a RST that can destroy
   the reply we just sent. */
static void
linger(al_loop *L, al_conn *c)
{
    if (c->lingering)
        return;
    if (shutdown(c->fd, SHUT_WR) < 0) {
        al_close_conn(L, c);
        return;
    }
    c->reading = 0;
    al_deadline_done(L, c);
    c->lingering = 1;
    L->nlinger++;
    c->linger_until = mono() + LINGER;
    if (c->muted) {
        c->muted = 0;
        L->nmuted--;
    }
    al_set_mask(L, c, EPOLLIN);
}

/* -- the turn ------------------------------------------------------------- */

static void
input(al_loop *L, al_conn *c, uint32_t mask)
{
    if (L->ring_full || L->turn_read >= L->budget) {
        if (!(mask & (EPOLLHUP | EPOLLERR))) {
            if (L->ring_full)
                mute(L, c);
            return;
        }
    }
    if (!al_read(L, c))
        al_close_conn(L, c);
}

static void
event(al_loop *L, uint64_t tag, uint32_t mask)
{
    if (tag >= TAG_LISTEN) {
        uint64_t kind = tag & ~0xffffffffULL;
        if (kind == TAG_LISTEN)
            accept_some(L, L->lfds[tag & 0xffffffffULL]);
        else if (kind == TAG_BELL) {
            uint64_t v;
            if (read(L->bell_fd, &v, 8) < 0 && errno != EAGAIN)
                al_log(L, LOG_ERROR, "doorbell: %s", strerror(errno));
        } else if (kind == TAG_INBOX)
            L->stop = 1;
        return;
    }
    int fd = (int)tag;
    al_conn *c = fd < L->by_fd_cap ? L->by_fd[fd] : NULL;
    if (c == NULL)
        return;
    if (c->lingering) {
        if (!al_discard(L, c))
            al_close_conn(L, c);
        return;
    }
    if (mask & EPOLLOUT)
        al_touch(L, c);
    if ((mask & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->reading)
        input(L, c, mask);
}

static void
drain_outbound(al_loop *L)
{
    uint64_t head = rc_consumer_head(&L->rout);
    uint64_t tail = rc_consumer_tail(&L->rout);
    uint64_t start = head;
    const unsigned char *rec;
    uint32_t len;
    int rc;
    if (tail - head > L->rout.cap) {
        al_log(L, LOG_ERROR, "outbound ring is corrupt");
        return;
    }
    while ((rc = rc_peek(&L->rout, &head, tail, &rec, &len)) == 1) {
        L->records_out++;
        al_apply(L, rec, len);
        head += rc_record_size(len);
        if (head - start >= L->rout.cap / 2) {   /* give the producer room early */
            rc_publish_head(&L->rout, head);
            start = head;
            tail = rc_consumer_tail(&L->rout);
        }
    }
    if (rc < 0)
        al_log(L, LOG_ERROR, "outbound ring is corrupt");
    if (head != start)
        rc_publish_head(&L->rout, head);
}

static void
flush_touched(al_loop *L)
{
    al_conn *list = L->touched;
    L->touched = NULL;
    while (list) {
        al_conn *c = list;
        list = c->tnext;
        c->touched = 0;
        int rc = al_flush(c);
        L->writes++;
        if (rc < 0) {
            al_close_conn(L, c);
            continue;
        }
        if (rc == 1 && c->closing) {
            linger(L, c);
            continue;
        }
        int reading = c->reading && !c->closing && !c->muted;
        al_set_mask(L, c, (reading ? EPOLLIN : 0) | (rc == 1 ? 0 : EPOLLOUT));
    }
}

static void
sweep(al_loop *L)
{
    L->next_sweep = L->now + (SWEEP < L->request_timeout ? SWEEP : L->request_timeout);
    FOR_EACH_CONN(L, c, {
        if (c->due && c->due <= L->now && !c->muted) {
            if (c->reading && !c->closing) {
                al_log(L, LOG_INFO, "closing connection %llu: its unfinished request "
                       "made no progress in %d s", (unsigned long long)c->number,
                       (int)L->request_timeout);
                al_refuse(L, c, "TIMEOUT", "Request not completed in time");
            } else {
                al_deadline_done(L, c);
            }
        }
    })
}

static void
end_lingering(al_loop *L)
{
    double now = mono();
    FOR_EACH_CONN(L, c, {
        if (c->lingering && c->linger_until <= now)
            al_close_conn(L, c);
    })
}

static int
timeout_ms(al_loop *L, double end)
{
    double t;
    if (L->touched || !rc_reader_idle(&L->rout))
        return 0;
    if (L->ring_full)
        t = L->full_wait;
    else if (L->accept_paused || L->nlinger)
        t = ACCEPT_PAUSE;
    else
        t = L->ndue ? SWEEP : IDLE_TIMEOUT;
    double left = end - mono();
    if (left < t)
        t = left > 0 ? left : 0;
    return (int)(t * 1000 + 0.999);
}

static int
turn(al_loop *L, double end)
{
    struct epoll_event evs[512];
    int n = epoll_wait(L->ep, evs, 512, timeout_ms(L, end));
    rc_reader_awake(&L->rout);
    if (n < 0) {
        if (errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        L->stop = 1;          /* a signal: let Python's handlers run */
        n = 0;
    }
    L->now = mono();
    L->turn_read = 0;
    for (int i = 0; i < n; i++)
        event(L, evs[i].data.u64, evs[i].events);
    drain_outbound(L);
    flush_touched(L);
    publish(L);
    if (L->accept_paused && L->now >= L->accept_paused) {
        L->accept_paused = 0;
        update_listening(L);
    }
    if (L->ndue && L->now >= L->next_sweep)
        sweep(L);
    if (L->nlinger)
        end_lingering(L);
    if (L->release) {
        L->release = 0;
        malloc_trim(0);
    }
    return 0;
}

/* -- the methods (the type itself: aloop_py.c) ---------------------------- */

PyObject *
loop_run(al_loop *L, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "run(seconds) takes one argument");
        return NULL;
    }
    double seconds = PyFloat_AsDouble(args[0]);
    if (seconds == -1 && PyErr_Occurred())
        return NULL;
    double end = mono() + seconds;
    L->stop = 0;
    do {
        if (turn(L, end) < 0)
            return NULL;
    } while (!L->stop && PyList_GET_SIZE(L->logs) == 0 && L->now < end);
    int stopped = L->stop;
    L->stop = 0;
    return PyBool_FromLong(stopped);
}

PyObject *
loop_take_logs(al_loop *L, PyObject *const *Py_UNUSED(args), Py_ssize_t Py_UNUSED(nargs))
{
    PyObject *logs = L->logs, *fresh = PyList_New(0);
    if (fresh == NULL)
        return NULL;
    L->logs = fresh;
    return logs;
}

PyObject *
loop_close_all(al_loop *L, PyObject *const *Py_UNUSED(args), Py_ssize_t Py_UNUSED(nargs))
{
    L->stop = 1;
    FOR_EACH_CONN(L, c, { al_close_conn(L, c); })
    publish(L);
    Py_RETURN_NONE;
}

PyObject *
loop_stats(al_loop *L, PyObject *const *Py_UNUSED(args), Py_ssize_t Py_UNUSED(nargs))
{
    return Py_BuildValue("{sKsKsKsKsKsKsK}", "connections", (unsigned long long)L->nconns,
                         "local_answers", (unsigned long long)L->local_answers,
                         "accepted", (unsigned long long)L->serial,
                         "records_in", (unsigned long long)L->records_in,
                         "records_out", (unsigned long long)L->records_out,
                         "writes", (unsigned long long)L->writes,
                         "waiting", (unsigned long long)(L->pend_len - L->pend_pos));
}

