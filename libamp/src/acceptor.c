/* Listening sockets, written once for every server in the project: binding
 * a server endpoint (amp_listen_socket), and accepting on a libev loop with
 * a descriptor held in reserve so that a full descriptor table sheds the
 * waiting connection instead of spinning (amp_acceptor). amp_listen()
 * (listener.c) and the broker's metrics endpoint are built on these. */
#define _GNU_SOURCE
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "amp/conn.h"

#define ACCEPTS_PER_EVENT 64 /* fairness with the rest of the loop */

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

/* ---- binding ---------------------------------------------------------------- */

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

static amp_err bind_unix(const amp_endpoint *ep, int *out, char *err, size_t err_len)
{
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    strncpy(sa.sun_path, ep->path, sizeof sa.sun_path - 1);
    if (clear_stale_socket(ep->path) < 0)
        return fail(err, err_len, ep->path, strerror(errno));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        amp_err r = fail(err, err_len, ep->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return r;
    }
    if (ep->mode >= 0 && chmod(ep->path, (mode_t)ep->mode) < 0) {
        amp_err r = fail(err, err_len, ep->path, strerror(errno));
        close(fd);
        unlink(ep->path);
        return r;
    }
    *out = fd;
    return AMP_OK;
}

static amp_err bind_tcp(const amp_endpoint *ep, int *out, int *port_out, char *err,
                        size_t err_len)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof port, "%d", ep->port);
    int g = getaddrinfo(ep->host, port, &hints, &ai);
    if (g) {
        if (err && err_len)
            snprintf(err, err_len, "cannot resolve %s: %s", ep->host ? ep->host : "*",
                     gai_strerror(g));
        return AMP_E_RESOLVE;
    }
    /* Twisted's default interface is all IPv4 addresses */
    struct addrinfo *pick = ai;
    for (struct addrinfo *a = ai; a && !ep->host; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    int fd = socket(pick->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, pick->ai_addr, pick->ai_addrlen) < 0) {
        char what[300];
        snprintf(what, sizeof what, "cannot listen on %s:%d", ep->host ? ep->host : "*",
                 ep->port);
        amp_err r = fail(err, err_len, what, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return r;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (port_out && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *port_out = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                  : ((struct sockaddr_in6 *)&ss)->sin6_port);
    *out = fd;
    return AMP_OK;
}

amp_err amp_listen_socket(const amp_endpoint *ep, int *fd_out, int *port, char *err,
                          size_t err_len)
{
    if (!ep || !fd_out || !ep->server || (ep->kind == AMP_ENDPOINT_UNIX && !ep->path))
        return AMP_E_INVALID;
    *fd_out = -1;
    if (port)
        *port = -1;
    int fd = -1;
    amp_err r = ep->kind == AMP_ENDPOINT_UNIX ? bind_unix(ep, &fd, err, err_len)
                                              : bind_tcp(ep, &fd, port, err, err_len);
    if (r != AMP_OK)
        return r;
    if (listen(fd, ep->backlog > 0 ? ep->backlog : 50) < 0) {
        r = fail(err, err_len, "listen", strerror(errno));
        close(fd);
        if (ep->kind == AMP_ENDPOINT_UNIX)
            unlink(ep->path);
        return r;
    }
    *fd_out = fd;
    return AMP_OK;
}

/* ---- accepting ---------------------------------------------------------------- */

struct amp_acceptor {
    struct ev_loop *loop;
    int fd, port;
    char *unix_path; /* unlinked when freed */
    ev_io io;
    ev_timer pause;  /* out of descriptors: wait a little before accepting again */
    amp_acceptor_config cfg;
    int spare_fd;    /* held in reserve for accepting when out of descriptors */
    uint64_t shed;   /* connections closed at once for want of descriptors */
    int depth;       /* callbacks on the stack */
    int free_pending; /* amp_acceptor_free() ran inside one: free on the way out */
};

void amp_acceptor_config_init(amp_acceptor_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->pause = 0.1;
}

static void really_free(amp_acceptor *a)
{
    if (a->cfg.user_data_free)
        a->cfg.user_data_free(a->cfg.user_data);
    free(a);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    amp_acceptor *a = w->data;
    a->depth++; /* a callback may free a: see amp_acceptor_free */
    for (int i = 0; i < ACCEPTS_PER_EVENT && !a->free_pending; i++) {
        uint64_t shed = a->shed;
        int fd = amp_accept_or_shed(a->fd, SOCK_NONBLOCK | SOCK_CLOEXEC, &a->spare_fd, &a->shed);
        int saved = errno;
        if (a->shed != shed && a->cfg.shed)
            a->cfg.shed(a, a->cfg.user_data);
        if (fd < 0) {
            if (!a->free_pending && (saved == EMFILE || saved == ENFILE || saved == ENOBUFS ||
                                     saved == ENOMEM)) {
                /* back off: descriptors or memory may be back in a moment */
                ev_io_stop(loop, &a->io);
                ev_timer_start(loop, &a->pause);
            }
            break;
        }
        if (a->cfg.accept)
            a->cfg.accept(a, fd, a->cfg.user_data);
        else
            close(fd);
    }
    if (--a->depth == 0 && a->free_pending)
        really_free(a);
}

static void pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    amp_acceptor *a = w->data;
    if (a->spare_fd < 0) /* the reserve could not be taken back then: again */
        a->spare_fd = amp_reserve_fd();
    ev_io_start(loop, &a->io);
}

