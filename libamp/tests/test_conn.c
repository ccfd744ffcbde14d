/* Connections in one process: a listener and clients on the same libev loop
 * over real loopback sockets. */
#include <criterion/criterion.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

/* Answers after a delay: Slow after 0.2 s, StartTLS after 1 s (a server
 * too slow for the client's StartTLS timeout; its answer arrives late). */
struct later {
    amp_request *req;
    ev_timer t;
};

static void later_fire(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct later *d = t->data;
    amp_request_answer(d->req, NULL, 0);
    free(d);
}

static void answer_later(struct world *w, amp_request *req, double after)
{
    struct later *d = malloc(sizeof *d);
    d->req = req;
    ev_timer_init(&d->t, later_fire, after, 0);
    d->t.data = d;
    ev_timer_start(w->loop, &d->t);
}

static void slow(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    answer_later(ud, req, 0.2);
}

static void late_starttls(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    answer_later(ud, req, 1.0);
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
    amp_session_serve_str(amp_conn_session(c), "Slow", slow, ud);
    amp_session_serve_str(amp_conn_session(c), "StartTLS", late_starttls, ud);
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
        prctl(PR_SET_PDEATHSIG, SIGKILL);
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

/* The server in a child process, so that a blocking client in this one can
 * wait on it. */
static pid_t serve_in_child(struct world *w)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* not left behind by a failed test */
        ev_loop_fork(w->loop);
        ev_run(w->loop, 0);
        _exit(0);
    }
    return pid;
}

static void stop_child(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

Test(deadlines, a_call_after_an_idle_spell_gets_its_whole_timeout)
{
    struct world w;
    world_init(&w);
    pid_t pid = serve_in_child(&w);
    char ep[64], err[256];
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", w.port);
    amp_client *c;
    cr_assert_eq(amp_client_connect(&c, ep, 5, err, sizeof err), AMP_OK, "%s", err);
    sleep(3); /* the client's loop does not run: its cached time goes stale */
    amp_reply *rep = NULL;
    amp_err r = amp_client_call(c, "Slow", NULL, 0, 1.0, &rep);
    cr_assert_eq(r, AMP_OK, "a 1 s call answered in 0.2 s ended with %s", amp_strerror(r));
    amp_reply_free(rep);

    /* the same through amp_conn_call on an idle loop, and what a foreign loop
     * is told to wait */
    sleep(2);
    struct client cl;
    memset(&cl, 0, sizeof cl);
    uint64_t id;
    cr_assert_eq(amp_conn_call(amp_client_conn(c), "Slow", NULL, 0, 5, c_result, &cl, &id),
                 AMP_OK);
    double left = amp_client_timeout(c);
    cr_assert(left > 3 && left <= 5, "%g s left of a 5 s call just made", left);
    sleep(2);
    left = amp_client_timeout(c);
    cr_assert(left <= 3.5, "%g s left of a 5 s call made 2 s ago", left);
    for (int i = 0; i < 5000 && !cl.results[id]; i++) {
        amp_client_step(c);
        usleep(1000);
    }
    cr_assert_eq(cl.status[id], AMP_OK);
    amp_client_free(c);
    stop_child(pid);
    world_free(&w);
}

Test(client, start_tls_timeout_leaves_nothing_pointing_at_its_stack)
{
    struct world w;
    world_init(&w);
    pid_t pid = serve_in_child(&w); /* answers StartTLS after 1 s */
    char ep[64], err[256];
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", w.port);
    amp_client *c;
    cr_assert_eq(amp_client_connect(&c, ep, 5, err, sizeof err), AMP_OK, "%s", err);
    amp_tls_config tls;
    memset(&tls, 0, sizeof tls);
    tls.hostname = "localhost";
    cr_assert_eq(amp_client_start_tls(c, &tls, 0.2), AMP_E_TIMEOUT);
    /* the late answer arrives; stepping must not deliver it into the frame
     * of amp_client_start_tls (ASan reports that write) */
    usleep(1200 * 1000);
    for (int i = 0; i < 20; i++)
        amp_client_step(c);
    /* because the call was not left outstanding: the connection is closed */
    cr_assert_null(amp_client_conn(c));
    cr_assert_str_eq(amp_client_error_text(c), "StartTLS timed out");
    amp_reply *rep = NULL;
    cr_assert_eq(amp_client_call(c, "Echo", NULL, 0, 1, &rep), AMP_E_CLOSED);
    amp_client_free(c);
    stop_child(pid);
    world_free(&w);
}

/* Under ASan, catch writes into the frames of functions that returned (off
 * by default); a no-op in other builds. */
#if defined(__SANITIZE_ADDRESS__)
__attribute__((visibility("default"))) const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_stack_use_after_return=1";
}
#endif
