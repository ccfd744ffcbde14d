/* Connections on libev: sockets, TLS, StartTLS, descriptor passing, write
 * buffering and call deadlines around an amp_session. */
#define _GNU_SOURCE
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "amp/conn.h"
#include "conn_internal.h"
#include "resolve.h"
#include "tls.h"

#define READ_CHUNK 65536
#define READS_PER_EVENT 16 /* fairness between connections */
#define MAX_FDS_PER_READ 16

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void box_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void handle_read(amp_conn *c);
static void flush(amp_conn *c);
static void finish(amp_conn *c, int reason);

/* ---- lifetime ------------------------------------------------------------ */

static void enter(amp_conn *c)
{
    c->depth++;
}

static void really_free(amp_conn *c)
{
    for (size_t i = 0; i < c->nheld_fds; i++)
        close(c->held_fds[i].fd);
    for (size_t i = 0; i < c->nsend_fds; i++)
        close(c->send_fds[i]);
    free(c->held_fds);
    free(c->send_fds);
    free(c->peer_subject);
    free(c->peer_der);
    if (c->pending_tls_ctx)
        SSL_CTX_free(c->pending_tls_ctx);
    if (c->serve_tls_ctx)
        SSL_CTX_free(c->serve_tls_ctx);
    free(c->hostname);
    free(c->connect_host);
    if (c->addrs)
        freeaddrinfo(c->addrs);
    amp_session_free(c->s);
    free(c);
}

static void leave(amp_conn *c)
{
    if (c->depth == 1 && c->finish_pending && c->state != CONN_CLOSED) {
        c->finish_pending = 0;
        finish(c, c->finish_reason); /* at depth 1: its callbacks nest safely */
    }
    if (--c->depth > 0)
        return;
    if (c->state == CONN_CLOSED)
        really_free(c);
}

static void set_error(amp_conn *c, const char *fmt, const char *detail)
{
    if (!c->error[0])
        snprintf(c->error, sizeof c->error, fmt, detail);
}

/* Tear down: stop watchers, close the socket, complete every call, report. */
static void finish(amp_conn *c, int reason)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->depth > 1) { /* inside our own callbacks: do it on the way out */
        c->finish_pending = 1;
        if (!c->finish_reason)
            c->finish_reason = reason;
        /* but stop the conversation now: no more dispatching */
        amp_session_close(c->s, AMP_E_CLOSED);
        return;
    }
    c->state = CONN_CLOSED;
    amp__lookup_cancel(c->lookup);
    c->lookup = NULL;
    ev_io_stop(c->loop, &c->rio);
    ev_io_stop(c->loop, &c->wio);
    ev_prepare_stop(c->loop, &c->prep);
    ev_timer_stop(c->loop, &c->timer);
    ev_timer_stop(c->loop, &c->connect_timer);
    ev_timer_stop(c->loop, &c->box_timer);
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    amp_session_close(c->s, AMP_E_CLOSED);
    if (c->cb.closed)
        c->cb.closed(c, reason, c->user_data);
}

/* ---- session events -------------------------------------------------------- */

/* Stop reading; write what is queued; then close. */
static void begin_closing(amp_conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_TLS_HANDSHAKE) {
        c->closing_after_handshake = 1;
        return;
    }
    c->state = CONN_CLOSING;
    ev_io_stop(c->loop, &c->rio);
    ev_timer_stop(c->loop, &c->box_timer); /* no more input to wait for */
    ev_prepare_start(c->loop, &c->prep);
}

static void ev_protocol_error(amp_session *s, int err, uint64_t off, void *ud)
{
    amp_conn *c = ud;
    char what[128];
    snprintf(what, sizeof what, "%s at stream offset %llu", amp_strerror(err),
             (unsigned long long)off);
    set_error(c, "protocol error: %s", what);
    c->finish_reason = err;
    begin_closing(c);
}

static void ev_backpressure(amp_session *s, int over, void *ud)
{
    amp_conn *c = ud;
    if (c->cb.backpressure)
        c->cb.backpressure(c, over, c->user_data);
}

static void ev_close_after_flush(amp_session *s, void *ud)
{
    begin_closing(ud);
}

static int start_ssl(amp_conn *c, SSL_CTX *ctx, int server);

