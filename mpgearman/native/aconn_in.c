/* Socket bytes -> records for the coordinator (the twin of
 * acceptor/inbound.py and protocol/decoder.py in raw mode).
 *
 * A read lands in the loop's receive buffer; bytes of an unfinished request
 * are kept in the connection (c->in) until the rest comes.  Whole small
 * packets become PACKET records, admin lines ADMIN records, packets of the
 * wrong magic or a type a server does not take are skipped and answered
 * with an ERROR (RELAY); a body above the stream threshold goes to a spool
 * file as it arrives (SPOOLED); fatal input gets an ERROR, then the
 * connection is read no more (the coordinator closes it after the answers
 * to its earlier requests).
 */
#include "aloop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

enum { NEED = 0, AGAIN = 1, FAIL = -1 };

static inline uint32_t
be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16)
           | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void
put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static size_t
count_nul(const unsigned char *p, size_t n)
{
    size_t k = 0;
    const unsigned char *end = p + n;
    while (p < end && (p = memchr(p, 0, (size_t)(end - p))) != NULL) {
        k++;
        p++;
    }
    return k;
}

/* An ERROR packet as a RELAY record; close_after: the connection ends. */
static void
relay_error(al_loop *L, al_conn *c, const char *code, const char *text,
            int close_after)
{
    size_t nc = strlen(code), nt = strlen(text);
    unsigned char pkt[AL_HEADER + 256];
    if (nc + 1 + nt > sizeof pkt - AL_HEADER - 1)
        nt = sizeof pkt - AL_HEADER - 1 - nc - 1;
    memcpy(pkt, "\0RES", 4);
    put_be32(pkt + 4, 19);
    put_be32(pkt + 8, (uint32_t)(nc + 1 + nt));
    memcpy(pkt + AL_HEADER, code, nc);
    pkt[AL_HEADER + nc] = 0;
    memcpy(pkt + AL_HEADER + nc + 1, text, nt);
    unsigned char flag = (unsigned char)(close_after != 0);
    al_emit(L, K_RELAY, c->id, &flag, 1, pkt, AL_HEADER + nc + 1 + nt);
    c->last = L->records_in;
}

void
al_deadline_start(al_loop *L, al_conn *c)
{
    if (L->request_timeout <= 0)
        return;
    if (!c->due)
        L->ndue++;
    c->due = L->now + L->request_timeout;
    c->got = 0;
}

void
al_deadline_done(al_loop *L, al_conn *c)
{
    if (c->due) {
        c->due = 0;
        L->ndue--;
    }
}

void
al_spool_abort(al_loop *L, al_conn *c)
{
    if (c->spool_fd >= 0) {
        char part[80];
        close(c->spool_fd);
        snprintf(part, sizeof part, "%s.part", c->spool_name);
        unlinkat(L->spool_dir, part, 0);
    }
    c->spool_fd = -1;
    free(c->spool_args);
    c->spool_args = NULL;
    if (c->reserved)
        al_reserve(L, c, 0);
}

void
al_refuse(al_loop *L, al_conn *c, const char *code, const char *text)
{
    c->reading = 0;
    al_touch(L, c);
    al_deadline_done(L, c);
    al_spool_abort(L, c);
    c->state = ST_BOUNDARY;
    relay_error(L, c, code, text, 1);
}

static int
fatal(al_loop *L, al_conn *c, const char *code, const char *text)
{
    al_log(L, LOG_INFO, "closing connection %llu: %s: %s",
           (unsigned long long)c->number, code, text);
    al_refuse(L, c, code, text);
    return FAIL;
}

static int
spool_failed(al_loop *L, al_conn *c, int err)
{
    char text[160];
    al_log(L, LOG_ERROR, "spool write failed, closing connection %llu: %s",
           (unsigned long long)c->number, strerror(err));
    snprintf(text, sizeof text, "Spool write failed: %s", strerror(err));
    al_refuse(L, c, "QUEUE_ERROR", text);
    return FAIL;
}

