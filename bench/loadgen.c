/*
 * loadgen: a Gearman load generator for comparing job servers.
 *
 *   cc -O2 -o loadgen loadgen.c -lgearman -lpthread
 *
 * Modes (all print one JSON object on stdout when they finish):
 *
 *   worker  -t THREADS -f FUNC [-d SECONDS] [-W raw [-g GRABS]]
 *       THREADS libgearman workers (one gearman_worker_st per thread), each
 *       with an echo function FUNC. Runs until killed or SECONDS elapse.
 *       With -W raw, THREADS raw-protocol worker connections instead (one
 *       epoll thread), each keeping GRABS GRAB_JOBs outstanding (default 1,
 *       i.e. the libgearman pattern; more lets a connection hold several
 *       jobs at once) and answering PRE_SLEEP/NOOP like libgearman does.
 *
 *   fg      -c CONNS -k INFLIGHT (-n JOBS | -d SECONDS) -s SIZE -f FUNC [-T THREADS] [-L]
 *       Raw-protocol foreground client: CONNS non-blocking connections, each
 *       keeping INFLIGHT SUBMIT_JOBs pipelined; a WORK_COMPLETE (or WORK_FAIL)
 *       frees a slot for the next submission. Reports completed jobs/s.
 *       With -L, every job is timed from its submission to its result, and
 *       the median, p90, p99 and maximum latency (µs) are reported.
 *
 *   bg      -c CONNS -k INFLIGHT -n JOBS -s SIZE -f FUNC -t THREADS
 *       Submits JOBS SUBMIT_JOB_BG as fast as possible (no worker
 *       registered yet), then starts THREADS libgearman echo workers and
 *       polls the admin `status` line of FUNC until it shows no job left.
 *       Reports the submission rate and the drain rate. -W/-g as for worker.
 *       With -P, pauses between the two: prints {"submitted":N} and waits
 *       for a line on stdin before starting the workers (so that the
 *       server's memory can be measured with the jobs queued).
 *
 * Common: -h HOST (127.0.0.1) -p PORT (4730).
 *
 * The client side speaks the binary protocol directly (one epoll loop per
 * thread) so that it costs far less CPU than the server it drives; its own
 * CPU time (getrusage) is part of the report so this can be checked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgearman/gearman.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    CAN_DO = 1, PRE_SLEEP = 4, NOOP = 6, GRAB_JOB = 9, NO_JOB = 10, JOB_ASSIGN = 11,
    SUBMIT_JOB = 7, JOB_CREATED = 8, WORK_STATUS = 12, WORK_COMPLETE = 13,
    WORK_FAIL = 14, SUBMIT_JOB_BG = 18, ERROR = 19, WORK_EXCEPTION = 25,
    WORK_DATA = 28, WORK_WARNING = 29,
};

static const char *host = "127.0.0.1";
static int port = 4730;
static const char *function = "loadgen";
static int conns = 4, inflight = 32, threads = 1, payload_size = 64;
static long total_jobs = 0;
static double duration = 0;
static int raw_workers = 0, grab_ahead = 1;
static int time_jobs = 0, pause_after_submit = 0;

static atomic_long to_submit;     /* submissions still allowed (when -n) */
static atomic_long completed;     /* jobs done (fg: results; bg: JOB_CREATED) */
static atomic_long failures;      /* WORK_FAIL / ERROR replies */
static atomic_int stop_flag;
static atomic_long worker_jobs;  /* jobs run by this process' workers */
static void *raw_worker_thread(void *argp);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static int tcp_connect(int nonblocking)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bad IPv4 address %s\n", host);
        exit(2);
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (nonblocking)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* ------------------------------------------------------------------ */
/* raw client connections                                              */

typedef struct {
    int fd;
    char *rbuf; size_t rlen, rcap;
    char *wbuf; size_t wlen, woff, wcap;
    int inflight;
    int want_out;
    int epoll_index;      /* raw workers register an index, clients a pointer */
    struct timer *timer;  /* -L: this connection's job timer, else NULL */
} conn_t;

/* ------------------------------------------------------------------ */
/* per-job latency (-L)                                                */

typedef struct { double *v; size_t n, cap; } samples_t;

static void sample_add(samples_t *s, double x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = x;
}

/* A connection's jobs in flight: submission times wait in FIFO order for
 * their JOB_CREATED (answered in order), then wait under their handle for
 * the WORK_COMPLETE. */
