/* amp-cli: an amp_client driven from a libev loop (see client_loop.h). */
#include "client_loop.h"

#include <stdint.h>

int client_loop_output_pending(amp_client *cl)
{
    amp_conn *c = amp_client_conn(cl);
    const uint8_t *p;
    size_t n = 0;
    if (c)
        amp_session_output(amp_conn_session(c), &p, &n);
    return n > 0;
}

/* Before the loop blocks: run the client (dispatch what arrived, write what
 * was answered; a second step writes what the first one's callbacks
 * queued), then watch its socket for what it needs next: reading always,
 * writing while output waits, and its next call deadline. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    client_loop *cw = w->data;
    amp_client_step(cw->cl);
    if (amp_client_conn(cw->cl))
        amp_client_step(cw->cl);
    if (!amp_client_conn(cw->cl)) {
        client_loop_stop(cw);
        cw->lost(cw, cw->user_data);
        return;
    }
    int events = EV_READ | (client_loop_output_pending(cw->cl) ? EV_WRITE : 0);
    if (!ev_is_active(&cw->io) || (cw->io.events & (EV_READ | EV_WRITE)) != events) {
        ev_io_stop(loop, &cw->io);
        ev_io_set(&cw->io, amp_client_fd(cw->cl), events);
        ev_io_start(loop, &cw->io);
    }
    double t = amp_client_timeout(cw->cl);
    ev_timer_stop(loop, &cw->timer);
    if (t >= 0) {
        ev_timer_set(&cw->timer, t, 0);
        ev_timer_start(loop, &cw->timer);
    }
}

/* Readable, writable, or a deadline of the client: the loop wakes up, and
 * the prepare watcher does the work before it blocks again. */
static void on_wake_io(struct ev_loop *loop, ev_io *w, int revents)
{
}

static void on_wake_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
}

void client_loop_start(client_loop *cw, struct ev_loop *loop, amp_client *cl,
                       client_lost_cb lost, void *user_data)
{
    cw->loop = loop;
    cw->cl = cl;
    cw->lost = lost;
    cw->user_data = user_data;
    ev_io_init(&cw->io, on_wake_io, amp_client_fd(cl), EV_READ);
    ev_prepare_init(&cw->prep, on_prepare);
    ev_timer_init(&cw->timer, on_wake_timer, 0, 0);
    cw->prep.data = cw;
    ev_io_start(loop, &cw->io);
    ev_prepare_start(loop, &cw->prep);
}

void client_loop_stop(client_loop *cw)
{
    ev_io_stop(cw->loop, &cw->io);
    ev_prepare_stop(cw->loop, &cw->prep);
    ev_timer_stop(cw->loop, &cw->timer);
}

void client_loop_flush(amp_client *cl, double seconds)
{
    ev_tstamp until = ev_time() + seconds;
    while (amp_client_conn(cl) && client_loop_output_pending(cl) && ev_time() < until) {
        amp_client_step(cl);
        if (client_loop_output_pending(cl))
            ev_sleep(0.01);
    }
    amp_client_step(cl);
}