/* The checks of decoder._raw_parser on a whole body; NULL = valid. */
static int
check_body(al_loop *L, al_conn *c, uint32_t type, const unsigned char *body,
           uint64_t size)
{
    unsigned argc = L->types[type] & AL_ARGC;
    if (L->types[type] & AL_HAS_DATA) {
        uint64_t win = size < AL_MAX_ARGS ? size : AL_MAX_ARGS;
        if (count_nul(body, win) >= argc)
            return 0;
        return size <= AL_MAX_ARGS
            ? fatal(L, c, "INVALID_PACKET", "Malformed packet: missing argument")
            : fatal(L, c, "ARGUMENT_TOO_LARGE", "Packet arguments longer than 8192 bytes");
    }
    if (size > AL_MAX_ARGS)
        return fatal(L, c, "ARGUMENT_TOO_LARGE", "Packet arguments longer than 8192 bytes");
    if (argc > 1 && count_nul(body, size) < argc - 1)
        return fatal(L, c, "INVALID_PACKET", "Malformed packet: missing argument");
    return 0;
}

static int
whole_packet(al_loop *L, al_conn *c, uint32_t type, const unsigned char *body,
             uint64_t size)
{
    if (check_body(L, c, type, body, size) < 0)
        return FAIL;
    unsigned char t[2] = {(unsigned char)type, (unsigned char)(type >> 8)};
    if (!(L->types[type] & (AL_ARGC | AL_HAS_DATA)))
        size = 0;                 /* the payload is ignored, as the twin does */
    if (type == AL_GET_STATUS && al_local_status(L, c, body, (size_t)size))
        return AGAIN;
    al_emit(L, K_PACKET, c->id, t, 2, body, (size_t)size);
    c->last = L->records_in;
    return AGAIN;
}

/* A streamed body starts: its arguments are in; open the spool file (or
   refuse the body when the spool is full), then the data follows. */
