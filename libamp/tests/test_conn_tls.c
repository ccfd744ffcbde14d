/* StartTLS through the C API verifies the server by default: a zeroed
 * amp_tls_config checks the certificate against the CAs and the name
 * against the host the connection was made to. Certificates are made by
 * the openssl command for each test. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ev.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "amp/amp.h"

static char dir[64];

static void path(char *out, size_t n, const char *file)
{
    snprintf(out, n, "%s/%s", dir, file);
}

static void make_pki(void)
{
    snprintf(dir, sizeof dir, "/tmp/amp-tls-XXXXXX");
    cr_assert(mkdtemp(dir));
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && exec >/dev/null 2>&1 && "
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
             "-subj '/CN=amp test CA' && "
             "openssl req -newkey rsa:2048 -nodes -keyout other.key -out other.csr "
             "-subj /CN=other.example && "
             "echo subjectAltName=DNS:other.example > other.ext && "
             "openssl x509 -req -in other.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out other.pem -days 2 -extfile other.ext",
             dir);
    cr_assert_eq(system(cmd), 0, "openssl failed");
}

static void remove_pki(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

struct tworld {
    struct ev_loop *loop;
    amp_listener *l;
    int port;
    amp_tls_config serve;
    char cert[128], key[128], ca[128];
    int server_closed;
};

static void server_closed(amp_conn *c, int reason, void *ud)
{
    ((struct tworld *)ud)->server_closed++;
}

static void echo(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    amp_request_answer(req, NULL, 0);
}

static void on_accept(amp_listener *l, amp_conn *c, void *ud)
{
    struct tworld *w = ud;
    amp_conn_callbacks cb = {NULL, server_closed, NULL};
    amp_conn_set_callbacks(c, &cb, ud);
    amp_session_serve_str(amp_conn_session(c), "Echo", echo, NULL);
    cr_assert_eq(amp_conn_serve_start_tls(c, &w->serve), AMP_OK);
}

static void tworld_init(struct tworld *w)
{
    memset(w, 0, sizeof *w);
    signal(SIGPIPE, SIG_IGN);
    make_pki();
    path(w->cert, sizeof w->cert, "other.pem");
    path(w->key, sizeof w->key, "other.key");
    path(w->ca, sizeof w->ca, "ca.pem");
    w->serve.cert = w->cert;
    w->serve.private_key = w->key;
    w->loop = ev_loop_new(EVFLAG_AUTO);
    char err[256];
    cr_assert_eq(amp_listen(w->loop, "tcp:0:interface=127.0.0.1", NULL, on_accept, w, &w->l, err,
                            sizeof err),
                 AMP_OK, "%s", err);
    w->port = amp_listener_port(w->l);
}

static void tworld_free(struct tworld *w)
{
    amp_listener_free(w->l);
    ev_loop_destroy(w->loop);
    remove_pki();
}

struct tclient {
    amp_conn *c;
    int ready, closed, closed_reason, answered, answer_status;
    char error[300];
};

static void c_ready(amp_conn *c, void *ud)
{
    ((struct tclient *)ud)->ready = 1;
}

static void c_closed(amp_conn *c, int reason, void *ud)
{
    struct tclient *cl = ud;
    cl->closed = 1;
    cl->closed_reason = reason;
    snprintf(cl->error, sizeof cl->error, "%s", amp_conn_error_text(c));
    cl->c = NULL;
}

static void c_answer(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    struct tclient *cl = ud;
    cl->answered++;
    cl->answer_status = r->status;
}

static void run_until(struct tworld *w, const int *flag)
{
    for (int i = 0; i < 5000 && !*flag; i++)
        ev_run(w->loop, EVRUN_ONCE);
}

static void connect_plain(struct tworld *w, struct tclient *cl, const char *host)
{
    memset(cl, 0, sizeof *cl);
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.callbacks.ready = c_ready;
    cfg.callbacks.closed = c_closed;
    cfg.user_data = cl;
    char ep[128], err[256];
    snprintf(ep, sizeof ep, "tcp:%s:%d", host, w->port);
    cr_assert_eq(amp_connect(w->loop, ep, &cfg, &cl->c, err, sizeof err), AMP_OK, "%s", err);
    run_until(w, &cl->ready);
    cr_assert(cl->ready);
}

Test(starttls, a_zeroed_config_verifies_the_connected_host)
{
    struct tworld w;
    tworld_init(&w);
    struct tclient cl;
    connect_plain(&w, &cl, "127.0.0.1");
    amp_tls_config tls;
    memset(&tls, 0, sizeof tls);
    tls.ca_file = w.ca; /* the right CA; the certificate names other.example */
    cr_assert_eq(amp_conn_start_tls(cl.c, &tls, c_answer, &cl), AMP_OK);
    run_until(&w, &cl.closed);
    cr_assert_eq(cl.closed_reason, AMP_E_TLS);
    cr_assert(strstr(cl.error, "certificate verification failed"), "%s", cl.error);
    run_until(&w, &w.server_closed);
    tworld_free(&w);
}

