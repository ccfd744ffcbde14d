/* Listening sockets written once: amp_listen_socket() and amp_acceptor
 * (what amp_listen() and the broker's metrics endpoint are built on), and
 * the destroy-notify of a listener's user_data. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "amp/amp.h"

static amp_endpoint server_ep(const char *text)
{
    amp_endpoint ep;
    char err[256];
    cr_assert_eq(amp_endpoint_parse(text, 1, &ep, err, sizeof err), AMP_OK, "%s", err);
    return ep;
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "%s", strerror(errno));
    return fd;
}

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int is_listening(int fd)
{
    int v = 0;
    socklen_t len = sizeof v;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v;
}

Test(listen_socket, binds_tcp_0_and_reports_the_port)
{
    amp_endpoint ep = server_ep("tcp:0:interface=127.0.0.1");
    int fd = -1, port = -1;
    char err[256];
    cr_assert_eq(amp_listen_socket(&ep, &fd, &port, err, sizeof err), AMP_OK, "%s", err);
    cr_assert(is_listening(fd));
    cr_assert(port > 0);
    cr_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    cr_assert_eq(ntohs(sa.sin_port), port);
    cr_assert_eq(sa.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    /* the port is taken now: a second bind says so */
    amp_endpoint_free(&ep);
    char again[64];
    snprintf(again, sizeof again, "tcp:%d:interface=127.0.0.1", port);
    ep = server_ep(again);
    int fd2 = -1;
    cr_assert_eq(amp_listen_socket(&ep, &fd2, NULL, err, sizeof err), AMP_E_IO);
    cr_assert_eq(fd2, -1);
    cr_assert(strstr(err, "cannot listen on 127.0.0.1:"), "%s", err);
    amp_endpoint_free(&ep);
    close(fd);
}

Test(listen_socket, refuses_client_endpoints)
{
    amp_endpoint ep;
    char err[256];
    cr_assert_eq(amp_endpoint_parse("tcp:127.0.0.1:1", 0, &ep, err, sizeof err), AMP_OK);
    int fd = 7;
    cr_assert_eq(amp_listen_socket(&ep, &fd, NULL, err, sizeof err), AMP_E_INVALID);
    amp_endpoint_free(&ep);
}

Test(listen_socket, unix_replaces_a_stale_path_and_refuses_a_live_one)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/amp-acceptor-test-%d.sock", (int)getpid());
    char text[96];
    snprintf(text, sizeof text, "unix:address=%s:mode=0600", path);
    amp_endpoint ep = server_ep(text);
    char err[256];
    /* a socket file left by a listener that is gone */
    int fd = -1, port = 0;
    cr_assert_eq(amp_listen_socket(&ep, &fd, &port, err, sizeof err), AMP_OK, "%s", err);
    cr_assert_eq(port, -1);
    close(fd);
    cr_assert_eq(access(path, F_OK), 0);
    cr_assert_eq(amp_listen_socket(&ep, &fd, NULL, err, sizeof err), AMP_OK, "%s", err);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    /* someone listens there now: not taken over */
    int fd2 = -1;
    cr_assert_eq(amp_listen_socket(&ep, &fd2, NULL, err, sizeof err), AMP_E_IO);
    cr_assert(strstr(err, strerror(EADDRINUSE)), "%s", err);
    int client = unix_connect(path);
    cr_assert(client >= 0, "the first listener lost its path");
    close(client);
    close(fd);
    unlink(path);
    amp_endpoint_free(&ep);
}

/* ---- amp_acceptor --------------------------------------------------------- */

struct acc {
    int fds[8];
    int n;
    int freed;            /* user_data_free calls */
    int free_in_callback; /* amp_acceptor_free() from the accept callback */
    int in_callback;
    int freed_inside;     /* the notify ran while the callback was on the stack */
    int shed_seen;        /* `shed` calls */
};

static void on_fd(amp_acceptor *a, int fd, void *ud)
{
    struct acc *x = ud;
    x->in_callback = 1;
    x->fds[x->n++] = fd;
    if (x->free_in_callback)
        amp_acceptor_free(a);
    x->in_callback = 0;
}

static void acc_free(void *ud)
{
    struct acc *x = ud;
    x->freed++;
    if (x->in_callback)
        x->freed_inside = 1;
}

