/* Connecting: client endpoints (TCP with every address of a name tried in
 * turn, resolved off the loop by resolve.c; ssl:; UNIX), and adopting a
 * socket that is already connected. */
#define _GNU_SOURCE
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "amp/conn.h"
#include "conn_internal.h"
#include "resolve.h"
#include "tls.h"

void amp__conn_tune_tcp(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Start connecting to the next address not yet tried. 0: under way; -1:
 * none left (c->connect_errno says why the last one failed). */
static int connect_next(amp_conn *c)
{
    while (c->next_addr) {
        struct addrinfo *a = c->next_addr;
        c->next_addr = a->ai_next;
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            c->connect_errno = errno;
            continue;
        }
        amp__conn_tune_tcp(fd);
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS &&
            errno != EAGAIN) {
            c->connect_errno = errno;
            close(fd);
            continue;
        }
        c->t->fd = fd;
        ev_io_set(&c->rio, fd, EV_READ);
        ev_io_set(&c->wio, fd, EV_WRITE);
        ev_io_start(c->loop, &c->wio); /* writable: connected or failed */
        return 0;
    }
    return -1;
}

void amp__conn_connected(amp_conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(c->t->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr) { /* this address failed: the next one, if any */
        ev_io_stop(c->loop, &c->wio);
        close(c->t->fd);
        c->t->fd = -1;
        c->connect_errno = soerr;
        if (connect_next(c) == 0)
            return;
        amp__conn_set_error(c, "connect failed: %s", strerror(soerr));
        amp__conn_finish(c, AMP_E_CONNECT);
        return;
    }
    ev_io_stop(c->loop, &c->wio);
    if (c->addrs) {
        freeaddrinfo(c->addrs);
        c->addrs = c->next_addr = NULL;
    }
    if (c->pending_tls_ctx) { /* ssl: endpoint */
        if (amp__tls_client_begin(c)) {
            amp__conn_set_error(c, "%s", "cannot start TLS");
            amp__conn_finish(c, AMP_E_TLS);
        }
        return;
    }
    c->state = CONN_OPEN;
    ev_io_start(c->loop, &c->rio);
    amp__conn_report_ready(c);
    if (c->state == CONN_OPEN)
        amp__conn_flush(c);
}

/* The lookup of a host name finished (on the loop). */
static void resolved(void *ud, struct addrinfo *addrs, int gai_error)
{
    amp_conn *c = ud;
    amp__conn_enter(c);
    c->lookup = NULL;
    if (!addrs) {
        char what[300];
        snprintf(what, sizeof what, "cannot resolve %s: %s", c->connect_host,
                 gai_strerror(gai_error));
        amp__conn_set_error(c, "%s", what);
        amp__conn_finish(c, AMP_E_RESOLVE);
    } else {
        c->addrs = c->next_addr = addrs;
        if (connect_next(c)) {
            amp__conn_set_error(c, "connect failed: %s", strerror(c->connect_errno));
            amp__conn_finish(c, AMP_E_CONNECT);
        }
    }
    amp__conn_leave(c);
}

/* A new connection in CONN_CONNECTING (fd -1: without a socket yet). */
static amp_conn *connecting(struct ev_loop *loop, const amp_endpoint *ep,
                            const amp_conn_config *cfg, SSL_CTX *ctx, int fd)
{
    int is_unix = ep->kind == AMP_ENDPOINT_UNIX;
    amp_conn *c = amp__conn_new(loop, amp__transport_socket_new(fd, is_unix,
                                                                cfg ? cfg->max_fds : 0), cfg);
    if (!c)
        return NULL;
    if (!is_unix) {
        c->connect_host = strdup(ep->host); /* what StartTLS verifies */
        if (ctx)
            c->hostname = strdup(ep->tls.hostname ? ep->tls.hostname : ep->host);
        if (!c->connect_host || (ctx && !c->hostname)) {
            amp__conn_free_unused(c);
            return NULL;
        }
        c->verify_host = !ep->tls.insecure_skip_verify;
    }
    c->pending_tls_ctx = ctx;
    c->state = CONN_CONNECTING;
    amp__conn_deadline_start(c, ep->timeout);
    return c;
}