Test(starttls, the_name_the_certificate_carries_passes)
{
    struct tworld w;
    tworld_init(&w);
    struct tclient cl;
    connect_plain(&w, &cl, "127.0.0.1");
    amp_tls_config tls;
    memset(&tls, 0, sizeof tls);
    tls.ca_file = w.ca;
    tls.hostname = "other.example";
    cr_assert_eq(amp_conn_start_tls(cl.c, &tls, c_answer, &cl), AMP_OK);
    cr_assert_eq(amp_conn_call(cl.c, "Echo", NULL, 0, 5, c_answer, &cl, NULL), AMP_OK);
    for (int i = 0; i < 5000 && cl.answered < 2 && !cl.closed; i++)
        ev_run(w.loop, EVRUN_ONCE);
    cr_assert_eq(cl.answered, 2, "%s", cl.error);
    cr_assert_eq(cl.answer_status, AMP_OK);
    cr_assert(amp_conn_is_tls(cl.c));
    amp_conn_abort(cl.c);
    run_until(&w, &w.server_closed);
    tworld_free(&w);
}

Test(starttls, no_name_to_check_is_an_error_unless_verification_is_off)
{
    struct tworld w;
    tworld_init(&w);
    /* an adopted socket: nobody said which host it reaches */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)w.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct tclient cl;
    memset(&cl, 0, sizeof cl);
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.callbacks.closed = c_closed;
    cfg.user_data = &cl;
    cr_assert_eq(amp_conn_adopt(w.loop, fd, &cfg, &cl.c), AMP_OK);
    amp_tls_config tls;
    memset(&tls, 0, sizeof tls);
    tls.ca_file = w.ca;
    cr_assert_eq(amp_conn_start_tls(cl.c, &tls, c_answer, &cl), AMP_E_TLS);
    cr_assert(strstr(amp_conn_error_text(cl.c), "no host name"), "%s",
              amp_conn_error_text(cl.c));
    tls.insecure_skip_verify = 1; /* explicit: then anything goes */
    cr_assert_eq(amp_conn_start_tls(cl.c, &tls, c_answer, &cl), AMP_OK);
    run_until(&w, &cl.answered);
    cr_assert_eq(cl.answer_status, AMP_OK);
    cr_assert_eq(amp_conn_call(cl.c, "Echo", NULL, 0, 5, c_answer, &cl, NULL), AMP_OK);
    for (int i = 0; i < 5000 && cl.answered < 2 && !cl.closed; i++)
        ev_run(w.loop, EVRUN_ONCE);
    cr_assert_eq(cl.answered, 2, "%s", cl.error);
    cr_assert(amp_conn_is_tls(cl.c));
    amp_conn_abort(cl.c);
    run_until(&w, &w.server_closed);
    tworld_free(&w);
}
