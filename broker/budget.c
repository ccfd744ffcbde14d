/* The budget for queued bytes and the soft cap: closing the connections
 * that hold what the broker cannot afford to keep. */
#include "budget.h"

#include <stdlib.h>

#include "router_internal.h"

size_t budget_queued(const router *r)
{
    const amp_usage *u = &r->budget.usage;
    return u->output_bytes + u->input_bytes + u->request_bytes;
}

int budget_over(router *r, size_t more)
{
    if (!r->cfg.max_queued_bytes || budget_queued(r) + more <= r->cfg.max_queued_bytes)
        return 0;
    r->budget.hit = 1;
    return 1;
}

amp_usage *router_usage(router *r)
{
    return &r->budget.usage;
}

static size_t held_by(struct peer *p)
{
    amp_session *s = amp_conn_session(p->conn);
    const uint8_t *o;
    size_t out;
    amp_session_output(s, &o, &out);
    return out + amp_session_input_pending(s) + amp_session_request_bytes(s);
}

struct holder {
    struct peer *p;
    size_t group, held; /* what its owner holds in all, what it holds */
};

static int by_owner(const void *a, const void *b)
{
    const struct holder *x = a, *y = b;
    uintptr_t ox = (uintptr_t)x->p->owner, oy = (uintptr_t)y->p->owner;
    return ox < oy ? -1 : ox > oy;
}

/* The owner holding the most first, within it the connection holding the
 * most. */
static int by_held_desc(const void *a, const void *b)
{
    const struct holder *x = a, *y = b;
    if (x->group != y->group)
        return x->group < y->group ? 1 : -1;
    return x->held < y->held ? 1 : x->held > y->held ? -1 : 0;
}

/* What each holder's owner holds over all its connections (a connection
 * without an owner is a group of its own). Owners are told apart by their
 * pointer alone: what they are is owner.c's business. */
static void group_by_owner(struct holder *v, size_t n)
{
    qsort(v, n, sizeof *v, by_owner);
    for (size_t i = 0, j; i < n; i = j) {
        size_t sum = v[i].held;
        for (j = i + 1; j < n && v[i].p->owner && v[j].p->owner == v[i].p->owner; j++)
            sum += v[j].held;
        for (size_t k = i; k < j; k++)
            v[k].group = sum;
    }
}

/* Over the budget (or something was refused for it): close the connections
 * holding the most until the total is back under three quarters of it, so
 * the broker does not live at the edge refusing everyone. Those are the
 * peers that do not read what is queued for them, or that hold boxes
 * half-sent, or calls unanswered. */
static void shed(router *r)
{
    size_t target = r->cfg.max_queued_bytes / 4 * 3, total = budget_queued(r);
    if (total <= target || !r->npeers)
        return;
    struct holder *v = malloc(r->npeers * sizeof *v);
    if (!v) {
        log_msg(LOG_ERROR, "over max_queued_bytes and out of memory to choose whom to close");
        return;
    }
    size_t n = 0;
    for (struct peer *p = r->peers; p; p = p->next) {
        size_t held = held_by(p);
        if (held) /* small holders too: many of them can fill the budget together */
            v[n++] = (struct holder){p, 0, held};
    }
    group_by_owner(v, n);
    qsort(v, n, sizeof *v, by_held_desc);
    for (size_t i = 0; i < n && total > target; i++) {
        total -= v[i].held < total ? v[i].held : total;
        r->stats.budget_connections_closed++;
        log_msg(LOG_WARN, "peer %llu (%s): holds %zu bytes with %zu queued in all "
                "(max_queued_bytes %zu), closing", (unsigned long long)v[i].p->id,
                amp_conn_peer_name(v[i].p->conn), v[i].held, budget_queued(r),
                r->cfg.max_queued_bytes);
        amp_conn_abort(v[i].p->conn); /* unlinks and frees the peer */
    }
    free(v);
}

static void budget_check(struct ev_loop *loop, ev_prepare *w, int revents)
{
    router *r = w->data;
    if (!r->budget.hit && budget_queued(r) <= r->cfg.max_queued_bytes)
        return;
    r->budget.hit = 0;
    shed(r);
}

/* The soft cap: output that stays above output_soft_cap for
 * output_soft_seconds means the peer is not reading; close it. */
static void soft_cap_check(struct ev_loop *loop, ev_timer *w, int revents)
{
    router *r = w->data;
    double now = ev_now(loop);
    for (struct peer *p = r->peers, *next; p; p = next) {
        next = p->next;
        const uint8_t *o;
        size_t pending;
        amp_session_output(amp_conn_session(p->conn), &o, &pending);
        double *since = &p->budget.over_soft_since;
        if (pending <= r->cfg.output_soft_cap) {
            *since = 0;
            continue;
        }
        if (!*since) {
            *since = now;
            continue;
        }
        if (now - *since >= r->cfg.output_soft_seconds) {
            r->stats.slow_connections_closed++;
            log_msg(LOG_WARN, "peer %llu (%s): %zu bytes unread for %g s, closing",
                    (unsigned long long)p->id, amp_conn_peer_name(p->conn), pending,
                    now - *since);
            amp_conn_abort(p->conn);
        }
    }
}

void budget_start(router *r)
{
    amp_usage_init(&r->budget.usage);
    if (r->cfg.max_queued_bytes) {
        ev_prepare_init(&r->budget.watch, budget_check);
        r->budget.watch.data = r;
        ev_prepare_start(r->loop, &r->budget.watch);
        ev_unref(r->loop); /* it alone does not keep the loop running */
    }
    if (r->cfg.output_soft_cap && r->cfg.output_soft_seconds > 0) {
        double every = r->cfg.output_soft_seconds / 4;
        ev_timer_init(&r->budget.soft_cap_timer, soft_cap_check, every, every);
        r->budget.soft_cap_timer.data = r;
        ev_timer_start(r->loop, &r->budget.soft_cap_timer);
    }
}

void budget_stop(router *r)
{
    ev_timer_stop(r->loop, &r->budget.soft_cap_timer);
    if (ev_is_active(&r->budget.watch)) {
        ev_ref(r->loop);
        ev_prepare_stop(r->loop, &r->budget.watch);
    }
}