static void ev_start_tls(amp_session *s, void *ud)
{
    amp_conn *c = ud;
    SSL_CTX *ctx = c->pending_tls_ctx;
    c->pending_tls_ctx = NULL;
    if (!ctx || start_ssl(c, ctx, 0)) {
        set_error(c, "%s", "StartTLS: cannot start TLS");
        c->finish_pending = 1;
        c->finish_reason = AMP_E_TLS;
    }
    if (ctx)
        SSL_CTX_free(ctx);
}

static void ev_output_ready(amp_session *s, void *ud)
{
    amp_conn *c = ud;
    if (c->state != CONN_CLOSED)
        ev_prepare_start(c->loop, &c->prep);
}

/* The session closed itself: the connection ends with its reason. An answer
 * over the hard cap means the peer does not read: drop the output and close
 * at once (after our callbacks, or from the prepare watcher), since waiting
 * for a flush would keep the connection forever. */
static void ev_closed(amp_session *s, int reason, void *ud)
{
    amp_conn *c = ud;
    if (c->state == CONN_CLOSED)
        return;
    if (reason != AMP_E_CLOSED) { /* AMP_E_CLOSED: a fatal error, already closing */
        set_error(c, "session closed: %s", amp_strerror(reason));
        if (!c->finish_reason)
            c->finish_reason = reason;
    }
    if (reason == AMP_E_BACKPRESSURE) {
        c->finish_pending = 1;
        ev_io_stop(c->loop, &c->rio);
        ev_prepare_start(c->loop, &c->prep);
        return;
    }
    begin_closing(c);
}

static const amp_session_events session_events = {
    ev_protocol_error, ev_backpressure, ev_close_after_flush, ev_start_tls, ev_output_ready,
    ev_closed,
};

/* ---- creation ---------------------------------------------------------------- */

