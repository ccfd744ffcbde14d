/* Subscriptions and events. */
#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "pattern.h"
#include "reply.h"
#include "router_internal.h"

struct subscription {
    subindex_entry link; /* in the index, which reports its peer */
    struct peer *peer;
    size_t len;
    uint8_t pattern[];
};

int pubsub_init(router *r)
{
    return (r->ps.index = subindex_new()) ? 0 : -1;
}

void pubsub_free(router *r)
{
    subindex_free(r->ps.index);
}

size_t pubsub_count(const struct peer *p)
{
    return p->sub.map.slots ? p->sub.map.count : 0;
}

size_t pubsub_total(const router *r)
{
    return subindex_count(r->ps.index);
}

/* ---- events -------------------------------------------------------------------- */

/* One event on its way to the subscribers whose patterns match it. */
struct fanout {
    router *r;
    const amp_pair *cmd;
    const amp_pair *args;
    size_t n, size; /* args; the size of the box queued for each */
    amp_call_opts opts; /* no answer */
    int any_slow;
};

/* A matching subscription: the event is queued for its connection unless
 * another of that connection's patterns already got it this time (an event
 * carries no subscription: extra copies would be identical). */
static void deliver(void *owner, void *ud)
{
    struct fanout *f = ud;
    router *r = f->r;
    struct peer *p = owner;
    if (p->sub.last_event == r->ps.event_seq)
        return;
    p->sub.last_event = r->ps.event_seq;
    amp_session *s = amp_conn_session(p->conn);
    const uint8_t *o;
    size_t pending;
    amp_session_output(s, &o, &pending);
    if (budget_over(r, f->size)) {
        r->stats.events_dropped++;
        r->stats.budget_events_dropped++;
        return;
    }
    if (pending + f->size > r->cfg.event_queue_bytes ||
        amp_session_call(s, f->cmd->value, f->cmd->value_len, f->args, f->n, &f->opts, NULL,
                         NULL, NULL) != AMP_OK) {
        r->stats.events_dropped++;
        if (r->cfg.slow_consumer == SLOW_DISCONNECT)
            p->sub.slow = f->any_slow = 1;
        return;
    }
    r->stats.events_delivered++;
}

/* After an event has gone round: close the subscribers it marked slow (not
 * during the walk: closing a peer removes its subscriptions). */
static void disconnect_slow(router *r)
{
    for (struct peer *p = r->peers, *next; p; p = next) {
        next = p->next;
        if (p->sub.slow) {
            p->sub.slow = 0;
            log_msg(LOG_WARN, "peer %llu (%s): slow consumer, disconnected",
                    (unsigned long long)p->id, amp_conn_peer_name(p->conn));
            r->stats.slow_consumers_disconnected++;
            amp_conn_abort(p->conn);
        }
    }
}

void pubsub_publish(router *r, struct peer *from, amp_request *req, const amp_box *box)
{
    const amp_pair *cmdp = amp_request_command(req);
    if (!login_permit(r, from, req, ACT_PUBLISH, cmdp->value, cmdp->value_len))
        return;
    r->stats.events_published++;
    amp_pair stack[FORWARD_STACK];
    size_t n;
    amp_pair *args = forward_pairs(box, stack, &n);
    struct fanout f = {.r = r, .cmd = cmdp, .args = args, .n = n,
                       .size = amp_box_encoded_size(args, n) + cmdp->value_len + 12};
    amp_call_opts_init(&f.opts);
    f.opts.no_answer = 1;
    r->ps.event_seq++; /* a new stamp: every connection may get this one */
    if (args) /* queuing an event never closes a connection: the index
                 stays as it is while it is walked */
        subindex_match(r->ps.index, cmdp->value, cmdp->value_len, deliver, &f);
    forward_pairs_free(args, stack);
    if (f.any_slow)
        disconnect_slow(r);
    reply_ok(r, req); /* no _ask: nothing is sent */
}

/* ---- subscriptions -------------------------------------------------------------- */

/* A pattern that may be subscribed: well-formed, within the name and token
 * limits, allowed by the ACL. 1 if so; else 0 (answered). */
static int acceptable(router *r, struct peer *p, amp_request *req, const amp_pair *pat)
{
    const char *why = "missing pattern";
    if (pat && reply_too_long(r, req, pat, &r->stats.subscriptions_refused))
        return 0;
    if (!pat || pattern_check(pat->value, pat->value_len, &why)) {
        char d[128];
        snprintf(d, sizeof d, "bad pattern: %s", why);
        reply_error(r, req, "BAD_REQUEST", d);
        return 0;
    }
    /* each token can cost a node of the index: this bounds its memory */
    size_t tokens = pattern_tokens(pat->value, pat->value_len);
    if (tokens > r->cfg.max_pattern_tokens) {
        reply_limit(r, req, &r->stats.subscriptions_refused,
                    "%zu tokens is over the broker's limit of %zu (max_pattern_tokens)", tokens,
                    r->cfg.max_pattern_tokens);
        return 0;
    }
    return login_permit(r, p, req, ACT_SUBSCRIBE, pat->value, pat->value_len);
}