typedef struct { char h[64]; size_t hlen; double t; int used; } pending_t;

struct timer {
    double *fifo; int head, count, cap;
    pending_t *slot; int nslots;
    samples_t *out;
};

static struct timer *timer_new(int cap, samples_t *out)
{
    struct timer *t = calloc(1, sizeof *t);
    t->cap = t->nslots = cap;
    t->fifo = calloc((size_t)cap, sizeof *t->fifo);
    t->slot = calloc((size_t)cap, sizeof *t->slot);
    t->out = out;
    return t;
}

static void timer_submitted(struct timer *t, double when)
{
    t->fifo[(t->head + t->count++) % t->cap] = when;
}

static void timer_created(struct timer *t, const char *h, size_t hlen)
{
    double when = t->fifo[t->head];
    t->head = (t->head + 1) % t->cap;
    t->count--;
    for (int i = 0; i < t->nslots; i++) {
        pending_t *p = &t->slot[i];
        if (!p->used && hlen <= sizeof p->h) {
            memcpy(p->h, h, hlen);
            p->hlen = hlen;
            p->t = when;
            p->used = 1;
            return;
        }
    }
}

static void timer_done(struct timer *t, const char *body, size_t size, double when)
{
    const char *end = memchr(body, 0, size);
    size_t hlen = end ? (size_t)(end - body) : size;
    for (int i = 0; i < t->nslots; i++) {
        pending_t *p = &t->slot[i];
        if (p->used && p->hlen == hlen && memcmp(p->h, body, hlen) == 0) {
            sample_add(t->out, (when - p->t) * 1e6);
            p->used = 0;
            return;
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(samples_t *s, double q)
{
    if (!s->n)
        return 0;
    size_t i = (size_t)(q * (double)(s->n - 1) + 0.5);
    return s->v[i];
}

static char *submit_packet;       /* one prebuilt SUBMIT_JOB[_BG] packet */
static size_t submit_len;

static void build_submit(int ptype)
{
    size_t flen = strlen(function);
    size_t body = flen + 1 + 1 + (size_t)payload_size;   /* func\0 \0 data */
    submit_len = 12 + body;
    submit_packet = malloc(submit_len);
    char *p = submit_packet;
    memcpy(p, "\0REQ", 4);
    uint32_t t = htonl(ptype), s = htonl((uint32_t)body);
    memcpy(p + 4, &t, 4);
    memcpy(p + 8, &s, 4);
    memcpy(p + 12, function, flen);
    p[12 + flen] = 0;
    p[13 + flen] = 0;
    for (int i = 0; i < payload_size; i++)
        p[14 + flen + i] = 'a' + i % 26;
}

static void queue_bytes(conn_t *c, const char *data, size_t n)
{
    if (c->wlen + n > c->wcap) {
        if (c->woff) {
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
        }
        while (c->wlen + n > c->wcap)
            c->wcap = c->wcap ? c->wcap * 2 : 65536;
        c->wbuf = realloc(c->wbuf, c->wcap);
    }
    memcpy(c->wbuf + c->wlen, data, n);
    c->wlen += n;
}

/* Submit one job on c if the budget allows it. */
static int try_submit(conn_t *c)
{
    if (atomic_load(&stop_flag))
        return 0;
    if (total_jobs > 0 && atomic_fetch_sub(&to_submit, 1) <= 0)
        return 0;
    queue_bytes(c, submit_packet, submit_len);
    c->inflight++;
    if (c->timer)
        timer_submitted(c->timer, now());
    return 1;
}

static void flush_out(conn_t *c, int epfd)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            die("send");
        }
        c->woff += (size_t)n;
    }
    if (c->woff == c->wlen)
        c->woff = c->wlen = 0;
    int want = c->wlen > 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0)};
        if (c->epoll_index >= 0)
            ev.data.u32 = (uint32_t)c->epoll_index;
        else
            ev.data.ptr = c;
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
}

/* The next complete packet in c->rbuf at *off: its type, size and payload;
 * advances *off past it. 0 when no whole packet is buffered. */