amp_conn *amp__conn_new(struct ev_loop *loop, int fd, const amp_conn_config *cfg)
{
    amp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    c->fd = fd;
    c->state = CONN_OPEN;
    c->handshake_timeout = 10;
    if (cfg) {
        c->cb = cfg->callbacks;
        c->user_data = cfg->user_data;
        if (cfg->handshake_timeout > 0)
            c->handshake_timeout = cfg->handshake_timeout;
        if (cfg->box_timeout > 0)
            c->box_timeout = cfg->box_timeout;
        c->max_fds = cfg->max_fds;
    }
    amp_session_config scfg;
    memset(&scfg, 0, sizeof scfg);
    if (cfg) {
        scfg.limits = cfg->limits;
        scfg.output_high_water = cfg->output_high_water;
        scfg.output_hard_cap = cfg->output_hard_cap;
        scfg.usage = cfg->usage;
    }
    scfg.events = &session_events;
    scfg.user_data = c;
    if (amp_session_new(&c->s, &scfg) != AMP_OK) {
        free(c);
        return NULL;
    }
    ev_io_init(&c->rio, conn_io_cb, fd, EV_READ);
    ev_io_init(&c->wio, conn_io_cb, fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    ev_prepare_init(&c->prep, conn_prepare_cb);
    c->prep.data = c;
    ev_init(&c->timer, conn_timer_cb);
    c->timer.data = c;
    ev_init(&c->box_timer, box_timer_cb);
    c->box_timer.data = c;
    return c;
}

void amp_conn_set_callbacks(amp_conn *c, const amp_conn_callbacks *cb, void *user_data)
{
    if (cb)
        c->cb = *cb;
    else
        memset(&c->cb, 0, sizeof c->cb);
    c->user_data = user_data;
}

amp_session *amp_conn_session(amp_conn *c)
{
    return c->s;
}

struct ev_loop *amp_conn_loop(amp_conn *c)
{
    return c->loop;
}

int amp_conn_fd(const amp_conn *c)
{
    return c->fd;
}

const char *amp_conn_error_text(const amp_conn *c)
{
    return c->error;
}

int amp_conn_is_tls(const amp_conn *c)
{
    return c->ssl != NULL && c->state != CONN_TLS_HANDSHAKE;
}

/* ---- TLS ----------------------------------------------------------------- */

/* The name the server's certificate must carry: a DNS name (also sent as
 * SNI) or an IP address (matched against the certificate's IP entries; SNI
 * carries no addresses, RFC 6066). */
static int set_peer_name(SSL *ssl, const char *name, int verify)
{
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
    if (!is_ip && !SSL_set_tlsext_host_name(ssl, name))
        return -1;
    if (!verify)
        return 0;
    if (is_ip)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 ? 0 : -1;
    return SSL_set1_host(ssl, name) == 1 ? 0 : -1;
}

static int start_ssl(amp_conn *c, SSL_CTX *ctx, int server)
{
    c->ssl = SSL_new(ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
        return -1;
    if (server) {
        SSL_set_accept_state(c->ssl);
    } else {
        SSL_set_connect_state(c->ssl);
        if (c->hostname && set_peer_name(c->ssl, c->hostname, c->verify_host))
            return -1;
    }
    c->state = CONN_TLS_HANDSHAKE;
    ev_io_start(c->loop, &c->rio);
    ev_io_start(c->loop, &c->wio); /* the first flight goes out at once */
    return 0;
}

static void ssl_failed(amp_conn *c, const char *what)
{
    long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    char buf[300];
    if (v != X509_V_OK) {
        snprintf(buf, sizeof buf, "%s: certificate verification failed: %s", what,
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
        set_error(c, "%s", buf);
    } else {
        amp__tls_error(buf, sizeof buf, what);
        set_error(c, "%s", buf);
    }
    finish(c, AMP_E_TLS);
}

/* The DER of a certificate the handshake verified, for callers that parse
 * it themselves (identity from its names); nothing if verification did not
 * succeed. */
static void keep_peer_der(amp_conn *c, X509 *peer)
{
    free(c->peer_der);
    c->peer_der = NULL;
    c->peer_der_len = 0;
    if (SSL_get_verify_result(c->ssl) != X509_V_OK)
        return;
    int n = i2d_X509(peer, NULL);
    if (n <= 0 || !(c->peer_der = malloc((size_t)n)))
        return;
    uint8_t *w = c->peer_der;
    if (i2d_X509(peer, &w) != n) {
        free(c->peer_der);
        c->peer_der = NULL;
        return;
    }
    c->peer_der_len = (size_t)n;
}

static void handshake(amp_conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->state = c->closing_after_handshake ? CONN_CLOSING : CONN_OPEN;
        ev_io_stop(c->loop, &c->wio);
        X509 *peer = SSL_get1_peer_certificate(c->ssl);
        if (peer) {
            char *subj = X509_NAME_oneline(X509_get_subject_name(peer), NULL, 0);
            free(c->peer_subject);
            c->peer_subject = subj ? strdup(subj) : NULL;
            OPENSSL_free(subj);
            keep_peer_der(c, peer);
            X509_free(peer);
        }
        if (!c->ready_reported) {
            c->ready_reported = 1;
            ev_timer_stop(c->loop, &c->connect_timer);
            if (c->cb.ready)
                c->cb.ready(c, c->user_data);
        }
        if (c->state != CONN_CLOSED) {
            flush(c);
            if (c->state != CONN_CLOSED && SSL_pending(c->ssl))
                handle_read(c);
        }
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        ev_io_stop(c->loop, &c->wio);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        ev_io_start(c->loop, &c->wio);
        return;
    }
    ssl_failed(c, "TLS handshake failed");
}

const char *amp_conn_peer_subject(amp_conn *c)
{
    return c->peer_subject;
}

int amp_conn_peer_certificate_der(amp_conn *c, const uint8_t **der, size_t *len)
{
    if (!c->peer_der)
        return -1;
    *der = c->peer_der;
    *len = c->peer_der_len;
    return 0;
}

/* ---- reading ------------------------------------------------------------------ */

/* Keep one received descriptor if the connection opted in and has room;
 * else close it now. Its ordinal counts either way (Twisted numbers every
 * descriptor received), so later ones keep the sender's numbering. */
static void keep_fd(amp_conn *c, int fd)
{
    int64_t ordinal = c->recv_fd_count++;
    if (c->nheld_fds >= c->max_fds) {
        close(fd);
        c->fds_refused++;
        return;
    }
    if (c->nheld_fds == c->held_cap) {
        size_t cap = c->held_cap ? c->held_cap * 2 : 4;
        if (cap > c->max_fds)
            cap = c->max_fds;
        struct held_fd *p = realloc(c->held_fds, cap * sizeof *p);
        if (!p) {
            close(fd);
            c->fds_refused++;
            return;
        }
        c->held_fds = p;
        c->held_cap = cap;
    }
    c->held_fds[c->nheld_fds].ordinal = ordinal;
    c->held_fds[c->nheld_fds].fd = fd;
    c->nheld_fds++;
}

static void keep_fds(amp_conn *c, struct msghdr *msg)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof fd, sizeof fd);
            keep_fd(c, fd);
        }
    }
}

