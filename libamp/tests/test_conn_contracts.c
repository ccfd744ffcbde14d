/* The connection contracts: the destroy-notify of a connection's user_data
 * (exactly once: when replaced, or after `closed` when the connection is
 * freed; never when creation fails), and the init functions of the structs
 * a caller fills (today's defaults; a zeroed struct still works the same). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "amp/amp.h"

struct owner {
    int freed;      /* notify calls */
    int closed;     /* `closed` calls */
    int closed_before_free; /* `closed` had run when the notify ran */
};

static void owner_free(void *ud)
{
    struct owner *o = ud;
    o->freed++;
    o->closed_before_free = o->closed;
}

static void owner_closed(amp_conn *c, int reason, void *ud)
{
    ((struct owner *)ud)->closed++;
}

static amp_conn *adopt_pair(struct ev_loop *loop, const amp_conn_config *cfg, int *peer)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    amp_conn *c;
    cr_assert_eq(amp_conn_adopt(loop, sv[0], cfg, &c), AMP_OK);
    *peer = sv[1];
    return c;
}

Test(conn_user_data, the_notify_runs_once_when_replaced_and_once_after_closed)
{
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct owner first = {0}, second = {0};
    amp_conn_config cfg;
    amp_conn_config_init(&cfg);
    cfg.callbacks.closed = owner_closed;
    cfg.user_data = &first;
    cfg.user_data_free = owner_free;
    int peer;
    amp_conn *c = adopt_pair(loop, &cfg, &peer);
    amp_conn_callbacks cb;
    amp_conn_callbacks_init(&cb);
    cb.closed = owner_closed;
    /* the same pair again: nothing is released */
    amp_conn_set_callbacks_full(c, &cb, &first, owner_free);
    cr_assert_eq(first.freed, 0);
    /* another user_data: the first is released, now */
    amp_conn_set_callbacks_full(c, &cb, &second, owner_free);
    cr_assert_eq(first.freed, 1);
    cr_assert_eq(first.closed, 0);
    cr_assert_eq(second.freed, 0);
    /* closing: `closed`, then the notify, once */
    close(peer);
    for (int i = 0; i < 100 && !second.freed; i++)
        ev_run(loop, EVRUN_NOWAIT);
    cr_assert_eq(second.closed, 1);
    cr_assert_eq(second.freed, 1);
    cr_assert_eq(second.closed_before_free, 1, "released before `closed` ran");
    cr_assert_eq(first.freed, 1);
    ev_loop_destroy(loop);
}

Test(conn_user_data, replacing_without_a_notify_releases_the_old_one)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct owner o = {0};
    amp_conn_config cfg;
    amp_conn_config_init(&cfg);
    cfg.user_data = &o;
    cfg.user_data_free = owner_free;
    int peer;
    amp_conn *c = adopt_pair(loop, &cfg, &peer);
    /* the same user_data, but no notify any more: that is a replacement */
    amp_conn_set_callbacks(c, NULL, &o);
    cr_assert_eq(o.freed, 1);
    amp_conn_abort(c);
    cr_assert_eq(o.freed, 1, "released twice");
    close(peer);
    ev_loop_destroy(loop);
}

Test(conn_user_data, abort_releases_it_and_a_failed_connect_does_not)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct owner o = {0};
    amp_conn_config cfg;
    amp_conn_config_init(&cfg);
    cfg.callbacks.closed = owner_closed;
    cfg.user_data = &o;
    cfg.user_data_free = owner_free;
    /* fails at once: no callback, no notify; the caller still owns it */
    amp_conn *c = NULL;
    char err[256];
    cr_assert_eq(amp_connect(loop, "unix:/nonexistent/amp-contracts.sock", &cfg, &c, err,
                             sizeof err), AMP_E_CONNECT);
    cr_assert_eq(o.freed, 0);
    cr_assert_eq(o.closed, 0);
    int peer;
    c = adopt_pair(loop, &cfg, &peer);
    amp_conn_abort(c);
    cr_assert_eq(o.closed, 1);
    cr_assert_eq(o.freed, 1);
    close(peer);
    ev_loop_destroy(loop);
}

/* ---- init functions ------------------------------------------------------- */