static int next_packet(conn_t *c, size_t *off, uint32_t *type, uint32_t *size, char **payload)
{
    if (c->rlen - *off < 12)
        return 0;
    memcpy(type, c->rbuf + *off + 4, 4);
    memcpy(size, c->rbuf + *off + 8, 4);
    *type = ntohl(*type);
    *size = ntohl(*size);
    if (c->rlen - *off < 12 + (size_t)*size)
        return 0;
    *payload = c->rbuf + *off + 12;
    *off += 12 + (size_t)*size;
    return 1;
}

/* Drop the packets handled so far from the front of c->rbuf. */
static void consume(conn_t *c, size_t off)
{
    if (off) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
}

/* Read everything the socket has into c->rbuf. 0: closed or failed. */
static int read_available(conn_t *c)
{
    for (;;) {
        if (c->rcap - c->rlen < 4096) {
            c->rcap *= 2;
            c->rbuf = realloc(c->rbuf, c->rcap);
        }
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (r > 0) {
            c->rlen += (size_t)r;
            continue;
        }
        if (r == 0)
            return 0;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 1;
        if (errno == EINTR)
            continue;
        return 0;
    }
}

/* Handle complete packets in c->rbuf. bg: JOB_CREATED completes a job. */
static void handle_packets(conn_t *c, int bg)
{
    size_t off = 0;
    uint32_t type, size;
    char *p;
    while (next_packet(c, &off, &type, &size, &p)) {
        int done = 0;
        switch (type) {
        case JOB_CREATED:
            done = bg;
            if (c->timer)
                timer_created(c->timer, p, size);
            break;
        case WORK_COMPLETE:
            done = !bg;
            if (c->timer)
                timer_done(c->timer, p, size, now());
            break;
        case WORK_FAIL: case WORK_EXCEPTION: case ERROR:
            atomic_fetch_add(&failures, 1);
            done = 1;
            break;
        default:          /* WORK_DATA, WORK_STATUS, ...: not expected */
            break;
        }
        if (done) {
            atomic_fetch_add(&completed, 1);
            c->inflight--;
            try_submit(c);
        }
    }
    consume(c, off);
}

typedef struct {
    int first, count, bg;
    samples_t lat;
} client_arg_t;

static void *client_thread(void *argp)
{
    client_arg_t *a = argp;
    int epfd = epoll_create1(0);
    conn_t *cs = calloc((size_t)a->count, sizeof *cs);
    for (int i = 0; i < a->count; i++) {
        conn_t *c = &cs[i];
        c->fd = tcp_connect(1);
        c->epoll_index = -1;
        c->rcap = 1 << 16;
        c->rbuf = malloc(c->rcap);
        if (time_jobs && !a->bg)
            c->timer = timer_new(inflight, &a->lat);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
        for (int k = 0; k < inflight; k++)
            try_submit(c);
        flush_out(c, epfd);
    }
    struct epoll_event evs[64];
    for (;;) {
        int busy = 0;
        for (int i = 0; i < a->count; i++)
            busy |= cs[i].inflight > 0;
        if (!busy)
            break;
        int n = epoll_wait(epfd, evs, 64, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (!read_available(c)) {
                    fprintf(stderr, "loadgen: server closed a connection\n");
                    exit(3);
                }
                handle_packets(c, a->bg);
            }
            flush_out(c, epfd);
        }
    }
    for (int i = 0; i < a->count; i++) {
        close(cs[i].fd);
        free(cs[i].rbuf);
        free(cs[i].wbuf);
        if (cs[i].timer) {
            free(cs[i].timer->fifo);
            free(cs[i].timer->slot);
            free(cs[i].timer);
        }
    }
    free(cs);
    close(epfd);
    return NULL;
}

static samples_t latencies;       /* -L: every thread's samples, merged */

/* Run the raw clients: CONNS connections spread over THREADS threads. */
static double run_clients(int bg, int nthreads)
{
    if (nthreads > conns)
        nthreads = conns;
    pthread_t *tids = calloc((size_t)nthreads, sizeof *tids);
    client_arg_t *args = calloc((size_t)nthreads, sizeof *args);
    double t0 = now();
    for (int i = 0, first = 0; i < nthreads; i++) {
        args[i].count = conns / nthreads + (i < conns % nthreads);
        args[i].first = first;
        args[i].bg = bg;
        first += args[i].count;
        pthread_create(&tids[i], NULL, client_thread, &args[i]);
    }
    if (duration > 0) {
        while (now() - t0 < duration)
            usleep(10000);
        atomic_store(&stop_flag, 1);
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(tids[i], NULL);
        for (size_t k = 0; k < args[i].lat.n; k++)
            sample_add(&latencies, args[i].lat.v[k]);
        free(args[i].lat.v);
    }
    free(tids);
    free(args);
    return now() - t0;
}