/* One read; returns bytes (> 0), 0 at EOF, -1 would block, -2 failure. */
static ssize_t read_some(amp_conn *c, uint8_t *buf, size_t n)
{
    if (c->ssl) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, buf, (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            return -1;
        if (e == SSL_ERROR_WANT_WRITE) {
            ev_io_start(c->loop, &c->wio);
            return -1;
        }
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0;
        if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
            if (errno == 0 || errno == ECONNRESET || errno == EPIPE)
                return 0; /* the peer went away without close_notify */
        }
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
        /* OpenSSL 3 reports the same as an error. Many clients close without
         * close_notify; AMP frames its boxes, so a stream cut short shows as
         * an incomplete box, not as a shorter message: an ordinary close. */
        if (e == SSL_ERROR_SSL &&
            ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            return 0;
        }
#endif
        return -3;
    }
    ssize_t r;
    if (c->unix_socket) {
        union {
            char buf[CMSG_SPACE(MAX_FDS_PER_READ * sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {buf, n};
        struct msghdr msg = {0};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof ctl.buf;
        r = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
        if (r >= 0 && msg.msg_controllen)
            keep_fds(c, &msg);
    } else {
        r = recv(c->fd, buf, n, 0);
    }
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return -1;
    if (errno == ECONNRESET)
        return 0;
    return -2;
}

/* A box that has started arriving must be complete within box_timeout of
 * its first byte. The clock belongs to the box, not to the bytes: a peer
 * trickling one byte at a time (slowloris) does not extend it, and the
 * memory the partial box pins is released when it fires. */
static void watch_partial_box(amp_conn *c)
{
    if (c->box_timeout <= 0)
        return;
    size_t pending = amp_session_input_pending(c->s);
    if (!pending || c->state != CONN_OPEN || amp_session_is_closed(c->s)) {
        /* complete, or no longer reading: a close under way keeps its reason */
        ev_timer_stop(c->loop, &c->box_timer);
        return;
    }
    uint64_t start = c->bytes_in - pending; /* the partial box's first byte */
    if (ev_is_active(&c->box_timer) && start == c->box_start)
        return; /* the same box: its clock keeps running */
    c->box_start = start;
    ev_timer_stop(c->loop, &c->box_timer);
    ev_timer_set(&c->box_timer, c->box_timeout, 0);
    ev_timer_start(c->loop, &c->box_timer);
}

static void box_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    amp_conn *c = w->data;
    enter(c);
    set_error(c, "%s", "incomplete box timed out");
    finish(c, AMP_E_TIMEOUT);
    leave(c);
}

static void handle_read(amp_conn *c)
{
    static __thread uint8_t buf[READ_CHUNK];
    for (int i = 0; i < READS_PER_EVENT && c->state == CONN_OPEN && !c->finish_pending; i++) {
        ssize_t n = read_some(c, buf, sizeof buf);
        if (n == -1)
            break;
        if (n == 0) {
            finish(c, AMP_E_CLOSED);
            return;
        }
        if (n < 0) {
            if (n == -3) {
                ssl_failed(c, "TLS read failed");
            } else {
                set_error(c, "read failed: %s", strerror(errno));
                finish(c, AMP_E_IO);
            }
            return;
        }
        c->bytes_in += (size_t)n;
        amp_err fed = amp_session_feed(c->s, buf, (size_t)n);
        watch_partial_box(c);
        if (fed != AMP_OK) {
            /* the session is closed: its event began closing, else do it here */
            if (c->state == CONN_OPEN && !c->finish_pending) {
                set_error(c, "%s", "session closed");
                begin_closing(c);
            }
            break;
        }
        if (c->tls_mark) /* the rest of the stream is TLS: stop reading plaintext */
            break;
        if ((size_t)n < sizeof buf && !(c->ssl && SSL_pending(c->ssl)))
            break;
    }
    if (c->state != CONN_CLOSED && !c->finish_pending)
        flush(c);
}

/* ---- writing -------------------------------------------------------------------- */

/* Write at most n bytes; returns bytes written, -1 would block, -2 failure. */
static ssize_t write_some(amp_conn *c, const uint8_t *p, size_t n)
{
    if (c->ssl) {
        ERR_clear_error();
        int r = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
            return -1;
        return -3;
    }
    ssize_t r;
    if (c->nsend_fds) { /* one descriptor rides with one byte, as in Twisted */
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } ctl;
        memset(&ctl, 0, sizeof ctl);
        struct iovec iov = {(void *)p, 1};
        struct msghdr msg = {0};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &c->send_fds[0], sizeof(int));
        r = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (r == 1) {
            close(c->send_fds[0]);
            memmove(c->send_fds, c->send_fds + 1, --c->nsend_fds * sizeof(int));
        }
    } else {
        r = send(c->fd, p, n, MSG_NOSIGNAL);
    }
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return -1;
    return -2;
}

