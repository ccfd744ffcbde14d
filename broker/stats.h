/* The broker's statistics: the counters, the errors by code, amp.Stats and
 * the Prometheus text of the metrics endpoint (router_metrics, router.h).
 *
 * The counters are the one block every room writes to directly: a plain
 * increment where the thing happens (r->stats.calls_routed++), so counting
 * never costs a call. stats.c owns their names, help texts and order, and
 * reads the gauges (connections, commands, subscriptions, queued bytes)
 * from the rooms through their functions. Error codes are counted through
 * stats_error(), stats_relayed_error() and stats_close() only (reply.c does it for every error the
 * broker answers with).
 *
 * Loop thread only. Lives inside the router, from router_new to router_free. */
#ifndef AMP_BROKER_STATS_H
#define AMP_BROKER_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "amp/amp.h"

typedef struct router router;

/* The broker's own error codes (stats.c): the size of the table. */
#define STATS_BROKER_CODES 19
/* Connection close reasons are libamp's error codes (a small fixed set). */
#define STATS_CLOSE_REASONS 48

struct stats {
    double started; /* ev_now at router_new: uptime_seconds */
    amp_listener *const *listeners; /* the caller's; NULL entries skipped */
    int nlisteners;
    uint64_t connections_total, calls_routed, calls_answered, events_published,
        events_delivered, events_dropped, slow_consumers_disconnected,
        late_answers_dropped, answers_to_gone_callers, bytes_in_closed, bytes_out_closed,
        connections_refused, logins, logins_failed, denials, login_timeouts, calls_refused,
        protocol_errors, slow_connections_closed, registrations_refused,
        subscriptions_refused, answers_failed, logins_busy,
        logins_throttled, logins_over_user_cap, cert_identities_refused,
        credentials_revoked, budget_events_dropped, budget_calls_refused,
        budget_connections_closed, box_timeouts, metrics_refused, listener_shed_gone,
        password_checks;
    /* stats.c's: through the stats_ functions below */
    uint64_t codes[STATS_BROKER_CODES];
    uint64_t other_codes; /* relayed from providers, and anything unknown */
    struct {
        int reason;
        uint64_t n;
    } closes[STATS_CLOSE_REASONS];
};

void stats_init(router *r);
/* An error code answered: one of the broker's own is counted by name,
 * anything else (a provider's code) under "other". */
void stats_error(router *r, const uint8_t *code, size_t n);
/* An error relayed from a provider: counted under "other" whatever its
 * code, so no peer can take one of the broker's names. */
void stats_relayed_error(router *r);
/* A connection closed for this libamp error. */
void stats_close(router *r, int reason);
/* amp.Stats: every counter and the errors by code. */
void stats_reply(router *r, amp_request *req);

#endif