/* ------------------------------------------------------------------ */
/* libgearman workers                                                  */

static void *echo_fn(gearman_job_st *job, void *context, size_t *result_size,
                     gearman_return_t *ret_ptr)
{
    (void)context;
    size_t n = gearman_job_workload_size(job);
    char *out = malloc(n ? n : 1);
    if (n)
        memcpy(out, gearman_job_workload(job), n);
    *result_size = n;
    *ret_ptr = GEARMAN_SUCCESS;
    return out;
}

static void *worker_thread(void *unused)
{
    (void)unused;
    gearman_worker_st *w = gearman_worker_create(NULL);
    if (!w) {
        fprintf(stderr, "gearman_worker_create failed\n");
        exit(2);
    }
    if (gearman_failed(gearman_worker_add_server(w, host, (in_port_t)port))) {
        fprintf(stderr, "add_server: %s\n", gearman_worker_error(w));
        exit(2);
    }
    if (gearman_failed(gearman_worker_add_function(w, function, 0, echo_fn, NULL))) {
        fprintf(stderr, "add_function: %s\n", gearman_worker_error(w));
        exit(2);
    }
    /* Wake up now and then so a stop request is seen even when idle. */
    gearman_worker_set_timeout(w, 500);
    while (!atomic_load(&stop_flag)) {
        gearman_return_t rc = gearman_worker_work(w);
        if (rc == GEARMAN_SUCCESS)
            atomic_fetch_add(&worker_jobs, 1);
        else if (rc != GEARMAN_TIMEOUT && rc != GEARMAN_NO_JOBS && rc != GEARMAN_IO_WAIT) {
            fprintf(stderr, "worker: %s\n", gearman_worker_error(w));
            usleep(100000);
        }
    }
    gearman_worker_free(w);
    return NULL;
}

static int raw_worker_count;

/* libgearman: n threads; raw: one epoll thread with n connections. */
static pthread_t *start_workers(int n)
{
    pthread_t *tids = calloc((size_t)n, sizeof *tids);
    if (raw_workers) {
        raw_worker_count = n;
        pthread_create(&tids[0], NULL, raw_worker_thread, &raw_worker_count);
        return tids;
    }
    for (int i = 0; i < n; i++)
        pthread_create(&tids[i], NULL, worker_thread, NULL);
    return tids;
}

static void join_workers(pthread_t *tids, int n)
{
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < (raw_workers ? 1 : n); i++)
        pthread_join(tids[i], NULL);
    free(tids);
}

/* ------------------------------------------------------------------ */
/* raw-protocol workers                                                */

static void queue_packet(conn_t *c, int type, const char *a, size_t alen,
                         const char *b, size_t blen)
{
    /* header + a [+ \0 + b] ; b == NULL: a single argument */
    char head[12];
    uint32_t size = (uint32_t)(alen + (b ? 1 + blen : 0));
    uint32_t t = htonl((uint32_t)type), sz = htonl(size);
    memcpy(head, "\0REQ", 4);
    memcpy(head + 4, &t, 4);
    memcpy(head + 8, &sz, 4);
    queue_bytes(c, head, 12);
    if (alen)
        queue_bytes(c, a, alen);
    if (b) {
        queue_bytes(c, "", 1);
        if (blen)
            queue_bytes(c, b, blen);
    }
}

typedef struct {
    int outstanding;      /* GRAB_JOBs sent and not answered */
    int sleeping;         /* PRE_SLEEP sent, waiting for NOOP */
} wstate_t;

static void worker_grab(conn_t *c, wstate_t *w)
{
    for (; w->outstanding < grab_ahead; w->outstanding++)
        queue_packet(c, GRAB_JOB, NULL, 0, NULL, 0);
}