static void begin_server_tls(amp_conn *c)
{
    SSL_CTX *ctx = c->serve_tls_ctx;
    c->tls_mark = 0;
    if (start_ssl(c, ctx, 1)) {
        set_error(c, "%s", "StartTLS: cannot start TLS");
        finish(c, AMP_E_TLS);
    }
}

static void flush(amp_conn *c)
{
    while (c->state == CONN_OPEN || c->state == CONN_CLOSING) {
        const uint8_t *p;
        size_t n;
        amp_session_output(c->s, &p, &n);
        if (c->tls_mark) { /* plaintext only up to the StartTLS answer */
            uint64_t start = amp_session_output_total(c->s) - n;
            if (start >= c->tls_mark) {
                begin_server_tls(c);
                return;
            }
            if (start + n > c->tls_mark)
                n = (size_t)(c->tls_mark - start);
        }
        if (n == 0)
            break;
        ssize_t w = write_some(c, p, n);
        if (w == -1) {
            ev_io_start(c->loop, &c->wio);
            return;
        }
        if (w < 0) {
            if (w == -3) {
                ssl_failed(c, "TLS write failed");
            } else {
                set_error(c, "write failed: %s", strerror(errno));
                finish(c, AMP_E_IO);
            }
            return;
        }
        c->bytes_out += (size_t)w;
        amp_session_consume(c->s, (size_t)w);
    }
    if (c->state != CONN_OPEN && c->state != CONN_CLOSING)
        return; /* closed, or a TLS handshake now owns the watchers */
    ev_io_stop(c->loop, &c->wio);
    if (c->state == CONN_CLOSING) {
        if (c->ssl)
            SSL_shutdown(c->ssl);
        finish(c, c->finish_reason ? c->finish_reason : AMP_E_CLOSED);
    }
}

/* ---- watchers -------------------------------------------------------------------- */

static void connected(amp_conn *c);

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    amp_conn *c = w->data;
    enter(c);
    switch (c->state) {
    case CONN_CONNECTING:
        connected(c);
        break;
    case CONN_TLS_HANDSHAKE:
        handshake(c);
        break;
    case CONN_OPEN:
        if (revents & EV_READ)
            handle_read(c);
        if ((revents & EV_WRITE) && c->state != CONN_CLOSED)
            flush(c);
        break;
    case CONN_CLOSING:
        flush(c);
        break;
    case CONN_CLOSED:
        break;
    }
    leave(c);
}

uint64_t amp__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void amp__timer_start_fresh(struct ev_loop *loop, ev_timer *t, double after)
{
    ev_now_update(loop); /* libev counts `after` from the loop's cached time */
    ev_timer_stop(loop, t);
    ev_timer_set(t, after > 0 ? after : 0, 0);
    ev_timer_start(loop, t);
}

