/* Listeners: amp_conn connections accepted on TCP, TLS or UNIX server
 * endpoints. The socket and the accepting are acceptor.c's. */
#define _GNU_SOURCE
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn_internal.h"
#include "tls.h"

struct amp_listener {
    struct ev_loop *loop;
    amp_acceptor *acc;
    amp_conn_config cfg;
    amp_accept_cb cb;
    void *user_data;
    void (*user_data_free)(void *user_data);
    SSL_CTX *ctx;
    int is_unix;
    int depth;         /* accept callbacks on the stack */
    int free_pending;  /* amp_listener_free() ran inside one: free on the way out */
};

static void really_free(amp_listener *l)
{
    if (l->user_data_free)
        l->user_data_free(l->user_data);
    free(l);
}

static void on_accept(amp_acceptor *a, int fd, void *ud)
{
    amp_listener *l = ud;
    if (!l->is_unix)
        amp__conn_tune_tcp(fd);
    amp_conn *c = amp__conn_new(
        l->loop, amp__transport_socket_new(fd, l->is_unix, l->cfg.max_fds), &l->cfg);
    if (!c) {
        close(fd);
        return;
    }
    if (amp__conn_accepted(c, l->ctx)) {
        amp_conn_abort(c);
        return;
    }
    if (!l->cb)
        return;
    l->depth++; /* the callback may free l: see amp_listener_free */
    l->cb(l, c, l->user_data);
    if (--l->depth == 0 && l->free_pending)
        really_free(l);
}

amp_err amp_listen(struct ev_loop *loop, const char *endpoint, const amp_conn_config *cfg,
                   amp_accept_cb cb, void *user_data, amp_listener **out, char *err,
                   size_t err_len)
{
    if (!loop || !endpoint || !out)
        return AMP_E_INVALID;
    *out = NULL;
    /* every accepted connection would get the same user_data: it has no one
     * connection to be freed with */
    if (cfg && cfg->user_data_free)
        return AMP_E_INVALID;
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
    if (cfg)
        l->cfg = *cfg;
    l->cb = cb;
    l->user_data = user_data;
    l->is_unix = ep.kind == AMP_ENDPOINT_UNIX;
    if (ep.kind == AMP_ENDPOINT_SSL && !(l->ctx = amp__tls_ctx(&ep.tls, 1, err, err_len))) {
        r = AMP_E_TLS;
        goto fail;
    }
    amp_acceptor_config acfg;
    amp_acceptor_config_init(&acfg);
    acfg.accept = on_accept;
    acfg.user_data = l;
    r = amp_acceptor_new(loop, &ep, &acfg, &l->acc, err, err_len);
    if (r != AMP_OK)
        goto fail;
    amp_endpoint_free(&ep);
    *out = l;
    return AMP_OK;
fail:
    amp_endpoint_free(&ep);
    if (l->ctx)
        SSL_CTX_free(l->ctx);
    free(l);
    return r;
}

void amp_listener_set_user_data_free(amp_listener *l, void (*user_data_free)(void *user_data))
{
    if (l)
        l->user_data_free = user_data_free;
}

int amp_listener_port(const amp_listener *l)
{
    return l ? amp_acceptor_port(l->acc) : -1;
}

uint64_t amp_listener_shed(const amp_listener *l)
{
    return l ? amp_acceptor_shed(l->acc) : 0;
}

void amp_listener_free(amp_listener *l)
{
    if (!l || l->free_pending)
        return;
    amp_acceptor_free(l->acc); /* the socket closes now, also from a callback */
    l->acc = NULL;
    if (l->ctx)
        SSL_CTX_free(l->ctx);
    l->ctx = NULL;
    l->free_pending = 1;
    if (l->depth == 0)
        really_free(l);
}