amp_err amp_acceptor_new(struct ev_loop *loop, const amp_endpoint *ep,
                         const amp_acceptor_config *cfg, amp_acceptor **out, char *err,
                         size_t err_len)
{
    if (!loop || !ep || !out)
        return AMP_E_INVALID;
    *out = NULL;
    amp_acceptor *a = calloc(1, sizeof *a);
    if (!a)
        return AMP_E_NOMEM;
    if (cfg)
        a->cfg = *cfg;
    else
        amp_acceptor_config_init(&a->cfg);
    if (ep->kind == AMP_ENDPOINT_UNIX && ep->path && !(a->unix_path = strdup(ep->path))) {
        free(a);
        return AMP_E_NOMEM;
    }
    amp_err r = amp_listen_socket(ep, &a->fd, &a->port, err, err_len);
    if (r != AMP_OK) {
        free(a->unix_path);
        free(a);
        return r;
    }
    a->loop = loop;
    a->spare_fd = amp_reserve_fd(); /* -1 is survivable: then only the pause */
    ev_io_init(&a->io, accept_cb, a->fd, EV_READ);
    a->io.data = a;
    ev_timer_init(&a->pause, pause_cb, a->cfg.pause > 0 ? a->cfg.pause : 0.1, 0);
    a->pause.data = a;
    ev_io_start(loop, &a->io);
    *out = a;
    return AMP_OK;
}

int amp_acceptor_fd(const amp_acceptor *a)
{
    return a ? a->fd : -1;
}

int amp_acceptor_port(const amp_acceptor *a)
{
    return a ? a->port : -1;
}

uint64_t amp_acceptor_shed(const amp_acceptor *a)
{
    return a ? a->shed : 0;
}

void amp_acceptor_free(amp_acceptor *a)
{
    if (!a || a->free_pending)
        return;
    /* the socket closes now, also from a callback */
    ev_io_stop(a->loop, &a->io);
    ev_timer_stop(a->loop, &a->pause);
    close(a->fd);
    a->fd = -1;
    if (a->spare_fd >= 0)
        close(a->spare_fd);
    a->spare_fd = -1;
    if (a->unix_path) {
        unlink(a->unix_path);
        free(a->unix_path);
        a->unix_path = NULL;
    }
    a->free_pending = 1;
    if (a->depth == 0)
        really_free(a);
}
