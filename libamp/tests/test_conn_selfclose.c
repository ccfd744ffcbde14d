/* A session that closes itself closes its connection: a peer that sends
 * calls and never reads the answers fills the session's output up to the
 * hard cap; the answer that does not fit closes the session, and the
 * connection must then end with a reason instead of lingering. */
#include <criterion/criterion.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "amp/amp.h"

#define HARD_CAP (256 * 1024)
#define CALLS 200

struct server {
    struct ev_loop *loop;
    amp_conn *c;
    int closed, reason;
    char error[300];
    amp_request *held[CALLS];
    int nheld, answered, refused, dropped;
    int peer_fd;
};

static uint8_t big[60000];

static void answer_big(struct server *sv, amp_request *req)
{
    amp_pair p = {(const uint8_t *)"v", 1, big, sizeof big};
    amp_err r = amp_request_answer(req, &p, 1);
    if (r == AMP_OK)
        sv->answered++;
    else if (r == AMP_E_BACKPRESSURE)
        sv->refused++;
    else
        sv->dropped++; /* AMP_E_CLOSED: after the close */
}

static void big_now(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    answer_big(ud, req);
}

static void big_later(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    struct server *sv = ud;
    cr_assert(sv->nheld < CALLS);
    sv->held[sv->nheld++] = req;
}

static void on_closed(amp_conn *c, int reason, void *ud)
{
    struct server *sv = ud;
    sv->closed++;
    ev_break(sv->loop, EVBREAK_ALL);
    sv->reason = reason;
    strncpy(sv->error, amp_conn_error_text(c), sizeof sv->error - 1);
    sv->c = NULL;
}

static void give_up(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

/* Answers every held request from a timer: outside any callback of the
 * connection, as a broker answers when a provider's answer comes in. */
static void answer_held(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *sv = w->data;
    for (int i = 0; i < sv->nheld; i++)
        answer_big(sv, sv->held[i]);
    sv->nheld = 0;
}

static void run(struct server *sv, amp_responder_cb responder)
{
    memset(sv, 0, sizeof *sv);
    signal(SIGPIPE, SIG_IGN);
    sv->loop = ev_loop_new(EVFLAG_AUTO);
    int sp[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    int small = 16384;
    setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sp[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sv->peer_fd = sp[1];
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.output_high_water = HARD_CAP / 2;
    cfg.output_hard_cap = HARD_CAP;
    cfg.callbacks.closed = on_closed;
    cfg.user_data = sv;
    cr_assert_eq(amp_conn_adopt(sv->loop, sp[0], &cfg, &sv->c), AMP_OK);
    amp_session_serve_str(amp_conn_session(sv->c), "Big", responder, sv);

    /* the peer: CALLS calls in one write, then it never reads */
    amp_buf calls;
    amp_buf_init(&calls);
    for (int i = 1; i <= CALLS; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "%x", i);
        amp_encode_pair_str(&calls, "_ask", tag);
        amp_encode_pair_str(&calls, "_command", "Big");
        amp_encode_end(&calls);
    }
    cr_assert_eq(write(sv->peer_fd, calls.data, calls.len), (ssize_t)calls.len);
    amp_buf_free(&calls);

    ev_timer later, limit;
    ev_timer_init(&later, answer_held, 0.2, 0);
    later.data = sv;
    ev_timer_start(sv->loop, &later);
    ev_timer_init(&limit, give_up, 20, 0); /* only a failsafe: the test is structural */
    ev_timer_start(sv->loop, &limit);
    ev_run(sv->loop, 0);
    ev_timer_stop(sv->loop, &later);
    ev_timer_stop(sv->loop, &limit);
}

static void finish(struct server *sv)
{
    if (sv->c)
        amp_conn_abort(sv->c);
    for (int i = 0; i < sv->nheld; i++)
        amp_request_answer(sv->held[i], NULL, 0);
    close(sv->peer_fd);
    ev_loop_destroy(sv->loop);
}

static void check_closed_for_backpressure(struct server *sv)
{
    cr_assert_eq(sv->closed, 1, "the connection was not closed (%d answers queued, %d refused)",
                 sv->answered, sv->refused);
    cr_assert_eq(sv->reason, AMP_E_BACKPRESSURE, "reason %d", sv->reason);
    cr_assert(strstr(sv->error, "session closed"), "error text: %s", sv->error);
    cr_assert_eq(sv->refused, 1, "the answer over the cap closed it");
    cr_assert(sv->answered * sizeof big < HARD_CAP + 4 * 65536 + 65536,
              "%d answers queued", sv->answered);
}

Test(conn_selfclose, answer_over_the_hard_cap_while_reading)
{
    struct server sv;
    run(&sv, big_now);
    check_closed_for_backpressure(&sv);
    finish(&sv);
}

Test(conn_selfclose, answer_over_the_hard_cap_from_outside_a_callback)
{
    struct server sv;
    run(&sv, big_later);
    check_closed_for_backpressure(&sv);
    finish(&sv);
}