static void arm_timer(amp_conn *c)
{
    uint64_t deadline;
    if (c->state == CONN_CLOSED || !amp_session_next_deadline(c->s, &deadline)) {
        ev_timer_stop(c->loop, &c->timer);
        c->timer_armed = 0;
        return;
    }
    if (c->timer_armed && c->armed_deadline <= deadline)
        return; /* fires early enough; it re-arms itself */
    uint64_t now = amp__now_ms();
    amp__timer_start_fresh(c->loop, &c->timer,
                           deadline > now ? (double)(deadline - now) / 1000.0 : 0);
    c->timer_armed = 1;
    c->armed_deadline = deadline;
}

static void conn_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    amp_conn *c = w->data;
    enter(c);
    ev_prepare_stop(loop, w);
    if (c->state == CONN_OPEN || c->state == CONN_CLOSING)
        flush(c);
    leave(c);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    amp_conn *c = w->data;
    enter(c);
    c->timer_armed = 0;
    amp_session_expire(c->s, amp__now_ms() + 1);
    arm_timer(c);
    leave(c);
}

/* ---- calls ---------------------------------------------------------------------------- */

amp_err amp_conn_call_bytes(amp_conn *c, const uint8_t *command, size_t command_len,
                            const amp_pair *args, size_t n, double timeout, amp_result_cb cb,
                            void *user_data, uint64_t *call_id)
{
    if (!c)
        return AMP_E_INVALID;
    amp_call_opts opts = {0, 0, 0};
    if (timeout > 0) {
        opts.has_deadline = 1;
        /* a fresh monotonic clock: the loop's cached time may be old (the
         * caller did not run the loop for a while), which would make the
         * deadline already past */
        opts.deadline = amp__now_ms() + (uint64_t)(timeout * 1000.0 + 0.5);
    }
    amp_err r = amp_session_call(c->s, command, command_len, args, n, &opts, cb, user_data,
                                 call_id);
    if (r == AMP_OK && timeout > 0)
        arm_timer(c);
    return r;
}

amp_err amp_conn_call(amp_conn *c, const char *command, const amp_pair *args, size_t n,
                      double timeout, amp_result_cb cb, void *user_data, uint64_t *call_id)
{
    if (!command)
        return AMP_E_INVALID;
    return amp_conn_call_bytes(c, (const uint8_t *)command, strlen(command), args, n, timeout,
                               cb, user_data, call_id);
}

uint64_t amp_conn_bytes_in(const amp_conn *c)
{
    return c->bytes_in;
}

uint64_t amp_conn_bytes_out(const amp_conn *c)
{
    return c->bytes_out;
}

const char *amp_conn_peer_name(amp_conn *c)
{
    if (!c->peer_name[0]) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char host[48] = "?";
        if (c->unix_socket) {
            snprintf(c->peer_name, sizeof c->peer_name, "%s", "unix");
        } else if (c->fd < 0 || getpeername(c->fd, (struct sockaddr *)&ss, &sl) < 0) {
            return "?"; /* not connected (yet): ask again later */
        } else if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
            snprintf(c->peer_name, sizeof c->peer_name, "%s:%u", host, ntohs(a->sin_port));
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
            snprintf(c->peer_name, sizeof c->peer_name, "[%s]:%u", host, ntohs(a->sin6_port));
        }
    }
    return c->peer_name;
}

amp_err amp_conn_send(amp_conn *c, const char *command, const amp_pair *args, size_t n)
{
    if (!c)
        return AMP_E_INVALID;
    amp_call_opts opts = {1, 0, 0};
    return amp_session_call_str(c->s, command, args, n, &opts, NULL, NULL, NULL);
}

void amp_conn_close(amp_conn *c)
{
    if (!c || c->state == CONN_CLOSED)
        return;
    enter(c);
    if (c->state == CONN_CONNECTING)
        finish(c, AMP_E_CLOSED);
    else
        begin_closing(c);
    leave(c);
}

void amp_conn_abort(amp_conn *c)
{
    if (!c || c->state == CONN_CLOSED)
        return;
    enter(c);
    finish(c, AMP_E_CLOSED);
    leave(c);
}

/* ---- StartTLS ----------------------------------------------------------------------- */

