/* Connecting by name: the lookup does not block the loop, and every address
 * it gives is tried in turn.
 *
 * Test hook: this file defines getaddrinfo(), which the statically linked
 * library calls instead of the C library's, for two made-up names (so the
 * tests do not depend on /etc/hosts or DNS); every other name goes to the
 * real resolver.
 *   two-addresses.test  127.0.0.1 on a closed port, then on the open port
 *   slow-nowhere.test   fails after 1 s, like a name server that is slow */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amp/amp.h"

static int closed_port, open_port; /* for two-addresses.test */

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static int numeric(gai_fn real, int port, struct addrinfo **out)
{
    struct addrinfo h;
    memset(&h, 0, sizeof h);
    h.ai_family = AF_INET;
    h.ai_socktype = SOCK_STREAM;
    h.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    return real("127.0.0.1", p, &h, out);
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    if (node && !strcmp(node, "two-addresses.test")) {
        struct addrinfo *first, *second;
        if (numeric(real, closed_port, &first))
            return EAI_FAIL;
        if (numeric(real, open_port, &second)) {
            freeaddrinfo(first);
            return EAI_FAIL;
        }
        first->ai_next = second; /* one list, as a resolver returns it */
        *res = first;
        return 0;
    }
    if (node && !strcmp(node, "slow-nowhere.test")) {
        sleep(1);
        return EAI_NONAME;
    }
    return real(node, service, hints, res);
}

struct world {
    struct ev_loop *loop;
    amp_listener *l;
};

static void echo(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    amp_request_answer(req, NULL, 0);
}

static int server_closed;

static void on_server_closed(amp_conn *c, int reason, void *ud)
{
    server_closed++;
}

static void on_accept(amp_listener *l, amp_conn *c, void *ud)
{
    amp_conn_callbacks cb = {NULL, on_server_closed, NULL};
    amp_conn_set_callbacks(c, &cb, NULL);
    amp_session_serve_str(amp_conn_session(c), "Echo", echo, NULL);
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof *w);
    signal(SIGPIPE, SIG_IGN);
    w->loop = ev_loop_new(EVFLAG_AUTO);
    char err[256];
    cr_assert_eq(amp_listen(w->loop, "tcp:0:interface=127.0.0.1", NULL, on_accept, NULL, &w->l,
                            err, sizeof err),
                 AMP_OK, "%s", err);
    open_port = amp_listener_port(w->l);
    /* a port nobody listens on: bound for a moment, then released */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    closed_port = ntohs(sa.sin_port);
    close(fd);
}

static void world_free(struct world *w)
{
    amp_listener_free(w->l);
    ev_loop_destroy(w->loop);
}

struct client {
    amp_conn *c;
    int ready, closed, closed_reason, answered, order;
    char error[300];
};

static int sequence; /* the order in which things happened */

static void c_ready(amp_conn *c, void *ud)
{
    ((struct client *)ud)->ready = 1;
}

static void c_closed(amp_conn *c, int reason, void *ud)
{
    struct client *cl = ud;
    cl->closed = 1;
    cl->closed_reason = reason;
    cl->order = ++sequence;
    snprintf(cl->error, sizeof cl->error, "%s", amp_conn_error_text(c));
    cl->c = NULL;
}

static void c_answer(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    struct client *cl = ud;
    cl->answered = r->status == AMP_OK ? 1 : -1;
    cl->order = ++sequence;
}

static amp_err start(struct world *w, struct client *cl, const char *ep)
{
    memset(cl, 0, sizeof *cl);
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.callbacks.ready = c_ready;
    cfg.callbacks.closed = c_closed;
    cfg.user_data = cl;
    char err[256];
    return amp_connect(w->loop, ep, &cfg, &cl->c, err, sizeof err);
}

static void run_until(struct world *w, const int *flag)
{
    for (int i = 0; i < 5000 && !*flag; i++)
        ev_run(w->loop, EVRUN_ONCE);
}

