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
 * This file: the turn, polling masks, back-pressure, deadlines, the end of
 * lingering; aloop.h says where the rest is.
 */
#include "aloop.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>


#define SWEEP 0.5
#define IDLE_TIMEOUT 1.0

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

void
al_untouch(al_loop *L, al_conn *c)
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

void
al_unmute_all(al_loop *L)
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
            al_accept(L, L->lfds[tag & 0xffffffffULL]);
        else if (kind == TAG_INBOX)
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
            al_linger(L, c);
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
    double now = al_now();
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
    double left = end - al_now();
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
    L->now = al_now();
    L->turn_read = 0;
    for (int i = 0; i < n; i++)
        event(L, evs[i].data.u64, evs[i].events);
    drain_outbound(L);
    flush_touched(L);
    al_publish(L);
    if (L->accept_paused && L->now >= L->accept_paused) {
        L->accept_paused = 0;
        al_update_listening(L);
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
    double end = al_now() + seconds;
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
    al_publish(L);
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

