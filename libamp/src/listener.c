/* Listeners: accept connections on TCP, TLS or UNIX server endpoints. */
#define _GNU_SOURCE
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn_internal.h"
#include "tls.h"

struct amp_listener {
    struct ev_loop *loop;
    int fd;
    ev_io io;
    ev_timer pause; /* out of descriptors: wait a little before accepting again */
    amp_conn_config cfg;
    amp_accept_cb cb;
    void *user_data;
    SSL_CTX *ctx;
    int port;
    int is_unix;
    char *unix_path;
    int spare_fd;      /* held in reserve for accepting when out of descriptors */
    uint64_t shed;     /* connections closed at once for want of descriptors */
    int depth;         /* accept callbacks on the stack */
    int free_pending;  /* amp_listener_free() ran inside one: free on the way out */
};

int amp_reserve_fd(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int amp_accept_or_shed(int listen_fd, int flags, int *spare, uint64_t *shed)
{
    int fd = accept4(listen_fd, NULL, NULL, flags);
    if (fd >= 0 || (errno != EMFILE && errno != ENFILE))
        return fd;
    int saved = errno;
    /* The descriptor table is full. The pending connection would stay at
     * the head of the queue, its client waiting and a level-triggered
     * watcher firing without end: give up the reserve to take it, close
     * it so its client sees the close, and take the reserve back. */
    if (spare && *spare >= 0) {
        close(*spare);
        *spare = -1;
        int victim = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (victim >= 0) {
            close(victim);
            if (shed)
                ++*shed;
        }
        *spare = amp_reserve_fd();
    }
    errno = saved;
    return -1;
}

static void listener_release(amp_listener *l)
{
    if (l->loop) {
        ev_io_stop(l->loop, &l->io);
        ev_timer_stop(l->loop, &l->pause);
    }
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->spare_fd >= 0)
        close(l->spare_fd);
    l->spare_fd = -1;
    if (l->unix_path) {
        unlink(l->unix_path);
        free(l->unix_path);
        l->unix_path = NULL;
    }
    if (l->ctx)
        SSL_CTX_free(l->ctx);
    l->ctx = NULL;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    amp_listener *l = w->data;
    l->depth++; /* the callback may free l: see amp_listener_free */
    for (int i = 0; i < 64 && !l->free_pending; i++) {
        int fd = amp_accept_or_shed(l->fd, SOCK_NONBLOCK | SOCK_CLOEXEC, &l->spare_fd, &l->shed);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* back off: descriptors or memory may be back in a moment */
                ev_io_stop(loop, &l->io);
                ev_timer_start(loop, &l->pause);
            }
            break;
        }
        if (!l->is_unix)
            amp__conn_tune_tcp(fd);
        amp_conn *c = amp__conn_new(loop, fd, &l->cfg);
        if (!c) {
            close(fd);
            continue;
        }
        c->unix_socket = l->is_unix;
        if (amp__conn_accepted(c, l->ctx)) {
            amp_conn_abort(c);
            continue;
        }
        if (l->cb)
            l->cb(l, c, l->user_data);
    }
    if (--l->depth == 0 && l->free_pending)
        free(l);
}

static void pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    amp_listener *l = w->data;
    ev_io_start(loop, &l->io);
}

static amp_err fail(char *err, size_t n, const char *what, const char *detail)
{
    if (err && n)
        snprintf(err, n, "%s: %s", what, detail);
    return AMP_E_IO;
}

/* A UNIX socket path that exists: reuse it only if nobody listens there. */
static int clear_stale_socket(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        errno = EEXIST;
        return -1;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
    int in_use = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (probe >= 0)
        close(probe);
    if (in_use) {
        errno = EADDRINUSE;
        return -1;
    }
    return unlink(path);
}

