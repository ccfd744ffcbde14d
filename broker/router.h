/* The bus: registrations, routed calls, events, logins, introspection. One
 * router per broker; every accepted connection is a peer of it.
 *
 * Who calls it: the daemon (main.c: listeners, signals, reloads), the
 * metrics endpoint (metrics.c: router_metrics) and fuzz_broker. Inside, it
 * is a dispatch (router.c) and rooms, one job each: registry.h (commands and
 * routed calls), pubsub.h (subscriptions and events), login.h (logins and
 * the ACL), stats.h (counters), budget.h (queued bytes, soft cap), owner.h
 * (quotas per user or address); router_internal.h says what they share.
 *
 * Threads: loop thread only, every function; the login workers it starts
 * (hasher.h) run password checks and nothing else.
 * Lifetimes: router_new to router_free; router_free closes every peer (their
 * forwarded calls complete with PROVIDER_LOST first) and stops the workers.
 * A connection given to router_accept is the router's from then on: it is
 * freed when it closes. Clock: the loop's (ev_now, monotonic). */
#ifndef AMP_BROKER_ROUTER_H
#define AMP_BROKER_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "amp/amp.h"
#include "auth.h"
#include "certid.h"

typedef enum slow_policy { SLOW_DROP = 0, SLOW_DISCONNECT = 1 } slow_policy;

typedef struct router_config {
    double call_timeout;        /* seconds; default deadline of a routed call */
    double max_call_timeout;    /* cap on a caller's _timeout */
    size_t event_queue_bytes;   /* per subscriber: buffered output beyond
                                   which events are dropped or the
                                   subscriber disconnected */
    slow_policy slow_consumer;
    size_t max_connections;     /* more are refused (closed at once) */
    double login_timeout;       /* with auth: seconds to log in */
    cert_rule cert_identity;    /* with auth: how a verified client
                                   certificate names the user (certid.h) */
    amp_limits limits;          /* decoder caps after login (or without auth) */
    amp_limits login_limits;    /* decoder caps before login */
    size_t max_calls_in_flight; /* per connection: more get OVERLOADED */
    double keepalive;           /* TCP keepalive idle seconds; 0: off */
    size_t output_soft_cap;     /* a connection whose unsent output stays */
    double output_soft_seconds; /* above this for that long is closed */
    size_t max_registrations;   /* per connection: more get LIMIT_EXCEEDED */
    size_t max_commands;        /* distinct commands in the table: a new one
                                   beyond gets LIMIT_EXCEEDED */
    size_t max_subscriptions;   /* per connection: more get LIMIT_EXCEEDED */
    size_t max_subscriptions_total; /* all connections together: the same */
    /* with auth, over all connections of one user (or, for connections not
     * logged in as a user, of one address): the same */
    size_t max_subscriptions_per_user, max_registrations_per_user;
    size_t max_command_name;    /* longest name registered or pattern
                                   subscribed (bytes); longer: LIMIT_EXCEEDED */
    /* (zero in any of these five: no limit) */
    size_t commands_list_budget; /* commands amp.Commands may examine per
                                    second over all connections (a listing:
                                    every command; `command`: one), in bursts
                                    of one second's worth; over it: OVERLOADED;
                                    0: 100000 */
    size_t max_pattern_tokens;  /* tokens of a subscribed pattern, at most
                                   SUBINDEX_MAX_TOKENS (256); more get
                                   LIMIT_EXCEEDED; 0: 16 */
    /* logins (with auth); see README, "Security and limits" */
    int login_workers;                     /* threads hashing passwords */
    size_t max_pending_logins;             /* password checks queued or running */
    size_t max_pending_logins_per_address; /* the same from one address (or uid) */
    unsigned login_throttle_after;         /* failures per user or address before */
    double login_throttle_max;             /* waits start; longest wait (0: off) */
    size_t max_connections_per_user;       /* logged-in connections of one user
                                              (not anonymous ones); 0: no cap.
                                              Zeroes above: 2, 64, 4, 5, off */
    size_t max_queued_bytes;    /* budget for unsent output and partial input
                                   boxes across all connections; over it,
                                   events are dropped, routed calls get
                                   OVERLOADED and the connections holding
                                   the most are closed; 0: none */
} router_config;

typedef struct router router;

router *router_new(struct ev_loop *loop, const router_config *cfg);
void router_free(router *r);
/* The accounting every connection's session must share (pass it as
 * amp_conn_config.usage): what max_queued_bytes is measured against. */
amp_usage *router_usage(router *r);
/* Attach an accepted connection. */
void router_accept(router *r, amp_conn *c);
/* Connections currently attached. */
size_t router_connections(const router *r);
/* Drain: calls from now on get SHUTTING_DOWN; forwarded calls continue. */
void router_drain(router *r);
/* Forwarded calls not yet answered. */
size_t router_inflight(const router *r);
/* Install users and ACL (NULL: no authentication, everything allowed).
 * Takes ownership. Live connections are checked again: one whose
 * credential no longer verifies (user gone, password changed, token
 * removed) is disconnected, registrations and subscriptions no longer
 * allowed are removed. The first auth starts the login workers: -1 (logged,
 * `a` freed, nothing changed) if they cannot start. */
int router_set_auth(router *r, auth *a);

/* Listeners whose shed connections (accepted and closed at once, out of
 * descriptors) amp.Stats counts as connections_shed. The array stays the
 * caller's; NULL entries are skipped. Before freeing a listener, hand its
 * count over with router_listener_gone(). */
void router_count_listeners(router *r, amp_listener *const *listeners, int n);
void router_listener_gone(router *r, const amp_listener *l);
/* The metrics endpoint turned a client away (busy, or out of descriptors). */
void router_metrics_refused(router *r);
/* Every counter of amp.Stats in the Prometheus text format. */
void router_metrics(router *r, amp_buf *out);

#endif