static int
stream_head(al_loop *L, al_conn *c, uint32_t type, const unsigned char *args,
            size_t nargs, uint64_t data_size)
{
    c->state = ST_STREAM;
    c->ptype = type;
    c->left = data_size;
    c->spool_size = data_size;
    if ((L->types[type] & AL_SUBMISSION) && L->max_spool && L->fig
        && al_spool_in_use(L) + data_size > L->max_spool) {
        c->spool_fd = -2;
        return AGAIN;
    }
    snprintf(c->spool_name, sizeof c->spool_name, "%s.%llu", L->tag,
             (unsigned long long)++L->spool_serial);
    char part[80];
    snprintf(part, sizeof part, "%s.part", c->spool_name);
    c->spool_fd = openat(L->spool_dir, part,
                         O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (c->spool_fd < 0) {
        c->spool_fd = -1;
        return spool_failed(L, c, errno);
    }
    c->spool_args = malloc(nargs ? nargs : 1);
    if (c->spool_args == NULL)
        return spool_failed(L, c, ENOMEM);
    memcpy(c->spool_args, args, nargs);
    c->spool_args_len = nargs;
    al_reserve(L, c, data_size);
    return AGAIN;
}

static int
stream_end(al_loop *L, al_conn *c)
{
    c->state = ST_BOUNDARY;
    if (c->spool_fd == -2) {
        c->spool_fd = -1;
        relay_error(L, c, "QUEUE_ERROR", "Spool is full (--max-spool-bytes)", 0);
        return AGAIN;
    }
    char part[80];
    snprintf(part, sizeof part, "%s.part", c->spool_name);
    int fd = c->spool_fd;
    c->spool_fd = -1;
    al_reserve(L, c, 0);
    if (close(fd) < 0 || renameat(L->spool_dir, part, L->spool_dir, c->spool_name) < 0) {
        int err = errno;
        unlinkat(L->spool_dir, part, 0);
        return spool_failed(L, c, err);
    }
    size_t nlen = strlen(c->spool_name);
    unsigned char fixed[2 + 8 + 2 + 64];
    fixed[0] = (unsigned char)c->ptype;
    fixed[1] = (unsigned char)(c->ptype >> 8);
    memcpy(fixed + 2, &c->spool_size, 8);
    uint16_t n16 = (uint16_t)nlen;
    memcpy(fixed + 10, &n16, 2);
    memcpy(fixed + 12, c->spool_name, nlen);
    al_emit(L, K_SPOOLED, c->id, fixed, 12 + nlen, c->spool_args, c->spool_args_len);
    c->last = L->records_in;
    free(c->spool_args);
    c->spool_args = NULL;
    L->spooled += c->spool_size;
    al_figure(L, MPG_CTR_C_OFF, L->spooled);
    return AGAIN;
}

static int
stream_data(al_loop *L, al_conn *c, const unsigned char *p, size_t n)
{
    while (n && c->spool_fd >= 0) {
        ssize_t w = write(c->spool_fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return spool_failed(L, c, errno);
        }
        p += w;
        n -= (size_t)w;
    }
    return AGAIN;
}

/* A streamed packet's head: wait for its NUL-terminated arguments. */
static int
stream_args(al_loop *L, al_conn *c, uint32_t type, const unsigned char *p,
            size_t avail, uint64_t size, size_t *used)
{
    unsigned argc = L->types[type] & AL_ARGC;
    size_t win = size < AL_MAX_ARGS ? (size_t)size : AL_MAX_ARGS;
    size_t have = avail - AL_HEADER < win ? avail - AL_HEADER : win;
    const unsigned char *body = p + AL_HEADER;
    size_t end = 0;
    if (argc) {
        c->nuls += count_nul(body + c->searched, have - c->searched);
        c->searched = have;
        if (c->nuls < argc) {
            if (have == win)
                return size <= AL_MAX_ARGS
                    ? fatal(L, c, "INVALID_PACKET", "Malformed packet: missing argument")
                    : fatal(L, c, "ARGUMENT_TOO_LARGE",
                            "Packet arguments longer than 8192 bytes");
            return NEED;
        }
        for (unsigned i = 0; i < argc; i++)
            end = (size_t)((const unsigned char *)memchr(body + end, 0, have - end)
                           - body) + 1;
    }
    c->searched = c->nuls = 0;
    *used = AL_HEADER + end;
    return stream_head(L, c, type, body, end, size - end);
}

static int
text_line(al_loop *L, al_conn *c, const unsigned char *p, size_t avail,
          size_t *used)
{
    size_t win = avail < AL_MAX_LINE ? avail : AL_MAX_LINE;
    const unsigned char *nl = memchr(p + c->searched, '\n', win - c->searched);
    if (nl == NULL) {
        if (win == AL_MAX_LINE)
            return fatal(L, c, "ARGUMENT_TOO_LARGE", "Text command line too long");
        c->searched = win;
        return NEED;
    }
    c->searched = 0;
    size_t end = (size_t)(nl - p);
    unsigned char crlf = end > 0 && p[end - 1] == '\r';
    al_emit(L, K_ADMIN, c->id, &crlf, 1, p, end - crlf);
    c->last = L->records_in;
    *used = end + 1;
    return AGAIN;
}

/* One step at a packet boundary over p[0..avail); *used: bytes taken. */
static int
boundary(al_loop *L, al_conn *c, const unsigned char *p, size_t avail,
         size_t *used)
{
    if (p[0])
        return text_line(L, c, p, avail, used);
    if (avail < AL_HEADER)
        return NEED;
    int res = memcmp(p, "\0RES", 4) == 0;
    if (!res && memcmp(p, "\0REQ", 4) != 0)
        return fatal(L, c, "INVALID_MAGIC", "Bad packet magic");
    uint32_t type = be32(p + 4), size = be32(p + 8);
    if (type < 1 || type > AL_MAX_TYPE)
        return fatal(L, c, "INVALID_COMMAND", "Bad packet type");
    if (size > L->max_payload)
        return fatal(L, c, "ARGUMENT_TOO_LARGE", "Packet larger than the maximum payload");
    unsigned flags = L->types[type];
    if (res || !(flags & AL_REQUEST)) {
        c->state = ST_SKIP;
        c->ptype = type;
        c->reject_magic = res;
        c->left = size;
        *used = AL_HEADER;
        return AGAIN;
    }
    if ((flags & AL_HAS_DATA) && size > L->stream_threshold)
        return stream_args(L, c, type, p, avail, size, used);
    if (!(flags & AL_HAS_DATA) && size > AL_MAX_ARGS)
        return fatal(L, c, "ARGUMENT_TOO_LARGE", "Packet arguments longer than 8192 bytes");
    if (avail - AL_HEADER < size)
        return NEED;
    *used = AL_HEADER + size;
    return whole_packet(L, c, type, p + AL_HEADER, size);
}

/* Decode p[0..n): returns bytes consumed, or (size_t)-1 after a fatal error. */
static size_t
decode(al_loop *L, al_conn *c, const unsigned char *p, size_t n)
{
    size_t pos = 0;
    /* A skipped or streamed body of 0 bytes ends with no byte to read. */
    while (pos < n || (c->state != ST_BOUNDARY && !c->left)) {
        size_t used = 0, k;
        int rc;
        switch (c->state) {
        case ST_SKIP:
            k = c->left < n - pos ? (size_t)c->left : n - pos;
            pos += k;
            c->left -= k;
            if (c->left)
                return pos;
            c->state = ST_BOUNDARY;
            relay_error(L, c, c->reject_magic ? "INVALID_MAGIC" : "INVALID_COMMAND",
                        c->reject_magic ? "Request magic expected" : "Command not expected", 0);
            continue;
        case ST_STREAM:
            k = c->left < n - pos ? (size_t)c->left : n - pos;
            if (stream_data(L, c, p + pos, k) < 0)
                return (size_t)-1;
            pos += k;
            c->left -= k;
            if (c->left)
                return pos;
            if (stream_end(L, c) < 0)
                return (size_t)-1;
            continue;
        default:
            rc = boundary(L, c, p + pos, n - pos, &used);
            if (rc == FAIL)
                return (size_t)-1;
            if (rc == NEED)
                return pos;
            pos += used;
        }
    }
    return pos;
}

static int
keep(al_conn *c, const unsigned char *p, size_t n)
{
    if (n > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : 256;
        while (cap < n)
            cap *= 2;
        unsigned char *in = malloc(cap);
        if (in == NULL)
            return -1;
        memcpy(in, p, n);
        free(c->in);
        c->in = in;
        c->in_cap = cap;
    } else if (n) {
        memmove(c->in, p, n);
    }
    c->in_len = n;
    if (!n && c->in_cap > 4096) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    return 0;
}

/* Read what the socket has and handle it.  0 when the connection is
   finished (peer closed, error), 1 otherwise. */
int
al_read(al_loop *L, al_conn *c)
{
    ssize_t n = recv(c->fd, L->rbuf, AL_RECV_SIZE, 0);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    if (n == 0)
        return 0;
    L->turn_read += (uint64_t)n;
    const unsigned char *p = L->rbuf;
    size_t len = (size_t)n;
    if (c->in_len) {
        if (c->in_len + len > c->in_cap) {
            size_t cap = c->in_cap * 2 > c->in_len + len ? c->in_cap * 2 : c->in_len + len;
            unsigned char *in = realloc(c->in, cap);
            if (in == NULL)
                return 0;
            c->in = in;
            c->in_cap = cap;
        }
        memcpy(c->in + c->in_len, p, len);
        c->in_len += len;
        p = c->in;
        len = c->in_len;
    }
    uint64_t before = L->records_in + L->local_answers;
    size_t used = decode(L, c, p, len);
    if (used == (size_t)-1) {
        keep(c, p, 0);
        return 1;
    }
    if (keep(c, p + used, len - used) < 0)
        return 0;
    if (c->state != ST_BOUNDARY || c->in_len) {
        if (L->request_timeout > 0) {
            if (L->records_in + L->local_answers != before || !c->due) {
                al_deadline_start(L, c);
            } else {
                c->got += (uint64_t)n;
                if (c->got >= AL_PROGRESS)
                    al_deadline_start(L, c);
            }
        }
    } else if (c->due) {
        al_deadline_done(L, c);
    }
    return 1;
}

/* A lingering connection: drop what the peer still sends.  0 once it has
   closed its side (or failed). */
int
al_discard(al_loop *L, al_conn *c)
{
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(c->fd, L->rbuf, AL_RECV_SIZE, 0);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        if (n == 0)
            return 0;
    }
    return 1;
}
