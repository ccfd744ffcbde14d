/* The connection state machine around an amp_session: session events,
 * reading into the session, writing its output, closing, and a free that
 * waits until no callback of ours is on the stack. The bytes go through the
 * connection's transport (transport.h); connecting is connect.c, timers
 * conn_timers.c, TLS and StartTLS transport_tls.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "amp/conn.h"
#include "conn_internal.h"
#include "resolve.h"

#define READ_CHUNK 65536
#define READS_PER_EVENT 16 /* fairness between connections */

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents);
static void handle_read(amp_conn *c);
static void flush(amp_conn *c);
static void finish(amp_conn *c, int reason);

/* ---- lifetime ------------------------------------------------------------ */

void amp__conn_enter(amp_conn *c)
{
    c->depth++;
}

static void really_free(amp_conn *c)
{
    if (c->user_data_free)
        c->user_data_free(c->user_data);
    c->t->ops->free(c->t);
    amp__tls_plans_free(c);
    free(c->connect_host);
    if (c->addrs)
        freeaddrinfo(c->addrs);
    amp_session_free(c->s);
    free(c);
}

void amp__conn_free_unused(amp_conn *c)
{
    c->user_data_free = NULL; /* failed creation: the caller keeps user_data */
    amp__conn_timers_stop(c);
    really_free(c);
}

void amp__conn_leave(amp_conn *c)
{
    if (c->depth == 1 && c->finish_pending && c->state != CONN_CLOSED) {
        c->finish_pending = 0;
        finish(c, c->finish_reason); /* at depth 1: its callbacks nest safely */
    }
    if (--c->depth > 0)
        return;
    if (c->state == CONN_CLOSED)
        really_free(c);
}

void amp__conn_set_error(amp_conn *c, const char *fmt, const char *detail)
{
    if (!c->error[0])
        snprintf(c->error, sizeof c->error, fmt, detail);
}

/* Tear down: stop watchers, close the socket, complete every call, report. */
static void finish(amp_conn *c, int reason)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->depth > 1) { /* inside our own callbacks: do it on the way out */
        c->finish_pending = 1;
        if (!c->finish_reason)
            c->finish_reason = reason;
        /* but stop the conversation now: no more dispatching */
        amp_session_close(c->s, AMP_E_CLOSED);
        return;
    }
    c->state = CONN_CLOSED;
    amp__lookup_cancel(c->lookup);
    c->lookup = NULL;
    ev_io_stop(c->loop, &c->rio);
    ev_io_stop(c->loop, &c->wio);
    ev_prepare_stop(c->loop, &c->prep);
    amp__conn_timers_stop(c);
    if (c->t->fd >= 0) { /* the transport, borrowing it, is freed with c */
        close(c->t->fd);
        c->t->fd = -1;
    }
    amp_session_close(c->s, AMP_E_CLOSED);
    if (c->cb.closed)
        c->cb.closed(c, reason, c->user_data);
}

void amp__conn_finish(amp_conn *c, int reason)
{
    finish(c, reason);
}

void amp__conn_transport_failed(amp_conn *c, enum amp__io_op op)
{
    char buf[300];
    amp_err reason = c->t->ops->failure(c->t, op, buf, sizeof buf);
    amp__conn_set_error(c, "%s", buf);
    finish(c, reason);
}

/* ---- session events -------------------------------------------------------- */

/* Stop reading; write what is queued; then close. */
static void begin_closing(amp_conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_HANDSHAKE) {
        c->closing_after_handshake = 1;
        return;
    }
    c->state = CONN_CLOSING;
    ev_io_stop(c->loop, &c->rio);
    ev_timer_stop(c->loop, &c->box_timer); /* no more input to wait for */
    ev_prepare_start(c->loop, &c->prep);
}

static void ev_protocol_error(amp_session *s, int err, uint64_t off, void *ud)
{
    amp_conn *c = ud;
    char what[128];
    snprintf(what, sizeof what, "%s at stream offset %llu", amp_strerror(err),
             (unsigned long long)off);
    amp__conn_set_error(c, "protocol error: %s", what);
    c->finish_reason = err;
    begin_closing(c);
}

static void ev_backpressure(amp_session *s, int over, void *ud)
{
    amp_conn *c = ud;
    if (c->cb.backpressure)
        c->cb.backpressure(c, over, c->user_data);
}

static void ev_close_after_flush(amp_session *s, void *ud)
{
    begin_closing(ud);
}

/* Our StartTLS call was answered: TLS starts now. */
static void ev_start_tls(amp_session *s, void *ud)
{
    amp_conn *c = ud;
    if (amp__tls_client_begin(c)) {
        amp__conn_set_error(c, "%s", "StartTLS: cannot start TLS");
        c->finish_pending = 1;
        c->finish_reason = AMP_E_TLS;
    }
}