Test(connect, every_resolved_address_is_tried_in_turn)
{
    struct world w;
    world_init(&w);
    struct client cl;
    char ep[64];
    snprintf(ep, sizeof ep, "tcp:two-addresses.test:%d", open_port);
    cr_assert_eq(start(&w, &cl, ep), AMP_OK);
    for (int i = 0; i < 5000 && !cl.ready && !cl.closed; i++)
        ev_run(w.loop, EVRUN_ONCE);
    cr_assert(cl.ready, "not connected: %s", cl.error);
    cr_assert_eq(amp_conn_call(cl.c, "Echo", NULL, 0, 5, c_answer, &cl, NULL), AMP_OK);
    run_until(&w, &cl.answered);
    cr_assert_eq(cl.answered, 1);
    amp_conn_abort(cl.c);
    run_until(&w, &server_closed); /* the accepted side is freed too */
    world_free(&w);
}

Test(connect, the_blocking_client_tries_every_address_too)
{
    struct world w;
    world_init(&w);
    amp_listener_free(w.l); /* the server runs in a child */
    w.l = NULL;
    char err[256];
    cr_assert_eq(amp_listen(w.loop, "tcp:0:interface=127.0.0.1", NULL, on_accept, NULL, &w.l, err,
                            sizeof err),
                 AMP_OK);
    open_port = amp_listener_port(w.l);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        ev_loop_fork(w.loop);
        ev_run(w.loop, 0);
        _exit(0);
    }
    char ep[64];
    snprintf(ep, sizeof ep, "tcp:two-addresses.test:%d", open_port);
    amp_client *c;
    cr_assert_eq(amp_client_connect(&c, ep, 10, err, sizeof err), AMP_OK, "%s", err);
    amp_reply *rep = NULL;
    cr_assert_eq(amp_client_call(c, "Echo", NULL, 0, 5, &rep), AMP_OK);
    amp_reply_free(rep);
    amp_client_free(c);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    world_free(&w);
}

Test(connect, a_slow_lookup_does_not_hold_up_other_connections)
{
    struct world w;
    world_init(&w);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", open_port);
    struct client other, slow;
    cr_assert_eq(start(&w, &other, ep), AMP_OK);
    run_until(&w, &other.ready);
    /* the lookup takes a second and fails; the call was made after it started */
    cr_assert_eq(start(&w, &slow, "tcp:slow-nowhere.test:7000"), AMP_OK,
                 "the lookup ran on the caller's thread");
    cr_assert_eq(slow.closed, 0);
    cr_assert_eq(amp_conn_call(other.c, "Echo", NULL, 0, 5, c_answer, &other, NULL), AMP_OK);
    run_until(&w, &slow.closed);
    cr_assert_eq(slow.closed_reason, AMP_E_RESOLVE);
    cr_assert(strstr(slow.error, "cannot resolve slow-nowhere.test"), "%s", slow.error);
    cr_assert_eq(other.answered, 1);
    cr_assert(other.order < slow.order, "the answer waited for the lookup");
    amp_conn_abort(other.c);
    run_until(&w, &server_closed);
    world_free(&w);
}

Test(connect, an_unresolvable_name_is_amp_e_resolve)
{
    struct world w;
    world_init(&w);
    struct client cl; /* the real resolver: .invalid never resolves (RFC 6761) */
    cr_assert_eq(start(&w, &cl, "tcp:host=amp-conn-test.invalid:port=7000:timeout=10"), AMP_OK);
    run_until(&w, &cl.closed);
    cr_assert_eq(cl.closed_reason, AMP_E_RESOLVE, "%s", cl.error);
    world_free(&w);
}

Test(connect, a_lookup_abandoned_by_its_connection)
{
    struct world w;
    world_init(&w);
    struct client cl;
    cr_assert_eq(start(&w, &cl, "tcp:slow-nowhere.test:7000"), AMP_OK);
    amp_conn_abort(cl.c); /* while the thread is still resolving */
    cr_assert_eq(cl.closed, 1);
    cr_assert_eq(cl.closed_reason, AMP_E_CLOSED);
    world_free(&w); /* the loop is gone before the thread finishes */
    sleep(2);       /* and the thread finishing then touches nothing of it */
}