static amp_acceptor *acceptor_on(struct ev_loop *loop, const char *text, struct acc *x)
{
    amp_endpoint ep = server_ep(text);
    amp_acceptor_config cfg;
    amp_acceptor_config_init(&cfg);
    cr_assert_eq(cfg.pause, 0.1);
    cfg.accept = on_fd;
    cfg.user_data = x;
    cfg.user_data_free = acc_free;
    amp_acceptor *a;
    char err[256];
    cr_assert_eq(amp_acceptor_new(loop, &ep, &cfg, &a, err, sizeof err), AMP_OK, "%s", err);
    amp_endpoint_free(&ep);
    return a;
}

Test(acceptor, hands_over_each_connection_and_notifies_once_when_freed)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct acc x = {0};
    amp_acceptor *a = acceptor_on(loop, "tcp:0:interface=127.0.0.1", &x);
    int port = amp_acceptor_port(a);
    cr_assert(port > 0);
    cr_assert(is_listening(amp_acceptor_fd(a)));
    int c1 = tcp_connect(port), c2 = tcp_connect(port);
    for (int i = 0; i < 200 && x.n < 2; i++)
        ev_run(loop, EVRUN_NOWAIT);
    cr_assert_eq(x.n, 2);
    for (int i = 0; i < 2; i++) {
        cr_assert(fcntl(x.fds[i], F_GETFL) & O_NONBLOCK);
        cr_assert(fcntl(x.fds[i], F_GETFD) & FD_CLOEXEC);
        cr_assert_eq(send(x.fds[i], "x", 1, 0), 1); /* a connected socket */
        close(x.fds[i]);
    }
    cr_assert_eq(amp_acceptor_shed(a), 0);
    cr_assert_eq(x.freed, 0);
    amp_acceptor_free(a);
    cr_assert_eq(x.freed, 1);
    close(c1);
    close(c2);
    ev_loop_destroy(loop);
}

Test(acceptor, may_be_freed_inside_its_callback)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct acc x = {0};
    x.free_in_callback = 1;
    amp_acceptor *a = acceptor_on(loop, "tcp:0:interface=127.0.0.1", &x);
    int port = amp_acceptor_port(a);
    int c[3];
    for (int i = 0; i < 3; i++) /* three wait: the accept loop would go on */
        c[i] = tcp_connect(port);
    for (int i = 0; i < 100 && !x.n; i++)
        ev_run(loop, EVRUN_NOWAIT);
    cr_assert_eq(x.n, 1, "accepted after the acceptor was freed");
    cr_assert_eq(x.freed, 1);
    cr_assert_eq(x.freed_inside, 0, "user_data released while its callback ran");
    for (int i = 0; i < 10; i++)
        ev_run(loop, EVRUN_NOWAIT);
    cr_assert_eq(x.n, 1);
    close(x.fds[0]);
    for (int i = 0; i < 3; i++)
        close(c[i]);
    ev_loop_destroy(loop);
}

Test(acceptor, a_unix_acceptor_removes_its_path_when_freed)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    char path[64], text[96];
    snprintf(path, sizeof path, "/tmp/amp-acceptor-unix-%d.sock", (int)getpid());
    snprintf(text, sizeof text, "unix:%s", path);
    struct acc x = {0};
    amp_acceptor *a = acceptor_on(loop, text, &x);
    cr_assert_eq(amp_acceptor_port(a), -1);
    int c = unix_connect(path);
    cr_assert(c >= 0);
    for (int i = 0; i < 200 && !x.n; i++)
        ev_run(loop, EVRUN_NOWAIT);
    cr_assert_eq(x.n, 1);
    close(x.fds[0]);
    close(c);
    amp_acceptor_free(a);
    cr_assert_eq(access(path, F_OK), -1);
    cr_assert_eq(x.freed, 1);
    ev_loop_destroy(loop);
}

static void on_shed(amp_acceptor *a, void *ud)
{
    ((struct acc *)ud)->shed_seen++;
}

/* Out of descriptors (this test's own process: Criterion runs each test in
 * a process of its own): the waiting connection is closed, `shed` runs,
 * accepting pauses and then resumes once descriptors are back. */