amp_err amp_conn_start_tls(amp_conn *c, const amp_tls_config *tls, amp_result_cb cb,
                           void *user_data)
{
    if (!c || !tls || c->ssl || c->unix_socket)
        return AMP_E_INVALID;
    /* the server must prove the name we meant to reach: the one given, else
     * the host this connection was made to */
    const char *name = tls->hostname ? tls->hostname : c->connect_host;
    if (!name && !tls->insecure_skip_verify) {
        set_error(c, "%s",
                  "StartTLS: no host name to verify the server's certificate against "
                  "(set amp_tls_config.hostname)");
        return AMP_E_TLS;
    }
    char err[256];
    SSL_CTX *ctx = amp__tls_ctx(tls, 0, err, sizeof err);
    if (!ctx) {
        set_error(c, "%s", err);
        return AMP_E_TLS;
    }
    char *copy = name ? strdup(name) : NULL;
    if (name && !copy) {
        SSL_CTX_free(ctx);
        return AMP_E_NOMEM;
    }
    free(c->hostname);
    c->hostname = copy;
    c->verify_host = !tls->insecure_skip_verify;
    amp_err r = amp_session_start_tls(c->s, cb, user_data);
    if (r != AMP_OK) {
        SSL_CTX_free(ctx);
        return r;
    }
    if (c->pending_tls_ctx)
        SSL_CTX_free(c->pending_tls_ctx);
    c->pending_tls_ctx = ctx;
    return AMP_OK;
}

static void starttls_responder(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    amp_conn *c = ud;
    if (c->ssl || c->tls_mark || !c->serve_tls_ctx) {
        amp_request_error(req, "TLS_ERROR", "TLS not available", 0);
        return;
    }
    if (amp_request_answer(req, NULL, 0) == AMP_OK)
        c->tls_mark = amp_session_output_total(s); /* TLS starts after the answer */
}

amp_err amp_conn_serve_start_tls(amp_conn *c, const amp_tls_config *tls)
{
    if (!c || !tls || c->unix_socket)
        return AMP_E_INVALID;
    char err[256];
    SSL_CTX *ctx = amp__tls_ctx(tls, 1, err, sizeof err);
    if (!ctx) {
        set_error(c, "%s", err);
        return AMP_E_TLS;
    }
    amp_err r = amp_session_serve_str(c->s, "StartTLS", starttls_responder, c);
    if (r != AMP_OK) {
        SSL_CTX_free(ctx);
        return r;
    }
    c->serve_tls_ctx = ctx;
    return AMP_OK;
}

/* ---- descriptors ------------------------------------------------------------------- */

amp_err amp_conn_send_fd(amp_conn *c, int fd, int64_t *ordinal)
{
    if (!c || !c->unix_socket || c->ssl || fd < 0)
        return AMP_E_INVALID;
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0)
        return AMP_E_IO;
    int *p = realloc(c->send_fds, (c->nsend_fds + 1) * sizeof *p);
    if (!p) {
        close(copy);
        return AMP_E_NOMEM;
    }
    c->send_fds = p;
    c->send_fds[c->nsend_fds++] = copy;
    if (ordinal)
        *ordinal = c->sent_fd_count;
    c->sent_fd_count++;
    return AMP_OK;
}

int amp_conn_take_fd(amp_conn *c, int64_t ordinal)
{
    if (!c || ordinal < 0)
        return -1;
    for (size_t i = 0; i < c->nheld_fds; i++) {
        if (c->held_fds[i].ordinal != ordinal)
            continue;
        int fd = c->held_fds[i].fd;
        c->held_fds[i] = c->held_fds[--c->nheld_fds]; /* order does not matter */
        return fd;
    }
    return -1;
}

uint64_t amp_conn_fds_refused(const amp_conn *c)
{
    return c ? c->fds_refused : 0;
}

/* ---- connecting -------------------------------------------------------------------- */

static void connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    amp_conn *c = w->data;
    enter(c);
    if (c->lookup) {
        set_error(c, "cannot resolve %s: timed out", c->connect_host);
        finish(c, AMP_E_RESOLVE);
    } else if (c->state == CONN_TLS_HANDSHAKE) {
        set_error(c, "%s", "TLS handshake timed out");
        finish(c, AMP_E_TLS);
    } else {
        set_error(c, "%s", "connection timed out");
        finish(c, AMP_E_CONNECT);
    }
    leave(c);
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
        c->fd = fd;
        ev_io_set(&c->rio, fd, EV_READ);
        ev_io_set(&c->wio, fd, EV_WRITE);
        ev_io_start(c->loop, &c->wio); /* writable: connected or failed */
        return 0;
    }
    return -1;
}