/* The limits one more subscription of p must stay within; 1 if refused. */
static int over_limits(router *r, struct peer *p, amp_request *req)
{
    if (p->sub.map.count >= r->cfg.max_subscriptions) {
        reply_limit(r, req, &r->stats.subscriptions_refused,
                    "this connection has %zu subscriptions, the broker's limit "
                    "(max_subscriptions)", p->sub.map.count);
        return 1;
    }
    if (login_enabled(r) && owner_holds(p, OWNER_SUBS) >= r->cfg.max_subscriptions_per_user) {
        reply_limit(r, req, &r->stats.subscriptions_refused,
                    "%s holds %zu subscriptions over all its connections, the broker's limit "
                    "(max_subscriptions_per_user)", owner_label(p), owner_holds(p, OWNER_SUBS));
        return 1;
    }
    if (subindex_count(r->ps.index) >= r->cfg.max_subscriptions_total) {
        reply_limit(r, req, &r->stats.subscriptions_refused,
                    "the broker holds %zu subscriptions, its limit (max_subscriptions_total)",
                    subindex_count(r->ps.index));
        return 1;
    }
    return 0;
}

void pubsub_subscribe(router *r, struct peer *p, amp_request *req, const amp_box *box)
{
    const amp_pair *pat = amp_box_find_str(box, "pattern");
    if (!acceptable(r, p, req, pat))
        return;
    if (!p->sub.map.slots && amp_strmap_init(&p->sub.map)) {
        reply_error(r, req, "UNKNOWN", "Unknown Error");
        return;
    }
    if (amp_strmap_get(&p->sub.map, pat->value, pat->value_len)) { /* already: harmless */
        reply_ok(r, req);
        return;
    }
    if (over_limits(r, p, req))
        return;
    struct subscription *sub = malloc(sizeof *sub + pat->value_len);
    if (!sub || subindex_add(r->ps.index, pat->value, pat->value_len, &sub->link, p)) {
        free(sub);
        reply_error(r, req, "UNKNOWN", "Unknown Error");
        return;
    }
    if (amp_strmap_put(&p->sub.map, pat->value, pat->value_len, sub)) {
        subindex_remove(r->ps.index, &sub->link);
        free(sub);
        reply_error(r, req, "UNKNOWN", "Unknown Error");
        return;
    }
    sub->peer = p;
    sub->len = pat->value_len;
    memcpy(sub->pattern, pat->value, sub->len);
    owner_count(p, OWNER_SUBS, +1);
    reply_ok(r, req);
}

/* Remove one of p's subscriptions everywhere. */
static void remove_sub(router *r, struct peer *p, const uint8_t *pattern, size_t len)
{
    struct subscription *sub = amp_strmap_remove(&p->sub.map, pattern, len);
    if (sub) {
        subindex_remove(r->ps.index, &sub->link);
        free(sub);
        owner_count(p, OWNER_SUBS, -1);
    }
}

void pubsub_unsubscribe(router *r, struct peer *p, amp_request *req, const amp_box *box)
{
    const amp_pair *pat = amp_box_find_str(box, "pattern");
    if (pat && p->sub.map.slots && amp_strmap_get(&p->sub.map, pat->value, pat->value_len)) {
        remove_sub(r, p, pat->value, pat->value_len);
        reply_ok(r, req);
        return;
    }
    reply_error(r, req, "NOT_SUBSCRIBED", "this connection has no such subscription");
}

static void unlink_each(const uint8_t *key, size_t n, void *value, void *ud)
{
    router *r = ud;
    subindex_remove(r->ps.index, &((struct subscription *)value)->link);
}

void pubsub_detach(router *r, struct peer *p)
{
    if (!p->sub.map.slots)
        return;
    amp_strmap_foreach(&p->sub.map, unlink_each, r);
    amp_strmap_free(&p->sub.map); /* frees each subscription */
}

struct revoked {
    router *r;
    struct peer *p;
    struct subscription **v;
    size_t n;
};

static void collect_revoked(const uint8_t *key, size_t n, void *value, void *ud)
{
    struct revoked *rv = ud;
    if (!login_allows(rv->r, rv->p, ACT_SUBSCRIBE, key, n))
        rv->v[rv->n++] = value;
}

void pubsub_recheck(router *r, struct peer *p)
{
    if (!p->sub.map.count)
        return;
    struct revoked rv = {r, p, malloc(p->sub.map.count * sizeof *rv.v), 0};
    if (!rv.v) { /* cannot check: do not keep what may be revoked */
        log_msg(LOG_ERROR, "peer %llu: out of memory re-checking subscriptions, closing",
                (unsigned long long)p->id);
        amp_conn_abort(p->conn);
        return;
    }
    amp_strmap_foreach(&p->sub.map, collect_revoked, &rv);
    for (size_t i = 0; i < rv.n; i++) {
        log_msg(LOG_INFO, "peer %llu: subscription revoked", (unsigned long long)p->id);
        remove_sub(r, p, rv.v[i]->pattern, rv.v[i]->len);
    }
    free(rv.v);
}