Test(acceptor, sheds_when_out_of_descriptors_and_recovers)
{
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct acc x = {0};
    amp_endpoint ep = server_ep("tcp:0:interface=127.0.0.1");
    amp_acceptor_config cfg;
    amp_acceptor_config_init(&cfg);
    cfg.accept = on_fd;
    cfg.shed = on_shed;
    cfg.user_data = &x;
    amp_acceptor *a;
    char err[256];
    cr_assert_eq(amp_acceptor_new(loop, &ep, &cfg, &a, err, sizeof err), AMP_OK, "%s", err);
    amp_endpoint_free(&ep);
    int victim = tcp_connect(amp_acceptor_port(a));
    /* fill the descriptor table */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 256;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    static int filler[256];
    int nfill = 0;
    int fd;
    while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        filler[nfill++] = fd;
    cr_assert_eq(errno, EMFILE);
    for (int i = 0; i < 100 && !x.shed_seen; i++)
        ev_run(loop, EVRUN_NOWAIT);
    cr_assert_eq(x.shed_seen, 1);
    cr_assert_eq(amp_acceptor_shed(a), 1);
    cr_assert_eq(x.n, 0);
    /* its client sees the close, not a wait */
    struct pollfd p = {victim, POLLIN, 0};
    cr_assert_eq(poll(&p, 1, 5000), 1);
    char b;
    cr_assert_leq(recv(victim, &b, 1, 0), 0);
    close(victim);
    /* descriptors are back: the next connection is accepted after the pause */
    for (int i = 0; i < 4; i++)
        close(filler[--nfill]);
    int next = tcp_connect(amp_acceptor_port(a));
    for (int i = 0; i < 100 && !x.n; i++)
        ev_run(loop, EVRUN_ONCE);
    cr_assert_eq(x.n, 1);
    cr_assert_eq(amp_acceptor_shed(a), 1);
    close(x.fds[0]);
    close(next);
    while (nfill)
        close(filler[--nfill]);
    amp_acceptor_free(a);
    ev_loop_destroy(loop);
}

/* ---- a listener's user_data ----------------------------------------------- */

struct lst {
    int freed;
    int in_callback, freed_inside;
    amp_conn *c;
};

static void lst_free(void *ud)
{
    struct lst *x = ud;
    x->freed++;
    if (x->in_callback)
        x->freed_inside = 1;
}

static void lst_accept(amp_listener *l, amp_conn *c, void *ud)
{
    struct lst *x = ud;
    x->in_callback = 1;
    x->c = c;
    amp_listener_free(l);
    x->in_callback = 0;
}

Test(listener_user_data, is_released_once_when_the_listener_is_freed)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct lst x = {0};
    amp_listener *l;
    char err[256];
    cr_assert_eq(amp_listen(loop, "tcp:0:interface=127.0.0.1", NULL, NULL, &x, &l, err,
                            sizeof err), AMP_OK, "%s", err);
    amp_listener_set_user_data_free(l, lst_free);
    amp_listener_free(l);
    cr_assert_eq(x.freed, 1);
    ev_loop_destroy(loop);
}

Test(listener_user_data, freed_inside_the_accept_callback_is_released_after_it)
{
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct lst x = {0};
    amp_listener *l;
    char err[256];
    cr_assert_eq(amp_listen(loop, "tcp:0:interface=127.0.0.1", NULL, lst_accept, &x, &l, err,
                            sizeof err), AMP_OK, "%s", err);
    amp_listener_set_user_data_free(l, lst_free);
    int c = tcp_connect(amp_listener_port(l));
    for (int i = 0; i < 200 && !x.c; i++)
        ev_run(loop, EVRUN_NOWAIT);
    cr_assert_not_null(x.c);
    cr_assert_eq(x.freed, 1);
    cr_assert_eq(x.freed_inside, 0, "user_data released while the accept callback ran");
    amp_conn_abort(x.c);
    close(c);
    ev_loop_destroy(loop);
}

static void never(void *ud)
{
    cr_assert_fail("a template's user_data_free must not be accepted");
}

Test(listener_user_data, a_config_with_a_notify_is_refused)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    amp_conn_config cfg;
    amp_conn_config_init(&cfg);
    cfg.user_data_free = never; /* would run once per accepted connection */
    amp_listener *l = NULL;
    char err[256];
    cr_assert_eq(amp_listen(loop, "tcp:0:interface=127.0.0.1", &cfg, NULL, NULL, &l, err,
                            sizeof err), AMP_E_INVALID);
    cr_assert_null(l);
    ev_loop_destroy(loop);
}
