/* amp_client_wakeup(): another thread interrupts a blocked client. The
 * server is a listening socket nobody accepts on: the kernel completes the
 * connection, and no call is ever answered, so only the wakeup (or a
 * timeout) can end a wait. A wakeup that did not work hangs the test until
 * Criterion's timeout fails it. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "amp/amp.h"

struct silent {
    int fd; /* listening; never accepted */
    char endpoint[64];
};

static void silent_open(struct silent *s)
{
    amp_endpoint ep;
    char err[256];
    cr_assert_eq(amp_endpoint_parse("tcp:0:interface=127.0.0.1", 1, &ep, err, sizeof err),
                 AMP_OK, "%s", err);
    int port = -1;
    cr_assert_eq(amp_listen_socket(&ep, &s->fd, &port, err, sizeof err), AMP_OK, "%s", err);
    amp_endpoint_free(&ep);
    snprintf(s->endpoint, sizeof s->endpoint, "tcp:127.0.0.1:%d", port);
}

static amp_client *connect_silent(struct silent *s)
{
    signal(SIGPIPE, SIG_IGN);
    silent_open(s);
    amp_client *c;
    char err[256];
    cr_assert_eq(amp_client_connect(&c, s->endpoint, 5, err, sizeof err), AMP_OK, "%s", err);
    return c;
}

static void *wake_now(void *arg)
{
    amp_client_wakeup(arg);
    return NULL;
}

static void *wake_later(void *arg)
{
    struct timespec ts = {0, 200 * 1000 * 1000}; /* let the main thread block first */
    nanosleep(&ts, NULL);
    amp_client_wakeup(arg);
    return NULL;
}

Test(client_wakeup, another_thread_interrupts_a_blocked_call, .timeout = 20)
{
    struct silent s;
    amp_client *c = connect_silent(&s);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, wake_later, c), 0);
    amp_reply *reply = NULL;
    /* no timeout: without the wakeup this never returns */
    amp_err r = amp_client_call(c, "Hang", NULL, 0, 0, &reply);
    pthread_join(th, NULL);
    cr_assert_eq(r, AMP_E_CANCELLED, "%s", amp_strerror(r));
    cr_assert_not_null(reply);
    cr_assert_eq(reply->status, AMP_E_CANCELLED);
    amp_reply_free(reply);
    /* the call is gone, the connection is not */
    cr_assert_not_null(amp_client_conn(c));
    cr_assert_eq(amp_session_outstanding(amp_conn_session(amp_client_conn(c))), 0);
    /* the wakeup was used up: the next wait ends by its own timeout */
    r = amp_client_call(c, "Hang", NULL, 0, 0.2, &reply);
    cr_assert_eq(r, AMP_E_TIMEOUT, "%s", amp_strerror(r));
    amp_reply_free(reply);
    amp_client_free(c);
    close(s.fd);
}

Test(client_wakeup, a_wakeup_before_the_wait_ends_the_next_wait_only, .timeout = 20)
{
    struct silent s;
    amp_client *c = connect_silent(&s);
    pthread_t th;
    /* from another thread, finished before the call starts */
    cr_assert_eq(pthread_create(&th, NULL, wake_now, c), 0);
    pthread_join(th, NULL);
    amp_client_wakeup(c); /* two before a wait count as one */
    amp_client_step(c);   /* never blocks, and keeps the wakeup pending */
    amp_reply *reply = NULL;
    cr_assert_eq(amp_client_call(c, "Hang", NULL, 0, 0, &reply), AMP_E_CANCELLED);
    amp_reply_free(reply);
    cr_assert_eq(amp_client_call(c, "Hang", NULL, 0, 0.2, &reply), AMP_E_TIMEOUT);
    amp_reply_free(reply);
    amp_client_free(c);
    close(s.fd);
}

Test(client_wakeup, a_blocked_start_tls_returns_cancelled_and_closes, .timeout = 20)
{
    struct silent s;
    amp_client *c = connect_silent(&s);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, wake_later, c), 0);
    amp_tls_config tls;
    amp_tls_config_init(&tls);
    tls.insecure_skip_verify = 1;
    amp_err r = amp_client_start_tls(c, &tls, 60);
    pthread_join(th, NULL);
    cr_assert_eq(r, AMP_E_CANCELLED, "%s", amp_strerror(r));
    cr_assert_null(amp_client_conn(c)); /* a half-done StartTLS leaves no usable stream */
    cr_assert_str_eq(amp_client_error_text(c), "StartTLS interrupted by amp_client_wakeup()");
    amp_client_free(c);
    close(s.fd);
}
