/* The acceptor loop's connections coming and going: accepting (with
 * --max-connections and running out of descriptors), closing, and the
 * lingering close.
 */
#include "aloop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define LINGER 5.0
#define LOG_EVERY 60.0
#define RELEASE_ABOVE (1u << 20)

void
al_update_listening(al_loop *L)
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
    double now = al_now();
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
    al_update_listening(L);
}

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

void
al_accept(al_loop *L, int lfd)
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
                L->accept_paused = al_now() + ACCEPT_PAUSE;
                al_update_listening(L);
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
        if (al_insert(L, c) < 0 || epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            if (L->by_fd_cap > fd && L->by_fd[fd] == c)
                al_unlink(L, c);
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
    al_untouch(L, c);
    al_unlink(L, c);
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
void
al_linger(al_loop *L, al_conn *c)
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
    c->linger_until = al_now() + LINGER;
    if (c->muted) {
        c->muted = 0;
        L->nmuted--;
    }
    al_set_mask(L, c, EPOLLIN);
}

