/* A connection's clocks, all on CLOCK_MONOTONIC (libev's timers run on its
 * monotonic clock too): call deadlines, the incomplete-box timeout, and the
 * connect or handshake timeout. */
#include <ev.h>
#include <time.h>

#include "conn_internal.h"

uint64_t amp__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void amp__timer_start_fresh(struct ev_loop *loop, ev_timer *t, double after)
{
    ev_now_update(loop); /* libev counts `after` from the loop's cached time */
    ev_timer_stop(loop, t);
    ev_timer_set(t, after > 0 ? after : 0, 0);
    ev_timer_start(loop, t);
}

/* ---- call deadlines ---------------------------------------------------------- */

void amp__conn_arm_call_timer(amp_conn *c)
{
    uint64_t deadline;
    if (c->state == CONN_CLOSED || !amp_session_next_deadline(c->s, &deadline)) {
        ev_timer_stop(c->loop, &c->timer);
        c->timer_armed = 0;
        return;
    }
    if (c->timer_armed && c->armed_deadline <= deadline)
        return; /* fires early enough; it re-arms itself */
    uint64_t now = amp__now_ms();
    amp__timer_start_fresh(c->loop, &c->timer,
                           deadline > now ? (double)(deadline - now) / 1000.0 : 0);
    c->timer_armed = 1;
    c->armed_deadline = deadline;
}

static void call_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    amp_conn *c = w->data;
    amp__conn_enter(c);
    c->timer_armed = 0;
    amp_session_expire(c->s, amp__now_ms() + 1);
    amp__conn_arm_call_timer(c);
    amp__conn_leave(c);
}

/* ---- incomplete boxes ---------------------------------------------------------- */

/* A box that has started arriving must be complete within box_timeout of
 * its first byte. The clock belongs to the box, not to the bytes: a peer
 * trickling one byte at a time (slowloris) does not extend it, and the
 * memory the partial box pins is released when it fires. */
void amp__conn_watch_partial_box(amp_conn *c)
{
    if (c->box_timeout <= 0)
        return;
    size_t pending = amp_session_input_pending(c->s);
    if (!pending || c->state != CONN_OPEN || amp_session_is_closed(c->s)) {
        /* complete, or no longer reading: a close under way keeps its reason */
        ev_timer_stop(c->loop, &c->box_timer);
        return;
    }
    uint64_t start = c->bytes_in - pending; /* the partial box's first byte */
    if (ev_is_active(&c->box_timer) && start == c->box_start)
        return; /* the same box: its clock keeps running */
    c->box_start = start;
    ev_timer_stop(c->loop, &c->box_timer);
    ev_timer_set(&c->box_timer, c->box_timeout, 0);
    ev_timer_start(c->loop, &c->box_timer);
}

static void box_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    amp_conn *c = w->data;
    amp__conn_enter(c);
    amp__conn_set_error(c, "%s", "incomplete box timed out");
    amp__conn_finish(c, AMP_E_TIMEOUT);
    amp__conn_leave(c);
}

/* ---- connecting and handshakes -------------------------------------------------- */

static void connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    amp_conn *c = w->data;
    amp__conn_enter(c);
    if (c->lookup) {
        amp__conn_set_error(c, "cannot resolve %s: timed out", c->connect_host);
        amp__conn_finish(c, AMP_E_RESOLVE);
    } else if (c->state == CONN_HANDSHAKE) {
        amp__conn_transport_failed(c, AMP__OP_HANDSHAKE_TIMEOUT);
    } else {
        amp__conn_set_error(c, "%s", "connection timed out");
        amp__conn_finish(c, AMP_E_CONNECT);
    }
    amp__conn_leave(c);
}

void amp__conn_deadline_start(amp_conn *c, double seconds)
{
    amp__timer_start_fresh(c->loop, &c->connect_timer, seconds);
}

void amp__conn_timers_init(amp_conn *c)
{
    ev_init(&c->timer, call_timer_cb);
    c->timer.data = c;
    ev_init(&c->box_timer, box_timer_cb);
    c->box_timer.data = c;
    ev_init(&c->connect_timer, connect_timeout_cb);
    c->connect_timer.data = c;
}

void amp__conn_timers_stop(amp_conn *c)
{
    ev_timer_stop(c->loop, &c->timer);
    ev_timer_stop(c->loop, &c->connect_timer);
    ev_timer_stop(c->loop, &c->box_timer);
}
