/* Records from the coordinator -> bytes queued on connections -> sockets
 * (the twin of acceptor/outbound.py and connection.py's output queue).
 *
 * Every SEND is one queued item; a flush hands the leading run of them to
 * one writev, and a spool file's bytes to sendfile after its head.  A
 * record for a connection that has gone is dropped, and a spool file it
 * names is unlinked.
 */
#include "aloop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define IOV_BATCH 64

static al_item *
new_item(const unsigned char *data, size_t len, int fd, uint64_t fsize)
{
    al_item *it = malloc(sizeof *it + len);
    if (it == NULL)
        return NULL;
    it->next = NULL;
    it->fd = fd;
    it->foff = 0;
    it->fleft = fsize;
    it->len = len;
    it->done = 0;
    memcpy(it->data, data, len);
    return it;
}

static void
enqueue(al_conn *c, al_item *it)
{
    if (c->out_last)
        c->out_last->next = it;
    else
        c->out = it;
    c->out_last = it;
    c->out_bytes += it->len + it->fleft;
}

/* A peer that stopped reading must not make us hold unbounded memory or
   spool: what waits behind the item being written counts. */
static void
check_backlog(al_loop *L, al_conn *c)
{
    al_item *first = c->out;
    uint64_t backlog = first ? c->out_bytes - (first->len - first->done + first->fleft) : 0;
    if (backlog > L->max_queued) {
        al_log(L, LOG_WARNING, "dropping connection %d: %llu bytes queued and it is "
               "not reading", c->fd, (unsigned long long)backlog);
        al_close_conn(L, c);
    }
}

static void
drop_name(al_loop *L, const char *name)
{
    if (unlinkat(L->spool_dir, name, 0) < 0 && errno != ENOENT)
        al_log(L, LOG_ERROR, "cannot remove spool file %s: %s", name, strerror(errno));
}

/* Queue bytes made here (a local answer): never closes the connection. */
int
al_queue(al_loop *L, al_conn *c, const unsigned char *data, size_t len)
{
    al_item *it = new_item(data, len, -1, 0);
    if (it == NULL)
        return -1;
    enqueue(c, it);
    al_touch(L, c);
    return 0;
}

static void
on_send(al_loop *L, al_conn *c, const unsigned char *data, size_t len)
{
    if (c == NULL || c->closing || !len)
        return;
    if (al_queue(L, c, data, len) < 0) {
        al_log(L, LOG_ERROR, "out of memory, closing connection %llu",
               (unsigned long long)c->number);
        al_close_conn(L, c);
        return;
    }
    if (c->out_bytes > L->max_queued)
        check_backlog(L, c);
}

static void
on_sendfile(al_loop *L, al_conn *c, const unsigned char *rest, size_t len)
{
    uint64_t size;
    uint16_t nlen;
    char name[256];
    if (len < 10)
        return;
    memcpy(&size, rest, 8);
    memcpy(&nlen, rest + 8, 2);
    if (nlen >= sizeof name || (size_t)nlen > len - 10)
        return;
    memcpy(name, rest + 10, nlen);
    name[nlen] = 0;
    const unsigned char *head = rest + 10 + nlen;
    size_t hlen = len - 10 - nlen;
    if (c == NULL || c->closing) {
        drop_name(L, name);
        return;
    }
    int fd = openat(L->spool_dir, name, O_RDONLY | O_CLOEXEC);
    int err = errno;
    drop_name(L, name);
    al_touch(L, c);
    if (fd < 0) {
        al_log(L, LOG_ERROR, "closing connection %d: spool file %s is unusable (%s)",
               c->fd, name, strerror(err));
        c->closing = 1;
        return;
    }
    if (!size) {
        close(fd);
        fd = -1;
    }
    al_item *it = new_item(head, hlen, fd, size);
    if (it == NULL) {
        if (fd >= 0)
            close(fd);
        al_close_conn(L, c);
        return;
    }
    enqueue(c, it);
    if (c->out_bytes > L->max_queued)
        check_backlog(L, c);
}

/* One outbound record. */
void
al_apply(al_loop *L, const unsigned char *rec, uint32_t len)
{
    uint64_t id;
    if (len < 9) {
        al_log(L, LOG_ERROR, "outbound record of %u bytes ignored", len);
        return;
    }
    memcpy(&id, rec + 1, 8);
    al_conn *c = al_find(L, id);
    switch (rec[0]) {
    case K_SEND:
        on_send(L, c, rec + 9, len - 9);
        break;
    case K_SENDFILE:
        on_sendfile(L, c, rec + 9, len - 9);
        break;
    case K_CLOSE:
        if (c != NULL) {
            c->closing = 1;
            al_touch(L, c);
        }
        break;
    default:
        al_log(L, LOG_ERROR, "unknown outbound record kind %u ignored", rec[0]);
    }
}

static void
pop_item(al_conn *c)
{
    al_item *it = c->out;
    c->out = it->next;
    if (c->out == NULL)
        c->out_last = NULL;
    if (it->fd >= 0)
        close(it->fd);
    free(it);
}

/* The head and file of a spool item. 1 done, 0 blocked, -1 failed. */
static int
flush_file(al_conn *c, al_item *it)
{
    while (it->done < it->len) {
        ssize_t n = send(c->fd, it->data + it->done, it->len - it->done, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        it->done += (size_t)n;
        c->out_bytes -= (uint64_t)n;
    }
    while (it->fleft) {
        off_t off = (off_t)it->foff;
        size_t want = it->fleft < (1u << 24) ? (size_t)it->fleft : (1u << 24);
        ssize_t n = sendfile(c->fd, it->fd, &off, want);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        if (n == 0)
            return -1;         /* the spool file is shorter than announced */
        it->foff += (uint64_t)n;
        it->fleft -= (uint64_t)n;
        c->out_bytes -= (uint64_t)n;
    }
    pop_item(c);
    return 1;
}

/* The leading run of plain items in one writev. 1 all sent, 0 blocked. */
static int
flush_bytes(al_conn *c)
{
    struct iovec iov[IOV_BATCH];
    int k = 0;
    for (al_item *it = c->out; it && it->fd < 0 && k < IOV_BATCH; it = it->next) {
        iov[k].iov_base = it->data + it->done;
        iov[k].iov_len = it->len - it->done;
        k++;
    }
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)k};
    ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    c->out_bytes -= (uint64_t)n;
    size_t left = (size_t)n;
    while (c->out && c->out->fd < 0 && left >= c->out->len - c->out->done) {
        left -= c->out->len - c->out->done;
        pop_item(c);
    }
    if (left) {
        c->out->done += left;
        return 0;
    }
    return 1;
}

int
al_flush(al_conn *c)
{
    while (c->out) {
        int rc = c->out->fd >= 0 || c->out->fleft ? flush_file(c, c->out) : flush_bytes(c);
        if (rc <= 0)
            return rc;
    }
    return 1;
}

void
al_free_output(al_conn *c)
{
    while (c->out)
        pop_item(c);
}
