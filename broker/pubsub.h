/* Pub/sub: amp.Subscribe and amp.Unsubscribe, and events (calls without
 * _ask) delivered to the connections whose patterns match them, once per
 * connection however many of its patterns match. Matching goes through the
 * subscription index (subindex.h); a subscriber whose output is over
 * event_queue_bytes (or the budget, budget.h) misses the event, counted, and
 * with slow_consumer = disconnect is closed after the event has gone round.
 *
 * The dispatch (router.c) calls the pubsub_* request handlers from the
 * session's call callback, pubsub_detach when a peer goes and
 * pubsub_recheck after a reload. A subscription lives until it is
 * unsubscribed, revoked or its peer goes. Loop thread only. */
#ifndef AMP_BROKER_PUBSUB_H
#define AMP_BROKER_PUBSUB_H

#include <stddef.h>
#include <stdint.h>

#include "amp/amp.h"
#include "amp/strmap.h"
#include "subindex.h"

typedef struct router router;
struct peer;

/* pubsub.c's state. */
struct pubsub {
    subindex *index;    /* every subscription, by pattern */
    uint64_t event_seq; /* events matched so far: peer_subs.last_event */
};

/* pubsub.c's part of each peer. */
struct peer_subs {
    amp_strmap map;      /* its patterns -> its subscriptions; slots NULL
                            until the first subscription */
    uint64_t last_event; /* the last event queued for it (event_seq) */
    int slow;            /* marked for disconnection as a slow consumer */
};

/* 0, or -1 out of memory (or no random key for the index). */
int pubsub_init(router *r);
/* Every peer is detached by now. */
void pubsub_free(router *r);

/* Requests (each answered exactly once; an event's answer sends nothing). */
void pubsub_subscribe(router *r, struct peer *p, amp_request *req, const amp_box *box);
void pubsub_unsubscribe(router *r, struct peer *p, amp_request *req, const amp_box *box);
void pubsub_publish(router *r, struct peer *from, amp_request *req, const amp_box *box);

/* The peer is going: every subscription of it goes. */
void pubsub_detach(router *r, struct peer *p);
/* After a reload: subscriptions the ACL no longer allows are dropped (out
 * of memory to check them: the peer is closed). */
void pubsub_recheck(router *r, struct peer *p);

/* Subscriptions of p; of all peers. */
size_t pubsub_count(const struct peer *p);
size_t pubsub_total(const router *r);

#endif