static void ev_output_ready(amp_session *s, void *ud)
{
    amp_conn *c = ud;
    if (c->state != CONN_CLOSED)
        ev_prepare_start(c->loop, &c->prep);
}

/* The session closed itself: the connection ends with its reason. An answer
 * over the hard cap means the peer does not read: drop the output and close
 * at once (after our callbacks, or from the prepare watcher), since waiting
 * for a flush would keep the connection forever. */
static void ev_closed(amp_session *s, int reason, void *ud)
{
    amp_conn *c = ud;
    if (c->state == CONN_CLOSED)
        return;
    if (reason != AMP_E_CLOSED) { /* AMP_E_CLOSED: a fatal error, already closing */
        amp__conn_set_error(c, "session closed: %s", amp_strerror(reason));
        if (!c->finish_reason)
            c->finish_reason = reason;
    }
    if (reason == AMP_E_BACKPRESSURE) {
        c->finish_pending = 1;
        ev_io_stop(c->loop, &c->rio);
        ev_prepare_start(c->loop, &c->prep);
        return;
    }
    begin_closing(c);
}

static const amp_session_events session_events = {
    ev_protocol_error, ev_backpressure, ev_close_after_flush, ev_start_tls, ev_output_ready,
    ev_closed,
};

/* ---- creation ---------------------------------------------------------------- */

