/* TLS on a connection: the TLS transport (OpenSSL on the socket), started
 * on accept by a TLS listener, once connected for ssl: endpoints, or after
 * StartTLS (client and server), which switch the connection from its plain
 * transport to this one on the same socket. Contexts come from tls.c. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn_internal.h"
#include "tls.h"
#include "transport.h"

struct tls_transport {
    amp__transport base;
    SSL *ssl;
    char *peer_subject;
    uint8_t *peer_der; /* the verified peer certificate (DER), or NULL */
    size_t peer_der_len;
};

static struct tls_transport *tls_of(const amp_conn *c);

static ssize_t tls_read(amp__transport *t, uint8_t *buf, size_t n)
{
    SSL *ssl = ((struct tls_transport *)t)->ssl;
    ERR_clear_error();
    int r = SSL_read(ssl, buf, (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return AMP__IO_AGAIN;
    if (e == SSL_ERROR_WANT_WRITE)
        return AMP__IO_WANT_WRITE;
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
    return AMP__IO_FAILED;
}

static ssize_t tls_write(amp__transport *t, const uint8_t *p, size_t n)
{
    SSL *ssl = ((struct tls_transport *)t)->ssl;
    ERR_clear_error();
    int r = SSL_write(ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
        return AMP__IO_AGAIN;
    return AMP__IO_FAILED;
}

static size_t tls_pending(amp__transport *t)
{
    int n = SSL_pending(((struct tls_transport *)t)->ssl);
    return n > 0 ? (size_t)n : 0;
}

/* The DER of a certificate the handshake verified, for callers that parse
 * it themselves (identity from its names); nothing if verification did not
 * succeed. */
static void keep_peer_der(struct tls_transport *s, X509 *peer)
{
    free(s->peer_der);
    s->peer_der = NULL;
    s->peer_der_len = 0;
    if (SSL_get_verify_result(s->ssl) != X509_V_OK)
        return;
    int n = i2d_X509(peer, NULL);
    if (n <= 0 || !(s->peer_der = malloc((size_t)n)))
        return;
    uint8_t *w = s->peer_der;
    if (i2d_X509(peer, &w) != n) {
        free(s->peer_der);
        s->peer_der = NULL;
        return;
    }
    s->peer_der_len = (size_t)n;
}

static int tls_handshake(amp__transport *t)
{
    struct tls_transport *s = (struct tls_transport *)t;
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        X509 *peer = SSL_get1_peer_certificate(s->ssl);
        if (peer) {
            char *subj = X509_NAME_oneline(X509_get_subject_name(peer), NULL, 0);
            free(s->peer_subject);
            s->peer_subject = subj ? strdup(subj) : NULL;
            OPENSSL_free(subj);
            keep_peer_der(s, peer);
            X509_free(peer);
        }
        return AMP__IO_DONE;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return AMP__IO_AGAIN;
    if (e == SSL_ERROR_WANT_WRITE)
        return AMP__IO_WANT_WRITE;
    return AMP__IO_FAILED;
}

static void tls_shutdown(amp__transport *t)
{
    SSL_shutdown(((struct tls_transport *)t)->ssl);
}

static amp_err tls_failure(amp__transport *t, enum amp__io_op op, char *buf, size_t len)
{
    SSL *ssl = ((struct tls_transport *)t)->ssl;
    static const char *const what[] = {"TLS read failed", "TLS write failed",
                                       "TLS handshake failed"};
    if (op == AMP__OP_HANDSHAKE_TIMEOUT) {
        snprintf(buf, len, "%s", "TLS handshake timed out");
        return AMP_E_TLS;
    }
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) {
        snprintf(buf, len, "%s: certificate verification failed: %s", what[op],
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
    } else {
        amp__tls_error(buf, len, what[op]);
    }
    return AMP_E_TLS;
}

static void tls_free(amp__transport *t)
{
    struct tls_transport *s = (struct tls_transport *)t;
    SSL_free(s->ssl);
    free(s->peer_subject);
    free(s->peer_der);
    free(s);
}

static const amp__transport_ops tls_ops = {
    .name = "TLS",
    .read = tls_read,
    .write = tls_write,
    .pending = tls_pending,
    .handshake = tls_handshake,
    .shutdown = tls_shutdown,
    .failure = tls_failure,
    .free = tls_free,
    .starttls_ok = 0,
};

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

/* A TLS transport on `fd`; a client verifies `hostname` when `verify`. */
static amp__transport *tls_new(int fd, SSL_CTX *ctx, int server, const char *hostname,
                               int verify)
{
    struct tls_transport *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base.ops = &tls_ops;
    s->base.fd = fd;
    s->ssl = SSL_new(ctx);
    if (!s->ssl || !SSL_set_fd(s->ssl, fd))
        goto fail;
    if (server) {
        SSL_set_accept_state(s->ssl);
    } else {
        SSL_set_connect_state(s->ssl);
        if (hostname && set_peer_name(s->ssl, hostname, verify))
            goto fail;
    }
    return &s->base;
fail:
    tls_free(&s->base);
    return NULL;
}

int amp__tls_start(amp_conn *c, SSL_CTX *ctx, int server)
{
    amp__transport *t = tls_new(c->t->fd, ctx, server, c->hostname, c->verify_host);
    if (!t)
        return -1;
    amp__conn_set_transport(c, t);
    return 0;
}

int amp__tls_client_begin(amp_conn *c)
{
    SSL_CTX *ctx = c->pending_tls_ctx;
    c->pending_tls_ctx = NULL;
    int bad = !ctx || amp__tls_start(c, ctx, 0);
    if (ctx)
        SSL_CTX_free(ctx);
    return bad;
}

void amp__tls_server_begin(amp_conn *c)
{
    c->tls_mark = 0;
    if (amp__tls_start(c, c->serve_tls_ctx, 1)) {
        amp__conn_set_error(c, "%s", "StartTLS: cannot start TLS");
        amp__conn_finish(c, AMP_E_TLS);
    }
}

void amp__tls_plans_free(amp_conn *c)
{
    if (c->pending_tls_ctx)
        SSL_CTX_free(c->pending_tls_ctx);
    if (c->serve_tls_ctx)
        SSL_CTX_free(c->serve_tls_ctx);
    c->pending_tls_ctx = c->serve_tls_ctx = NULL;
    free(c->hostname);
    c->hostname = NULL;
}

static struct tls_transport *tls_of(const amp_conn *c)
{
    return c && c->t->ops == &tls_ops ? (struct tls_transport *)c->t : NULL;
}

int amp_conn_is_tls(const amp_conn *c)
{
    return tls_of(c) && c->state != CONN_HANDSHAKE && c->state != CONN_CLOSED;
}

const char *amp_conn_peer_subject(amp_conn *c)
{
    struct tls_transport *s = tls_of(c);
    return s ? s->peer_subject : NULL;
}

int amp_conn_peer_certificate_der(amp_conn *c, const uint8_t **der, size_t *len)
{
    struct tls_transport *s = tls_of(c);
    if (!s || !s->peer_der)
        return -1;
    *der = s->peer_der;
    *len = s->peer_der_len;
    return 0;
}

/* ---- StartTLS ------------------------------------------------------------ */

amp_err amp_conn_start_tls(amp_conn *c, const amp_tls_config *tls, amp_result_cb cb,
                           void *user_data)
{
    if (!c || !tls || !c->t->ops->starttls_ok)
        return AMP_E_INVALID;
    /* the server must prove the name we meant to reach: the one given, else
     * the host this connection was made to */
    const char *name = tls->hostname ? tls->hostname : c->connect_host;
    if (!name && !tls->insecure_skip_verify) {
        amp__conn_set_error(c, "%s",
                            "StartTLS: no host name to verify the server's certificate "
                            "against (set amp_tls_config.hostname)");
        return AMP_E_TLS;
    }
    char err[256];
    SSL_CTX *ctx = amp__tls_ctx(tls, 0, err, sizeof err);
    if (!ctx) {
        amp__conn_set_error(c, "%s", err);
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
    if (!c->t->ops->starttls_ok || c->tls_mark || !c->serve_tls_ctx) {
        amp_request_error(req, "TLS_ERROR", "TLS not available", 0);
        return;
    }
    if (amp_request_answer(req, NULL, 0) == AMP_OK)
        c->tls_mark = amp_session_output_total(s); /* TLS starts after the answer */
}

amp_err amp_conn_serve_start_tls(amp_conn *c, const amp_tls_config *tls)
{
    if (!c || !tls || amp__transport_is_unix(c->t))
        return AMP_E_INVALID;
    char err[256];
    SSL_CTX *ctx = amp__tls_ctx(tls, 1, err, sizeof err);
    if (!ctx) {
        amp__conn_set_error(c, "%s", err);
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
