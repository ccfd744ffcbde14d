/* amp-cli: the blocking client of conn_opts (amp_client, with its private
 * loop) driven from a libev loop of ours, through its foreign-loop
 * interface: its socket is watched here and amp_client_step() runs it
 * before our loop blocks, so a verb can wait for the broker, children and
 * signals in one place.
 *
 * Contract: one thread. Callbacks of the client's session (responders,
 * call results) run from inside our loop's prepare phase. Answers and
 * calls made from any of our callbacks are written before the loop blocks
 * again. */
#ifndef AMP_CLI_CLIENT_LOOP_H
#define AMP_CLI_CLIENT_LOOP_H

#include <ev.h>

#include "amp/amp.h"

typedef struct client_loop client_loop;
/* The connection is gone: amp_client_conn() is NULL now. The watchers are
 * stopped already; client_loop_stop() is still safe. */
typedef void (*client_lost_cb)(client_loop *cw, void *user_data);

struct client_loop {
    struct ev_loop *loop;
    amp_client *cl;
    client_lost_cb lost;
    void *user_data;
    ev_io io;
    ev_prepare prep;
    ev_timer timer;
};

/* Start watching; `cw` must stay put until client_loop_stop(). */
void client_loop_start(client_loop *cw, struct ev_loop *loop, amp_client *cl,
                       client_lost_cb lost, void *user_data);
void client_loop_stop(client_loop *cw);
/* Does the connection still have bytes to write? */
int client_loop_output_pending(amp_client *cl);
/* Write what is queued, waiting at most `seconds` for the socket. */
void client_loop_flush(amp_client *cl, double seconds);

#endif