static void worker_packets(conn_t *c, wstate_t *w)
{
    size_t off = 0;
    uint32_t type, size;
    char *p;
    while (next_packet(c, &off, &type, &size, &p)) {
        if (type == JOB_ASSIGN) {            /* handle\0function\0data */
            char *h_end = memchr(p, 0, size);
            char *f_end = h_end ? memchr(h_end + 1, 0, size - (size_t)(h_end + 1 - p)) : NULL;
            if (!f_end) {
                fprintf(stderr, "loadgen: malformed JOB_ASSIGN\n");
                exit(3);
            }
            char *data = f_end + 1;
            queue_packet(c, WORK_COMPLETE, p, (size_t)(h_end - p),
                         data, size - (size_t)(data - p));
            w->outstanding--;
            atomic_fetch_add(&worker_jobs, 1);
            worker_grab(c, w);
        } else if (type == NO_JOB) {
            if (--w->outstanding == 0) {
                queue_packet(c, PRE_SLEEP, NULL, 0, NULL, 0);
                w->sleeping = 1;
            }
        } else if (type == NOOP) {
            if (w->sleeping) {
                w->sleeping = 0;
                worker_grab(c, w);
            }
        } else if (type == ERROR) {
            fprintf(stderr, "loadgen: worker got ERROR %.*s\n", (int)size, p);
        }
    }
    consume(c, off);
}

static void *raw_worker_thread(void *argp)
{
    int n = *(int *)argp;
    int epfd = epoll_create1(0);
    conn_t *cs = calloc((size_t)n, sizeof *cs);
    wstate_t *ws = calloc((size_t)n, sizeof *ws);
    for (int i = 0; i < n; i++) {
        conn_t *c = &cs[i];
        c->fd = tcp_connect(1);
        c->epoll_index = i;
        c->rcap = 1 << 16;
        c->rbuf = malloc(c->rcap);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
        queue_packet(c, CAN_DO, function, strlen(function), NULL, 0);
        worker_grab(c, &ws[i]);
        flush_out(c, epfd);
    }
    struct epoll_event evs[64];
    while (!atomic_load(&stop_flag)) {
        int k = epoll_wait(epfd, evs, 64, 100);
        if (k < 0 && errno != EINTR)
            die("epoll_wait");
        for (int j = 0; j < k; j++) {
            int i = (int)evs[j].data.u32;
            conn_t *c = &cs[i];
            if (evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (!read_available(c)) {
                    fprintf(stderr, "loadgen: server closed a worker connection\n");
                    exit(3);
                }
                worker_packets(c, &ws[i]);
            }
            flush_out(c, epfd);
        }
    }
    for (int i = 0; i < n; i++) {
        close(cs[i].fd);
        free(cs[i].rbuf);
        free(cs[i].wbuf);
    }
    free(cs);
    free(ws);
    close(epfd);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* admin `status`                                                      */

/* Total jobs (queued + running) of FUNC from one `status` listing; -1 if
 * the function is not listed. */
static long admin_total(int fd)
{
    static const char cmd[] = "status\n";
    if (send(fd, cmd, sizeof cmd - 1, MSG_NOSIGNAL) < 0)
        die("send status");
    static char buf[1 << 20];
    size_t len = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (r <= 0)
            die("recv status");
        len += (size_t)r;
        buf[len] = 0;
        if ((len >= 2 && strcmp(buf, ".\n") == 0) ||
            (len >= 3 && strcmp(buf + len - 3, "\n.\n") == 0))
            break;
        if (len >= sizeof buf - 1) {
            fprintf(stderr, "status listing too long\n");
            exit(2);
        }
    }
    size_t flen = strlen(function);
    for (char *line = buf; *line; ) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        if ((size_t)(nl - line) > flen && strncmp(line, function, flen) == 0 &&
            line[flen] == '\t')
            return strtol(line + flen + 1, NULL, 10);
        line = nl + 1;
    }
    return -1;
}

