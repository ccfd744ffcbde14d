/* Connections in one process: a listener and clients on the same libev loop
 * over real loopback sockets. */
#include <criterion/criterion.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amp/amp.h"

struct world {
    struct ev_loop *loop;
    amp_listener *l;
    int port;
    amp_request *held[64];
    int nheld;
    int server_closed;
};

static void hold(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    struct world *w = ud;
    w->held[w->nheld++] = req; /* never answered unless a test does it */
}

static void echo_a(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    const amp_pair *a = amp_box_find_str(args, "a");
    amp_pair p = {(const uint8_t *)"a", 1, a ? a->value : (const uint8_t *)"", a ? a->value_len : 0};
    amp_request_answer(req, &p, 1);
}

static void server_closed(amp_conn *c, int reason, void *ud)
{
    ((struct world *)ud)->server_closed++;
}

static void on_accept(amp_listener *l, amp_conn *c, void *ud)
{
    amp_conn_callbacks cb = {NULL, server_closed, NULL};
    amp_conn_set_callbacks(c, &cb, ud);
    amp_session_serve_str(amp_conn_session(c), "Hold", hold, ud);
    amp_session_serve_str(amp_conn_session(c), "Echo", echo_a, ud);
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof *w);
    signal(SIGPIPE, SIG_IGN);
    w->loop = ev_loop_new(EVFLAG_AUTO);
    char err[256];
    cr_assert_eq(amp_listen(w->loop, "tcp:0:interface=127.0.0.1", NULL, on_accept, w, &w->l,
                            err, sizeof err), AMP_OK, "%s", err);
    w->port = amp_listener_port(w->l);
    cr_assert(w->port > 0);
}

static void world_free(struct world *w)
{
    amp_listener_free(w->l);
    ev_loop_destroy(w->loop);
}

struct client {
    struct world *w;
    amp_conn *c;
    int ready, closed, closed_reason;
    int results[64], status[64];
    int abort_in_callback;
};

static void c_ready(amp_conn *c, void *ud)
{
    ((struct client *)ud)->ready = 1;
}

static void c_closed(amp_conn *c, int reason, void *ud)
{
    struct client *cl = ud;
    cl->closed++;
    cl->closed_reason = reason;
    cl->c = NULL;
}

static void c_result(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    struct client *cl = ud;
    cr_assert(id < 64);
    cl->results[id]++;
    cl->status[id] = r->status;
    if (cl->abort_in_callback && cl->c)
        amp_conn_abort(cl->c); /* from inside the connection's own callback */
}

static void connect_client(struct client *cl, struct world *w, const char *endpoint_fmt)
{
    memset(cl, 0, sizeof *cl);
    cl->w = w;
    char ep[128], err[256];
    snprintf(ep, sizeof ep, endpoint_fmt, w->port);
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.callbacks.ready = c_ready;
    cfg.callbacks.closed = c_closed;
    cfg.user_data = cl;
    cr_assert_eq(amp_connect(w->loop, ep, &cfg, &cl->c, err, sizeof err), AMP_OK, "%s", err);
    for (int i = 0; i < 1000 && !cl->ready && !cl->closed; i++)
        ev_run(w->loop, EVRUN_ONCE);
    cr_assert(cl->ready);
}

static void spin(struct world *w, int *flag, int want)
{
    for (int i = 0; i < 2000 && *flag < want; i++)
        ev_run(w->loop, EVRUN_ONCE);
}

Test(conn, timeout_then_close_completes_every_call_once)
{
    struct world w;
    world_init(&w);
    struct client cl;
    connect_client(&cl, &w, "tcp:127.0.0.1:%d");
    uint64_t fast, slow, none;
    cr_assert_eq(amp_conn_call(cl.c, "Hold", NULL, 0, 0.05, c_result, &cl, &fast), AMP_OK);
    cr_assert_eq(amp_conn_call(cl.c, "Hold", NULL, 0, 30, c_result, &cl, &slow), AMP_OK);
    cr_assert_eq(amp_conn_call(cl.c, "Hold", NULL, 0, 0, c_result, &cl, &none), AMP_OK);
    spin(&w, &cl.results[fast], 1);
    cr_assert_eq(cl.status[fast], AMP_E_TIMEOUT);
    spin(&w, &w.nheld, 3);
    cr_assert_eq(w.nheld, 3);
    /* the server answers the timed-out call late: dropped, not an error */
    amp_request_answer(w.held[0], NULL, 0);
    for (int i = 0; i < 20; i++)
        ev_run(w.loop, EVRUN_NOWAIT);
    cr_assert_eq(cl.results[fast], 1);
    cr_assert_eq(cl.closed, 0);
    amp_conn_close(cl.c);
    spin(&w, &cl.closed, 1);
    cr_assert_eq(cl.results[slow], 1);
    cr_assert_eq(cl.status[slow], AMP_E_CLOSED);
    cr_assert_eq(cl.results[none], 1);
    cr_assert_eq(cl.status[none], AMP_E_CLOSED);
    spin(&w, &w.server_closed, 1);
    /* the server's unanswered requests fail cleanly */
    cr_assert_eq(amp_request_answer(w.held[1], NULL, 0), AMP_E_CLOSED);
    cr_assert_eq(amp_request_answer(w.held[2], NULL, 0), AMP_E_CLOSED);
    world_free(&w);
}