amp_err amp_listen(struct ev_loop *loop, const char *endpoint, const amp_conn_config *cfg,
                   amp_accept_cb cb, void *user_data, amp_listener **out, char *err,
                   size_t err_len)
{
    if (!loop || !endpoint || !out)
        return AMP_E_INVALID;
    *out = NULL;
    amp_endpoint ep;
    amp_err r = amp_endpoint_parse(endpoint, 1, &ep, err, err_len);
    if (r != AMP_OK)
        return r;
    amp_listener *l = calloc(1, sizeof *l);
    if (!l) {
        amp_endpoint_free(&ep);
        return AMP_E_NOMEM;
    }
    l->loop = loop;
    l->fd = -1;
    l->port = -1;
    l->spare_fd = amp_reserve_fd(); /* -1 is survivable: then only the pause */
    if (cfg)
        l->cfg = *cfg;
    l->cb = cb;
    l->user_data = user_data;
    if (ep.kind == AMP_ENDPOINT_SSL) {
        l->ctx = amp__tls_ctx(&ep.tls, 1, err, err_len);
        if (!l->ctx) {
            r = AMP_E_TLS;
            goto fail;
        }
    }
    if (ep.kind == AMP_ENDPOINT_UNIX) {
        l->is_unix = 1;
        struct sockaddr_un sa = {0};
        sa.sun_family = AF_UNIX;
        strncpy(sa.sun_path, ep.path, sizeof sa.sun_path - 1);
        if (clear_stale_socket(ep.path) < 0) {
            r = fail(err, err_len, ep.path, strerror(errno));
            goto fail;
        }
        l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            r = fail(err, err_len, ep.path, strerror(errno));
            goto fail;
        }
        l->unix_path = strdup(ep.path);
        if (ep.mode >= 0 && chmod(ep.path, (mode_t)ep.mode) < 0) {
            r = fail(err, err_len, ep.path, strerror(errno));
            goto fail;
        }
    } else {
        struct addrinfo hints = {0}, *ai = NULL;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE;
        char port[16];
        snprintf(port, sizeof port, "%d", ep.port);
        int g = getaddrinfo(ep.host, port, &hints, &ai);
        if (g) {
            if (err)
                snprintf(err, err_len, "cannot resolve %s: %s", ep.host ? ep.host : "*",
                         gai_strerror(g));
            r = AMP_E_RESOLVE;
            goto fail;
        }
        /* Twisted's default interface is all IPv4 addresses */
        struct addrinfo *pick = ai;
        for (struct addrinfo *a = ai; a && !ep.host; a = a->ai_next)
            if (a->ai_family == AF_INET) {
                pick = a;
                break;
            }
        l->fd = socket(pick->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        if (l->fd >= 0)
            setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (l->fd < 0 || bind(l->fd, pick->ai_addr, pick->ai_addrlen) < 0) {
            char what[300];
            snprintf(what, sizeof what, "cannot listen on %s:%d", ep.host ? ep.host : "*",
                     ep.port);
            r = fail(err, err_len, what, strerror(errno));
            freeaddrinfo(ai);
            goto fail;
        }
        freeaddrinfo(ai);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) == 0)
            l->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    if (listen(l->fd, ep.backlog) < 0) {
        r = fail(err, err_len, "listen", strerror(errno));
        goto fail;
    }
    ev_io_init(&l->io, accept_cb, l->fd, EV_READ);
    l->io.data = l;
    ev_timer_init(&l->pause, pause_cb, 0.1, 0);
    l->pause.data = l;
    ev_io_start(loop, &l->io);
    amp_endpoint_free(&ep);
    *out = l;
    return AMP_OK;
fail:
    amp_endpoint_free(&ep);
    amp_listener_free(l);
    return r;
}

int amp_listener_port(const amp_listener *l)
{
    return l ? l->port : -1;
}

uint64_t amp_listener_shed(const amp_listener *l)
{
    return l ? l->shed : 0;
}

void amp_listener_free(amp_listener *l)
{
    if (!l || l->free_pending)
        return;
    listener_release(l); /* the socket closes now, also from a callback */
    if (l->depth > 0) {
        l->free_pending = 1; /* accept_cb is on the stack: it frees l */
        return;
    }
    free(l);
}