Test(conn_init, config_init_writes_out_todays_defaults)
{
    amp_conn_config cfg;
    memset(&cfg, 0xa5, sizeof cfg);
    amp_conn_config_init(&cfg);
    amp_limits d;
    amp_limits_default(&d);
    cr_assert_eq(cfg.limits.max_keys, d.max_keys);
    cr_assert_eq(cfg.limits.max_box_bytes, d.max_box_bytes);
    cr_assert_eq(cfg.limits.allow_empty_box, 0);
    cr_assert_eq(cfg.output_high_water, 1u << 20);
    cr_assert_eq(cfg.output_hard_cap, 64u << 20);
    cr_assert_eq(cfg.handshake_timeout, 10);
    cr_assert_eq(cfg.box_timeout, 0);
    cr_assert_eq(cfg.max_fds, 0);
    cr_assert_null(cfg.callbacks.ready);
    cr_assert_null(cfg.callbacks.closed);
    cr_assert_null(cfg.callbacks.backpressure);
    cr_assert_null(cfg.user_data);
    cr_assert_null(cfg.user_data_free);
    cr_assert_null(cfg.usage);
}

Test(conn_init, tls_and_endpoint_init)
{
    amp_tls_config tls;
    memset(&tls, 0xa5, sizeof tls);
    amp_tls_config_init(&tls);
    cr_assert_null(tls.private_key);
    cr_assert_null(tls.ca_file);
    cr_assert_null(tls.hostname);
    cr_assert_eq(tls.client_cert, AMP_CLIENT_CERT_NONE);
    cr_assert_eq(tls.insecure_skip_verify, 0);
    /* a hand-made endpoint gets the defaults a parsed one has */
    amp_endpoint ep, parsed;
    memset(&ep, 0xa5, sizeof ep);
    amp_endpoint_init(&ep);
    char err[256];
    cr_assert_eq(amp_endpoint_parse("tcp:localhost:7000", 0, &parsed, err, sizeof err), AMP_OK);
    cr_assert_eq(ep.kind, parsed.kind);
    cr_assert_eq(ep.server, 0);
    cr_assert_eq(ep.timeout, parsed.timeout);
    cr_assert_null(ep.host);
    cr_assert_null(ep.path);
    cr_assert_null(ep.storage_);
    amp_endpoint_free(&parsed);
    cr_assert_eq(amp_endpoint_parse("unix:/tmp/x.sock", 1, &parsed, err, sizeof err), AMP_OK);
    cr_assert_eq(ep.backlog, parsed.backlog);
    cr_assert_eq(ep.mode, parsed.mode);
    amp_endpoint_free(&parsed);
    amp_endpoint_free(&ep); /* frees nothing of the caller's strings */
}

struct ping {
    int answered, status;
};

static void answer_ping(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    amp_request_answer(req, NULL, 0);
}

static void got(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    struct ping *p = ud;
    p->answered = 1;
    p->status = r->status;
}

static void server_accept(amp_listener *l, amp_conn *c, void *ud)
{
    *(amp_conn **)ud = c;
    amp_session_serve_str(amp_conn_session(c), "Ping", answer_ping, NULL);
}

/* A call over a hand-made endpoint with an init'd config, to a listener
 * whose config is zeroed: both behave as before. */
Test(conn_init, init_and_zeroed_structs_connect_alike)
{
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    amp_conn_config zero;
    memset(&zero, 0, sizeof zero);
    amp_listener *l;
    amp_conn *server = NULL;
    char err[256];
    cr_assert_eq(amp_listen(loop, "tcp:0:interface=127.0.0.1", &zero, server_accept, &server, &l,
                            err, sizeof err), AMP_OK, "%s", err);
    amp_endpoint ep;
    amp_endpoint_init(&ep);
    ep.host = "127.0.0.1";
    ep.port = amp_listener_port(l);
    amp_conn_config cfg;
    amp_conn_config_init(&cfg);
    amp_conn *c;
    cr_assert_eq(amp_connect_endpoint(loop, &ep, &cfg, &c, err, sizeof err), AMP_OK, "%s", err);
    struct ping p = {0};
    cr_assert_eq(amp_conn_call(c, "Ping", NULL, 0, 5, got, &p, NULL), AMP_OK);
    for (int i = 0; i < 500 && !p.answered; i++)
        ev_run(loop, EVRUN_ONCE);
    cr_assert_eq(p.status, AMP_OK);
    amp_conn_abort(c);
    cr_assert_not_null(server);
    amp_conn_abort(server);
    amp_listener_free(l);
    ev_loop_destroy(loop);
}
