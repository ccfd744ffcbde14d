/* The blocking client: a private loop run until the awaited thing happens,
 * or until amp_client_wakeup() (an ev_async: the one thing another thread
 * may do to a client) interrupts the wait. */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/client.h"
#include "conn_internal.h"

struct amp_client {
    struct ev_loop *loop;
    amp_conn *conn;   /* NULL once closed */
    ev_async wake;    /* amp_client_wakeup() sends it, from any thread */
    int woken;        /* a wakeup arrived, not yet used to end a wait */
    int ready;
    int closed_reason;
    char error[300];
};

void amp_reply_free(amp_reply *r)
{
    free(r);
}

amp_err amp_reply_from_result(const amp_result *r, amp_reply **out)
{
    size_t count = r->box ? r->box->count : 0, bytes = 0;
    for (size_t i = 0; i < count; i++)
        bytes += r->box->pairs[i].key_len + r->box->pairs[i].value_len;
    /* one allocation: the struct, the pairs, then the bytes */
    amp_reply *rep = malloc(sizeof *rep + count * sizeof(amp_pair) + bytes + 1);
    if (!rep)
        return AMP_E_NOMEM;
    amp_pair *pairs = (amp_pair *)(rep + 1);
    uint8_t *mem = (uint8_t *)(pairs + count);
    rep->status = r->status;
    rep->error_code = rep->error_description = NULL;
    for (size_t i = 0; i < count; i++) {
        const amp_pair *p = &r->box->pairs[i];
        memcpy(mem, p->key, p->key_len);
        pairs[i].key = mem;
        pairs[i].key_len = p->key_len;
        mem += p->key_len;
        if (p->value_len)
            memcpy(mem, p->value, p->value_len);
        pairs[i].value = mem;
        pairs[i].value_len = p->value_len;
        mem += p->value_len;
        if (p == r->error_code)
            rep->error_code = &pairs[i];
        if (p == r->error_description)
            rep->error_description = &pairs[i];
    }
    rep->box.pairs = pairs;
    rep->box.count = count;
    rep->box.wire_len = r->box ? r->box->wire_len : 0;
    *out = rep;
    return AMP_OK;
}

static void on_ready(amp_conn *conn, void *ud)
{
    ((amp_client *)ud)->ready = 1;
}

static void on_closed(amp_conn *conn, int reason, void *ud)
{
    amp_client *c = ud;
    c->closed_reason = reason ? reason : AMP_E_CLOSED;
    snprintf(c->error, sizeof c->error, "%s", amp_conn_error_text(conn));
    c->conn = NULL;
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    *(int *)w->data = 1;
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    ((amp_client *)w->data)->woken = 1;
}

/* One wakeup ends one wait: this one if it is still waiting, else it is
 * absorbed by a wait that ended anyway. */
static int take_wakeup(amp_client *c, int finished)
{
    if (!c->woken)
        return 0;
    c->woken = 0;
    return !finished;
}

/* Run the loop until *flag is set, the connection closes, `timeout`, or a
 * wakeup: 0, 2, 1 or 3. */
static int run_until(amp_client *c, const int *flag, double timeout)
{
    int expired = 0;
    ev_timer t;
    ev_init(&t, on_timeout);
    t.data = &expired;
    if (timeout > 0)
        amp__timer_start_fresh(c->loop, &t, timeout);
    while (!*flag && !expired && c->conn && !c->woken)
        ev_run(c->loop, EVRUN_ONCE);
    ev_timer_stop(c->loop, &t);
    if (take_wakeup(c, *flag || expired || !c->conn))
        return 3;
    return *flag ? 0 : expired ? 1 : 2;
}

amp_err amp_client_connect(amp_client **out, const char *endpoint, double timeout, char *err,
                           size_t err_len)
{
    if (!out || !endpoint)
        return AMP_E_INVALID;
    *out = NULL;
    amp_endpoint ep;
    amp_err r = amp_endpoint_parse(endpoint, 0, &ep, err, err_len);
    if (r != AMP_OK)
        return r;
    r = amp_client_connect_endpoint(out, &ep, timeout, err, err_len);
    amp_endpoint_free(&ep);
    return r;
}

amp_err amp_client_connect_endpoint(amp_client **out, const amp_endpoint *ep, double timeout,
                                    char *err, size_t err_len)
{
    if (!out || !ep)
        return AMP_E_INVALID;
    *out = NULL;
    amp_client *c = calloc(1, sizeof *c);
    if (!c)
        return AMP_E_NOMEM;
    c->loop = ev_loop_new(EVFLAG_AUTO);
    if (!c->loop) {
        free(c);
        return AMP_E_NOMEM;
    }
    ev_async_init(&c->wake, on_wake);
    c->wake.data = c;
    ev_async_start(c->loop, &c->wake);
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.callbacks.ready = on_ready;
    cfg.callbacks.closed = on_closed;
    cfg.user_data = c;
    amp_err r = amp_connect_endpoint(c->loop, ep, &cfg, &c->conn, err, err_len);
    if (r != AMP_OK) {
        ev_async_stop(c->loop, &c->wake);
        ev_loop_destroy(c->loop);
        free(c);
        return r;
    }
    int outcome = run_until(c, &c->ready, timeout);
    if (outcome != 0) {
        if (err && err_len)
            snprintf(err, err_len, "%s", outcome == 1 ? "connection timed out" : c->error);
        r = outcome == 1 ? AMP_E_TIMEOUT : c->closed_reason ? c->closed_reason : AMP_E_CANCELLED;
        amp_client_free(c);
        return r;
    }
    *out = c;
    return AMP_OK;
}