static void connected(amp_conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr) { /* this address failed: the next one, if any */
        ev_io_stop(c->loop, &c->wio);
        close(c->fd);
        c->fd = -1;
        c->connect_errno = soerr;
        if (connect_next(c) == 0)
            return;
        set_error(c, "connect failed: %s", strerror(soerr));
        finish(c, AMP_E_CONNECT);
        return;
    }
    ev_io_stop(c->loop, &c->wio);
    if (c->addrs) {
        freeaddrinfo(c->addrs);
        c->addrs = c->next_addr = NULL;
    }
    if (c->pending_tls_ctx) { /* ssl: endpoint */
        SSL_CTX *ctx = c->pending_tls_ctx;
        c->pending_tls_ctx = NULL;
        int bad = start_ssl(c, ctx, 0);
        SSL_CTX_free(ctx);
        if (bad) {
            set_error(c, "%s", "cannot start TLS");
            finish(c, AMP_E_TLS);
        }
        return;
    }
    c->state = CONN_OPEN;
    c->ready_reported = 1;
    ev_timer_stop(c->loop, &c->connect_timer);
    ev_io_start(c->loop, &c->rio);
    if (c->cb.ready)
        c->cb.ready(c, c->user_data);
    if (c->state == CONN_OPEN)
        flush(c);
}

int amp__conn_accepted(amp_conn *c, SSL_CTX *ctx)
{
    if (ctx) { /* a peer that never completes the handshake is closed */
        ev_init(&c->connect_timer, connect_timeout_cb);
        c->connect_timer.data = c;
        amp__timer_start_fresh(c->loop, &c->connect_timer, c->handshake_timeout);
        return start_ssl(c, ctx, 1);
    }
    c->ready_reported = 1;
    ev_io_start(c->loop, &c->rio);
    return 0;
}

void amp__conn_tune_tcp(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The lookup of a host name finished (on the loop). */
static void resolved(void *ud, struct addrinfo *addrs, int gai_error)
{
    amp_conn *c = ud;
    enter(c);
    c->lookup = NULL;
    if (!addrs) {
        char what[300];
        snprintf(what, sizeof what, "cannot resolve %s: %s", c->connect_host,
                 gai_strerror(gai_error));
        set_error(c, "%s", what);
        finish(c, AMP_E_RESOLVE);
    } else {
        c->addrs = c->next_addr = addrs;
        if (connect_next(c)) {
            set_error(c, "connect failed: %s", strerror(c->connect_errno));
            finish(c, AMP_E_CONNECT);
        }
    }
    leave(c);
}

/* A new connection in CONN_CONNECTING, without a socket yet. */
static amp_conn *connecting(struct ev_loop *loop, const amp_endpoint *ep,
                            const amp_conn_config *cfg, SSL_CTX *ctx, int fd)
{
    amp_conn *c = amp__conn_new(loop, fd, cfg);
    if (!c)
        return NULL;
    c->unix_socket = ep->kind == AMP_ENDPOINT_UNIX;
    if (!c->unix_socket) {
        c->connect_host = strdup(ep->host); /* what StartTLS verifies */
        if (ctx)
            c->hostname = strdup(ep->tls.hostname ? ep->tls.hostname : ep->host);
        if (!c->connect_host || (ctx && !c->hostname)) {
            really_free(c);
            return NULL;
        }
        c->verify_host = !ep->tls.insecure_skip_verify;
    }
    c->pending_tls_ctx = ctx;
    c->state = CONN_CONNECTING;
    ev_init(&c->connect_timer, connect_timeout_cb);
    c->connect_timer.data = c;
    amp__timer_start_fresh(loop, &c->connect_timer, ep->timeout);
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
        ev_timer_stop(loop, &c->connect_timer);
        really_free(c);
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
        ev_timer_stop(loop, &c->connect_timer);
        really_free(c);
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
    amp_conn *c = amp__conn_new(loop, fd, cfg);
    if (!c) {
        close(fd);
        return AMP_E_NOMEM;
    }
    c->unix_socket = ss.ss_family == AF_UNIX;
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
