/* Output and memory held across connections: the budget for queued bytes
 * (max_queued_bytes: unsent output, partial input boxes and unanswered
 * calls of every session together) and the soft cap on one connection's
 * unsent output (output_soft_cap held for output_soft_seconds).
 *
 * Rooms ask budget_over() before queuing something that the budget could
 * refuse (an event, a routed call); a refusal is noted, and before the loop
 * sleeps the connections holding the most (the owner holding the most
 * first, owner.h) are closed until the total is under three quarters of the
 * budget. The soft-cap timer closes a connection whose output stays over the
 * cap. Both close with amp_conn_abort(), from their own watchers, never from
 * inside another room's call.
 *
 * Loop thread only. budget_start (router_new) to budget_stop (router_free). */
#ifndef AMP_BROKER_BUDGET_H
#define AMP_BROKER_BUDGET_H

#include <ev.h>
#include <stddef.h>

#include "amp/amp.h"

typedef struct router router;

/* budget.c's state; other rooms use the functions below. */
struct budget {
    amp_usage usage;    /* what every session holds (router_usage) */
    ev_prepare watch;   /* before the loop sleeps: over the budget? */
    int hit;            /* something was refused for the budget */
    ev_timer soft_cap_timer;
};

/* budget.c's part of each peer. */
struct peer_budget {
    double over_soft_since; /* when its output went over the soft cap; 0: not */
};

/* Start the watchers the configuration asks for; stop them. */
void budget_start(router *r);
void budget_stop(router *r);
/* Bytes held now against max_queued_bytes. */
size_t budget_queued(const router *r);
/* 1 if queuing `more` bytes would go over max_queued_bytes (noted: the
 * connections holding the most are closed before the loop sleeps). */
int budget_over(router *r, size_t more);

#endif