amp_conn *amp__conn_new(struct ev_loop *loop, amp__transport *t, const amp_conn_config *cfg)
{
    if (!t)
        return NULL;
    amp_conn *c = calloc(1, sizeof *c);
    if (!c) {
        t->ops->free(t);
        return NULL;
    }
    c->loop = loop;
    c->t = t;
    c->state = CONN_OPEN;
    c->handshake_timeout = 10;
    if (cfg) {
        c->cb = cfg->callbacks;
        c->user_data = cfg->user_data;
        c->user_data_free = cfg->user_data_free;
        if (cfg->handshake_timeout > 0)
            c->handshake_timeout = cfg->handshake_timeout;
        if (cfg->box_timeout > 0)
            c->box_timeout = cfg->box_timeout;
    }
    amp_session_config scfg;
    memset(&scfg, 0, sizeof scfg);
    if (cfg) {
        scfg.limits = cfg->limits;
        scfg.output_high_water = cfg->output_high_water;
        scfg.output_hard_cap = cfg->output_hard_cap;
        scfg.usage = cfg->usage;
    }
    scfg.events = &session_events;
    scfg.user_data = c;
    if (amp_session_new(&c->s, &scfg) != AMP_OK) {
        t->ops->free(t);
        free(c);
        return NULL;
    }
    ev_io_init(&c->rio, conn_io_cb, t->fd, EV_READ);
    ev_io_init(&c->wio, conn_io_cb, t->fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    ev_prepare_init(&c->prep, conn_prepare_cb);
    c->prep.data = c;
    amp__conn_timers_init(c);
    return c;
}

int amp__conn_accepted(amp_conn *c, SSL_CTX *ctx)
{
    if (ctx) { /* a peer that never completes the handshake is closed */
        amp__conn_deadline_start(c, c->handshake_timeout);
        return amp__tls_start(c, ctx, 1);
    }
    c->ready_reported = 1;
    ev_io_start(c->loop, &c->rio);
    return 0;
}

void amp__conn_set_transport(amp_conn *c, amp__transport *t)
{
    c->t->ops->free(c->t);
    c->t = t;
    if (!t->ops->handshake)
        return;
    c->state = CONN_HANDSHAKE;
    ev_io_start(c->loop, &c->rio);
    ev_io_start(c->loop, &c->wio); /* the first flight goes out at once */
}

/* ---- handshake ------------------------------------------------------------- */

void amp__conn_report_ready(amp_conn *c)
{
    if (!c->ready_reported) {
        c->ready_reported = 1;
        ev_timer_stop(c->loop, &c->connect_timer);
        if (c->cb.ready)
            c->cb.ready(c, c->user_data);
    }
}

static void handshake(amp_conn *c)
{
    int r = c->t->ops->handshake(c->t);
    if (r == AMP__IO_DONE) {
        c->state = c->closing_after_handshake ? CONN_CLOSING : CONN_OPEN;
        ev_io_stop(c->loop, &c->wio);
        amp__conn_report_ready(c);
        if (c->state != CONN_CLOSED) {
            flush(c);
            if (c->state != CONN_CLOSED && c->t->ops->pending && c->t->ops->pending(c->t))
                handle_read(c);
        }
        return;
    }
    if (r == AMP__IO_AGAIN) {
        ev_io_stop(c->loop, &c->wio);
        return;
    }
    if (r == AMP__IO_WANT_WRITE) {
        ev_io_start(c->loop, &c->wio);
        return;
    }
    amp__conn_transport_failed(c, AMP__OP_HANDSHAKE);
}

/* ---- reading ------------------------------------------------------------------ */

static void handle_read(amp_conn *c)
{
    static __thread uint8_t buf[READ_CHUNK];
    for (int i = 0; i < READS_PER_EVENT && c->state == CONN_OPEN && !c->finish_pending; i++) {
        ssize_t n = c->t->ops->read(c->t, buf, sizeof buf);
        if (n == AMP__IO_AGAIN)
            break;
        if (n == AMP__IO_WANT_WRITE) {
            ev_io_start(c->loop, &c->wio);
            break;
        }
        if (n == 0) {
            finish(c, AMP_E_CLOSED);
            return;
        }
        if (n < 0) {
            amp__conn_transport_failed(c, AMP__OP_READ);
            return;
        }
        c->bytes_in += (size_t)n;
        amp_err fed = amp_session_feed(c->s, buf, (size_t)n);
        amp__conn_watch_partial_box(c);
        if (fed != AMP_OK) {
            /* the session is closed: its event began closing, else do it here */
            if (c->state == CONN_OPEN && !c->finish_pending) {
                amp__conn_set_error(c, "%s", "session closed");
                begin_closing(c);
            }
            break;
        }
        if (c->tls_mark) /* the rest of the stream is TLS: stop reading plaintext */
            break;
        if ((size_t)n < sizeof buf && !(c->t->ops->pending && c->t->ops->pending(c->t)))
            break;
    }
    if (c->state != CONN_CLOSED && !c->finish_pending)
        flush(c);
}

/* ---- writing -------------------------------------------------------------------- */

static void flush(amp_conn *c)
{
    while (c->state == CONN_OPEN || c->state == CONN_CLOSING) {
        const uint8_t *p;
        size_t n;
        amp_session_output(c->s, &p, &n);
        if (c->tls_mark) { /* plaintext only up to the StartTLS answer */
            uint64_t start = amp_session_output_total(c->s) - n;
            if (start >= c->tls_mark) {
                amp__tls_server_begin(c);
                return;
            }
            if (start + n > c->tls_mark)
                n = (size_t)(c->tls_mark - start);
        }
        if (n == 0)
            break;
        ssize_t w = c->t->ops->write(c->t, p, n);
        if (w == AMP__IO_AGAIN || w == AMP__IO_WANT_WRITE) {
            ev_io_start(c->loop, &c->wio);
            return;
        }
        if (w < 0) {
            amp__conn_transport_failed(c, AMP__OP_WRITE);
            return;
        }
        c->bytes_out += (size_t)w;
        amp_session_consume(c->s, (size_t)w);
    }
    if (c->state != CONN_OPEN && c->state != CONN_CLOSING)
        return; /* closed, or a handshake now owns the watchers */
    ev_io_stop(c->loop, &c->wio);
    if (c->state == CONN_CLOSING) {
        if (c->t->ops->shutdown)
            c->t->ops->shutdown(c->t);
        finish(c, c->finish_reason ? c->finish_reason : AMP_E_CLOSED);
    }
}

void amp__conn_flush(amp_conn *c)
{
    flush(c);
}

/* ---- watchers -------------------------------------------------------------------- */

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    amp_conn *c = w->data;
    amp__conn_enter(c);
    switch (c->state) {
    case CONN_CONNECTING:
        amp__conn_connected(c);
        break;
    case CONN_HANDSHAKE:
        handshake(c);
        break;
    case CONN_OPEN:
        if (revents & EV_READ)
            handle_read(c);
        if ((revents & EV_WRITE) && c->state != CONN_CLOSED)
            flush(c);
        break;
    case CONN_CLOSING:
        flush(c);
        break;
    case CONN_CLOSED:
        break;
    }
    amp__conn_leave(c);
}

static void conn_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    amp_conn *c = w->data;
    amp__conn_enter(c);
    ev_prepare_stop(loop, w);
    if (c->state == CONN_OPEN || c->state == CONN_CLOSING)
        flush(c);
    amp__conn_leave(c);
}

/* ---- closing ----------------------------------------------------------------------- */

void amp_conn_close(amp_conn *c)
{
    if (!c || c->state == CONN_CLOSED)
        return;
    amp__conn_enter(c);
    if (c->state == CONN_CONNECTING)
        finish(c, AMP_E_CLOSED);
    else
        begin_closing(c);
    amp__conn_leave(c);
}

void amp_conn_abort(amp_conn *c)
{
    if (!c || c->state == CONN_CLOSED)
        return;
    amp__conn_enter(c);
    finish(c, AMP_E_CLOSED);
    amp__conn_leave(c);
}