static amp_err connect_unix(struct ev_loop *loop, const amp_endpoint *ep,
                            const amp_conn_config *cfg, amp_conn **out, char *err,
                            size_t err_len)
{
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    strncpy(sa.sun_path, ep->path, sizeof sa.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS &&
                   errno != EAGAIN)) {
        if (err)
            snprintf(err, err_len, "cannot connect to %s: %s", ep->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return AMP_E_CONNECT;
    }
    amp_conn *c = connecting(loop, ep, cfg, NULL, fd);
    if (!c) {
        close(fd);
        return AMP_E_NOMEM;
    }
    ev_io_start(loop, &c->wio);
    *out = c;
    return AMP_OK;
}

amp_err amp__connect_addrinfo(struct ev_loop *loop, const amp_endpoint *ep,
                              const amp_conn_config *cfg, struct addrinfo *addrs,
                              amp_conn **out, char *err, size_t err_len)
{
    *out = NULL;
    SSL_CTX *ctx = NULL;
    if (ep->kind == AMP_ENDPOINT_SSL && !(ctx = amp__tls_ctx(&ep->tls, 0, err, err_len))) {
        freeaddrinfo(addrs);
        return AMP_E_TLS;
    }
    amp_conn *c = connecting(loop, ep, cfg, ctx, -1);
    if (!c) {
        SSL_CTX_free(ctx);
        freeaddrinfo(addrs);
        return AMP_E_NOMEM;
    }
    c->addrs = c->next_addr = addrs;
    if (connect_next(c)) { /* every address failed at once: say so now */
        if (err)
            snprintf(err, err_len, "cannot connect to %s: %s", ep->host,
                     strerror(c->connect_errno));
        amp__conn_free_unused(c);
        return AMP_E_CONNECT;
    }
    *out = c;
    return AMP_OK;
}

amp_err amp_connect_endpoint(struct ev_loop *loop, const amp_endpoint *ep,
                             const amp_conn_config *cfg, amp_conn **out, char *err,
                             size_t err_len)
{
    if (!loop || !ep || !out || ep->server)
        return AMP_E_INVALID;
    *out = NULL;
    if (ep->kind == AMP_ENDPOINT_UNIX)
        return connect_unix(loop, ep, cfg, out, err, err_len);
    if (!ep->host)
        return AMP_E_INVALID;
    /* An address needs no lookup: connect now. A name is resolved in a
     * thread (getaddrinfo blocks); `ready` or `closed` follows either way. */
    struct addrinfo hints, *addrs = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", ep->port);
    if (getaddrinfo(ep->host, port, &hints, &addrs) == 0)
        return amp__connect_addrinfo(loop, ep, cfg, addrs, out, err, err_len);
    SSL_CTX *ctx = NULL;
    if (ep->kind == AMP_ENDPOINT_SSL && !(ctx = amp__tls_ctx(&ep->tls, 0, err, err_len)))
        return AMP_E_TLS;
    amp_conn *c = connecting(loop, ep, cfg, ctx, -1);
    if (!c) {
        SSL_CTX_free(ctx);
        return AMP_E_NOMEM;
    }
    c->lookup = amp__lookup_start(loop, ep->host, ep->port, resolved, c);
    if (!c->lookup) {
        if (err)
            snprintf(err, err_len, "cannot resolve %s: no thread for the lookup", ep->host);
        amp__conn_free_unused(c);
        return AMP_E_RESOLVE;
    }
    *out = c;
    return AMP_OK;
}

amp_err amp_conn_adopt(struct ev_loop *loop, int fd, const amp_conn_config *cfg, amp_conn **out)
{
    if (!loop || fd < 0 || !out) {
        if (fd >= 0)
            close(fd);
        return AMP_E_INVALID;
    }
    *out = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int flags = fcntl(fd, F_GETFL);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 || flags < 0 ||
        fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        close(fd);
        return AMP_E_INVALID;
    }
    int is_unix = ss.ss_family == AF_UNIX;
    amp_conn *c = amp__conn_new(loop, amp__transport_socket_new(fd, is_unix,
                                                                cfg ? cfg->max_fds : 0), cfg);
    if (!c) {
        close(fd);
        return AMP_E_NOMEM;
    }
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
        amp__conn_tune_tcp(fd);
    amp__conn_accepted(c, NULL);
    *out = c;
    return AMP_OK;
}

amp_err amp_connect(struct ev_loop *loop, const char *endpoint, const amp_conn_config *cfg,
                    amp_conn **out, char *err, size_t err_len)
{
    amp_endpoint ep;
    amp_err r = amp_endpoint_parse(endpoint, 0, &ep, err, err_len);
    if (r != AMP_OK)
        return r;
    r = amp_connect_endpoint(loop, &ep, cfg, out, err, err_len);
    amp_endpoint_free(&ep);
    return r;
}