/* ------------------------------------------------------------------ */

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_flag, 1);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen worker|fg|bg [-h host] [-p port] [-f function]\n"
            "       [-t worker_threads] [-c connections] [-k inflight]\n"
            "       [-n jobs] [-d seconds] [-s payload_size] [-T client_threads]\n"
            "       [-W libgearman|raw] [-g grabs_outstanding] [-L] [-P]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    int wthreads = 4;
    int opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "h:p:f:t:c:k:n:d:s:T:W:g:LP")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'f': function = optarg; break;
        case 't': wthreads = atoi(optarg); break;
        case 'c': conns = atoi(optarg); break;
        case 'k': inflight = atoi(optarg); break;
        case 'n': total_jobs = atol(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 's': payload_size = atoi(optarg); break;
        case 'T': threads = atoi(optarg); break;
        case 'W':
            if (strcmp(optarg, "raw") == 0)
                raw_workers = 1;
            else if (strcmp(optarg, "libgearman") != 0)
                usage();
            break;
        case 'g': grab_ahead = atoi(optarg); break;
        case 'L': time_jobs = 1; break;
        case 'P': pause_after_submit = 1; break;
        default: usage();
        }
    }
    if (conns < 1 || inflight < 1 || wthreads < 1 || threads < 1 || payload_size < 0 ||
        grab_ahead < 1)
        usage();
    atomic_store(&to_submit, total_jobs);
    signal(SIGPIPE, SIG_IGN);

    if (strcmp(mode, "worker") == 0) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        double t0 = now();
        pthread_t *tids = start_workers(wthreads);
        while (!atomic_load(&stop_flag) && (duration <= 0 || now() - t0 < duration))
            usleep(20000);
        join_workers(tids, wthreads);
        double el = now() - t0, cpu = cpu_seconds();
        printf("{\"mode\":\"worker\",\"impl\":\"%s\",\"threads\":%d,\"jobs\":%ld,"
               "\"seconds\":%.6f,\"cpu_seconds\":%.6f}\n", raw_workers ? "raw" : "libgearman",
               wthreads, atomic_load(&worker_jobs), el, cpu);
        return 0;
    }
    if (strcmp(mode, "fg") == 0) {
        if ((total_jobs <= 0) == (duration <= 0)) {
            fprintf(stderr, "fg needs exactly one of -n JOBS and -d SECONDS\n");
            return 2;
        }
        build_submit(SUBMIT_JOB);
        double el = run_clients(0, threads);
        long done = atomic_load(&completed);
        qsort(latencies.v, latencies.n, sizeof *latencies.v, cmp_double);
        printf("{\"mode\":\"fg\",\"connections\":%d,\"inflight\":%d,\"size\":%d,"
               "\"jobs\":%ld,\"failures\":%ld,\"seconds\":%.6f,\"jobs_per_s\":%.1f,"
               "\"cpu_seconds\":%.6f,\"timed_jobs\":%zu,\"latency_p50_us\":%.1f,"
               "\"latency_p90_us\":%.1f,\"latency_p99_us\":%.1f,\"latency_max_us\":%.1f}\n",
               conns, inflight, payload_size, done,
               atomic_load(&failures), el, done / el, cpu_seconds(), latencies.n,
               percentile(&latencies, 0.5), percentile(&latencies, 0.9),
               percentile(&latencies, 0.99), percentile(&latencies, 1.0));
        return 0;
    }
    if (strcmp(mode, "bg") == 0) {
        if (total_jobs <= 0) {
            fprintf(stderr, "bg needs -n JOBS\n");
            return 2;
        }
        build_submit(SUBMIT_JOB_BG);
        double submit_s = run_clients(1, threads);
        double cpu_submit = cpu_seconds();
        long submitted = atomic_load(&completed);
        if (pause_after_submit) {
            char line[64];
            printf("{\"submitted\":%ld,\"submit_seconds\":%.6f}\n", submitted, submit_s);
            fflush(stdout);
            if (!fgets(line, sizeof line, stdin))
                return 2;
        }
        int admin = tcp_connect(0);
        long before = admin_total(admin);
        double t0 = now();
        pthread_t *tids = start_workers(wthreads);
        long left = before;
        while (left > 0) {
            usleep(2000);
            left = admin_total(admin);
        }
        double drain_s = now() - t0;
        join_workers(tids, wthreads);
        close(admin);
        printf("{\"mode\":\"bg\",\"connections\":%d,\"inflight\":%d,\"size\":%d,"
               "\"workers\":%d,\"jobs\":%ld,\"failures\":%ld,\"queued_before_drain\":%ld,"
               "\"submit_seconds\":%.6f,\"submit_per_s\":%.1f,\"drain_seconds\":%.6f,"
               "\"jobs_per_s\":%.1f,\"worker_jobs\":%ld,\"cpu_seconds_submit\":%.6f,"
               "\"cpu_seconds\":%.6f}\n",
               conns, inflight, payload_size, wthreads, submitted,
               atomic_load(&failures), before, submit_s, submitted / submit_s,
               drain_s, before / drain_s, atomic_load(&worker_jobs), cpu_submit,
               cpu_seconds());
        return 0;
    }
    usage();
    return 2;
}