Test(conn, abort_from_inside_a_callback)
{
    struct world w;
    world_init(&w);
    struct client cl;
    connect_client(&cl, &w, "tcp:127.0.0.1:%d");
    cl.abort_in_callback = 1;
    amp_pair a = {(const uint8_t *)"a", 1, (const uint8_t *)"1", 1};
    for (int i = 0; i < 5; i++)
        amp_conn_call(cl.c, "Echo", &a, 1, 0, c_result, &cl, NULL);
    spin(&w, &cl.closed, 1);
    cr_assert_eq(cl.closed, 1);
    /* the first answer aborted the connection: the rest closed, once each */
    int total = 0;
    for (int i = 1; i <= 5; i++) {
        cr_assert_eq(cl.results[i], 1);
        total += cl.status[i] == AMP_OK;
    }
    cr_assert(total >= 1);
    spin(&w, &w.server_closed, 1);
    world_free(&w);
}

Test(conn, connection_refused_and_bad_endpoint)
{
    struct world w;
    world_init(&w);
    amp_listener_free(w.l);
    w.l = NULL;
    struct client cl;
    memset(&cl, 0, sizeof cl);
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.callbacks.closed = c_closed;
    cfg.user_data = &cl;
    char ep[64], err[256];
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", w.port);
    amp_conn *c;
    amp_err r = amp_connect(w.loop, ep, &cfg, &c, err, sizeof err);
    if (r == AMP_OK) { /* refused asynchronously */
        spin(&w, &cl.closed, 1);
        cr_assert_eq(cl.closed_reason, AMP_E_CONNECT);
    } else {
        cr_assert_eq(r, AMP_E_CONNECT);
    }
    cr_assert_eq(amp_connect(w.loop, "tcp:nowhere", &cfg, &c, err, sizeof err), AMP_E_ENDPOINT);
    cr_assert(strstr(err, "missing the port"));
    world_free(&w);
}

Test(conn, backpressure_events_and_hard_cap)
{
    struct world w;
    world_init(&w);
    /* while the loop does not run nothing is written: calls pile up in the
     * session until its hard cap refuses them */
    static uint8_t big[60000];
    memset(big, 'x', sizeof big);
    struct client cl;
    memset(&cl, 0, sizeof cl);
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.callbacks.ready = c_ready;
    cfg.callbacks.closed = c_closed;
    cfg.output_high_water = 256 * 1024;
    cfg.output_hard_cap = 1024 * 1024;
    cfg.user_data = &cl;
    char ep[64], err[256];
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", w.port);
    cr_assert_eq(amp_connect(w.loop, ep, &cfg, &cl.c, err, sizeof err), AMP_OK);
    spin(&w, &cl.ready, 1);
    amp_pair p = {(const uint8_t *)"a", 1, big, sizeof big};
    int accepted = 0;
    amp_err r;
    while ((r = amp_conn_call(cl.c, "Echo", &p, 1, 0, NULL, NULL, NULL)) == AMP_OK)
        accepted++;
    cr_assert_eq(r, AMP_E_BACKPRESSURE);
    cr_assert(accepted >= 16 && accepted <= 18, "%d calls fit under 1 MiB", accepted);
    amp_conn_abort(cl.c);
    spin(&w, &w.server_closed, 1);
    world_free(&w);
}

Test(conn, foreign_loop_client)
{
    struct world w;
    world_init(&w);
    /* the server runs on `w.loop`; the client has its own loop, driven here
     * by hand through its fd and step function, as a foreign loop would */
    char ep[64], err[256];
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", w.port);
    pid_t pid = fork();
    if (pid == 0) {
        ev_loop_fork(w.loop);
        ev_run(w.loop, 0);
        _exit(0);
    }
    amp_client *c;
    cr_assert_eq(amp_client_connect(&c, ep, 5, err, sizeof err), AMP_OK, "%s", err);
    cr_assert(amp_client_fd(c) >= 0);
    struct client cl;
    memset(&cl, 0, sizeof cl);
    amp_pair a = {(const uint8_t *)"a", 1, (const uint8_t *)"7", 1};
    uint64_t id;
    cr_assert_eq(amp_conn_call(amp_client_conn(c), "Echo", &a, 1, 5, c_result, &cl, &id), AMP_OK);
    cr_assert(amp_client_timeout(c) > 0);
    for (int i = 0; i < 5000 && !cl.results[id]; i++) {
        amp_client_step(c); /* writes the call, later reads the answer */
        usleep(1000);
    }
    cr_assert_eq(cl.results[id], 1);
    cr_assert_eq(cl.status[id], AMP_OK);
    amp_client_free(c);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    world_free(&w);
}

Test(conn, no_peer_certificate_without_tls)
{
    struct world w;
    world_init(&w);
    struct client cl;
    connect_client(&cl, &w, "tcp:127.0.0.1:%d");
    const uint8_t *der = (const uint8_t *)"unchanged";
    size_t len = 12345;
    cr_assert_eq(amp_conn_peer_certificate_der(cl.c, &der, &len), -1);
    cr_assert_str_eq((const char *)der, "unchanged"); /* outputs untouched */
    cr_assert_eq(len, 12345);
    amp_conn_abort(cl.c);
    spin(&w, &w.server_closed, 1); /* the accepted side is freed too */
    world_free(&w);
}