struct wait {
    int done;
    amp_reply *reply;
    amp_err alloc;
};

static void on_result(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    struct wait *w = ud;
    w->done = 1;
    w->alloc = amp_reply_from_result(r, &w->reply);
}

amp_err amp_client_call(amp_client *c, const char *command, const amp_pair *args, size_t n,
                        double timeout, amp_reply **reply)
{
    if (!c || !reply)
        return AMP_E_INVALID;
    *reply = NULL;
    if (!c->conn)
        return AMP_E_CLOSED;
    struct wait w = {0, NULL, AMP_OK};
    uint64_t id;
    amp_err r = amp_conn_call(c->conn, command, args, n, timeout, on_result, &w, &id);
    if (r != AMP_OK)
        return r;
    /* the call's own deadline ends the wait, or a wakeup: then the call is
     * cancelled now (completing with AMP_E_CANCELLED into `w`, on this
     * stack, while it is alive; a late answer is dropped) */
    if (run_until(c, &w.done, 0) == 3 && !w.done)
        amp_session_cancel(amp_conn_session(c->conn), id);
    if (!w.done) /* cannot happen: closing completes every call */
        return AMP_E_CLOSED;
    if (w.alloc != AMP_OK)
        return w.alloc;
    *reply = w.reply;
    return (amp_err)w.reply->status;
}

static void on_tls_answer(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    struct wait *w = ud;
    w->alloc = (amp_err)r->status;
    w->done = r->status != AMP_OK; /* on success, wait for the handshake */
}

amp_err amp_client_start_tls(amp_client *c, const amp_tls_config *tls, double timeout)
{
    if (!c || !tls)
        return AMP_E_INVALID;
    if (!c->conn)
        return AMP_E_CLOSED;
    struct wait w = {0, NULL, AMP_OK};
    amp_err r = amp_conn_start_tls(c->conn, tls, on_tls_answer, &w);
    if (r != AMP_OK)
        return r;
    /* done when the answer was an error, or TLS is up */
    int expired = 0;
    ev_timer t;
    ev_init(&t, on_timeout);
    t.data = &expired;
    amp__timer_start_fresh(c->loop, &t, timeout > 0 ? timeout : 30);
    while (!w.done && !expired && c->conn && !amp_conn_is_tls(c->conn) && !c->woken)
        ev_run(c->loop, EVRUN_ONCE);
    ev_timer_stop(c->loop, &t);
    int woken = take_wakeup(c, w.done || !c->conn || amp_conn_is_tls(c->conn));
    if (!w.done && c->conn && !amp_conn_is_tls(c->conn)) {
        /* Timed out or woken with the StartTLS call outstanding (its
         * callback points at `w`, on this stack) or the handshake half
         * done: the stream is in no state to use, and a late answer must
         * not reach this frame. Aborting completes the call now, while `w`
         * is still alive. */
        amp_conn_abort(c->conn);
        snprintf(c->error, sizeof c->error, "%s",
                 woken ? "StartTLS interrupted by amp_client_wakeup()" : "StartTLS timed out");
        return woken ? AMP_E_CANCELLED : AMP_E_TIMEOUT;
    }
    if (w.done)
        return w.alloc;
    if (!c->conn)
        return c->closed_reason;
    return AMP_OK;
}

amp_conn *amp_client_conn(amp_client *c)
{
    return c ? c->conn : NULL;
}

const char *amp_client_error_text(const amp_client *c)
{
    return c->conn ? amp_conn_error_text(c->conn) : c->error;
}

void amp_client_free(amp_client *c)
{
    if (!c)
        return;
    if (c->conn) {
        /* an orderly close: what is written out now goes, then TLS's
         * close_notify (so the peer sees a close, not a cut connection);
         * one turn of the loop, no waiting for a slow peer */
        amp_conn_close(c->conn);
        if (c->conn)
            ev_run(c->loop, EVRUN_NOWAIT);
    }
    if (c->conn)
        amp_conn_abort(c->conn); /* runs on_closed, which clears c->conn */
    ev_async_stop(c->loop, &c->wake);
    ev_loop_destroy(c->loop);
    free(c);
}

int amp_client_fd(const amp_client *c)
{
    return c->conn ? amp_conn_fd(c->conn) : -1;
}

void amp_client_wakeup(amp_client *c)
{
    if (c)
        ev_async_send(c->loop, &c->wake); /* thread- and signal-safe */
}

void amp_client_step(amp_client *c)
{
    ev_run(c->loop, EVRUN_NOWAIT);
}

double amp_client_timeout(const amp_client *c)
{
    if (!c->conn)
        return -1;
    uint64_t deadline;
    if (!amp_session_next_deadline(c->conn->s, &deadline))
        return -1;
    uint64_t now = amp__now_ms(); /* the clock of the deadlines */
    return deadline > now ? (double)(deadline - now) / 1000.0 : 0;
}
