/* The bus. Calls for commands the broker does not own are forwarded to one
 * provider under the broker's own tag and the outcome is relayed back under
 * the caller's tag; calls without _ask are events, delivered to matching
 * subscribers. Every _ask the broker accepts gets exactly one answer or
 * error: the conversation layer guarantees that each forwarded call
 * completes exactly once, and each completion answers its request once. */
#include "router.h"

#include <ev.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "hasher.h"
#include "log.h"
#include "pattern.h"
#include "strmap.h"
#include "subindex.h"
#include "throttle.h"

enum policy { POLICY_ROUNDROBIN, POLICY_RANDOM, POLICY_FIRST, POLICY_LEAST_BUSY };
static const char *policy_names[] = {"roundrobin", "random", "first", "least-busy"};

struct peer {
    router *r;
    amp_conn *conn;
    uint64_t id;
    int inflight; /* forwarded calls this peer has not answered */
    int slow;     /* marked for disconnection as a slow consumer */
    const struct identity *who; /* with auth: NULL until logged in */
    char *user;                /* the identity's name, to find it again */
    auth_credential cred;      /* how it logged in, checked again on reload */
    int counted;               /* counted in the router's user_conns */
    struct login *login;       /* its password check, while one runs */
    amp_request *held;         /* a throttled login, answered when hold_timer */
    double held_wait;          /* fires, and the wait left then */
    ev_timer hold_timer;
    uint8_t source[17];        /* its address (IPv6: the /64), or UNIX peer */
    size_t source_len;         /* uid: the key of per-address login limits */
    ev_timer login_timer;
    double over_soft_since; /* when its output went over the soft cap; 0: not */
    struct command **regs;  /* what it serves: a close visits only these */
    size_t nregs, regs_cap;
    amp_strmap subs;        /* its patterns -> struct subscription; slots
                               NULL until the first subscription */
    uint64_t last_event;    /* the last event queued for it (event_seq) */
    log_bucket log;         /* rate limit of the lines it causes */
    struct owner *owner;    /* whose quotas it uses (see struct owner) */
    struct peer *prev, *next;
};

/* Who a connection's holdings count for: the user it logged in as, or, for
 * a connection that is not logged in as a user (anonymous, or no auth), its
 * address. Quotas per owner keep one user or one address from taking a
 * broker-wide limit (max_subscriptions_total, max_commands) for itself, and
 * the budget sheds the owner holding the most first, so a crowd of small
 * connections cannot get a busy client closed in its place. */
struct owner {
    size_t subs, regs; /* of all its connections */
    size_t refs;       /* its connections */
    size_t shed_held;  /* scratch for shed() */
    size_t key_len;
    uint8_t key[];     /* 'u' + user name, or 'a' + the address key */
};

/* Lines about connections coming and going, all connections together. */
#define CONN_LOG_BURST 200
#define CONN_LOG_PER_SECOND 20.0

/* An entry of the command table; removed with its last provider. */
struct command {
    struct peer **providers; /* in registration order */
    size_t n, cap;
    enum policy policy;
    size_t rr;
    size_t name_len;
    uint8_t name[]; /* its key in the table */
};

struct subscription {
    subindex_entry link; /* in router.subs, which reports its peer */
    struct peer *peer;
    size_t len;
    uint8_t pattern[];
};

/* The broker's own error codes, counted by name. Codes relayed from
 * providers are peer-chosen: they are lumped under "other", so no peer can
 * fill the table or take a name. */
static const char *const broker_codes[] = {
    "UNHANDLED",     "TIMEOUT",       "PROVIDER_LOST",     "OVERLOADED",
    "SHUTTING_DOWN", "AUTH_REQUIRED", "AUTH_FAILED",       "PERMISSION_DENIED",
    "BAD_REQUEST",   "POLICY_CONFLICT", "NOT_REGISTERED",  "NOT_SUBSCRIBED",
    "LIMIT_EXCEEDED", "TOO_LARGE",    "UNKNOWN",           "LOGIN_BUSY",
    "LOGIN_THROTTLED", "TOO_MANY_CONNECTIONS",
};
#define N_BROKER_CODES (sizeof broker_codes / sizeof broker_codes[0])
/* Connection close reasons are libamp's error codes (a small fixed set). */
#define MAX_CLOSE_REASONS 48

struct router {
    amp_listener *const *listeners; /* the caller's; NULL entries skipped */
    int nlisteners;
    struct ev_loop *loop;
    router_config cfg;
    amp_strmap commands;
    subindex *subs;         /* every subscription, by pattern */
    uint64_t event_seq;     /* events matched so far: peer.last_event */
    struct peer *peers;
    size_t npeers;
    uint64_t next_peer_id;
    uint64_t rng;
    double started;
    int draining;
    size_t inflight;
    auth *auth;
    hasher *hasher;           /* password checks off the loop */
    /* recent failures: password logins by user and by address; token logins by
     * address, apart, so that bad passwords from a shared address (NAT, one
     * UNIX uid) cannot lock out token logins from it */
    throttle *fail_users, *fail_sources, *fail_token_sources;
    /* lines every connection causes once (who it is, why it went): one
     * bucket for all, so churning connections cannot flood the log */
    log_bucket conn_log;
    struct login *logins;     /* password checks submitted, not yet done */
    amp_strmap user_conns;    /* user name -> size_t: its logged-in connections */
    amp_strmap owners;        /* key -> struct owner */
    ev_timer soft_cap_timer;
    log_bucket refusals_log; /* refused connections: one bucket for all */
    amp_usage usage;         /* what every session holds (max_queued_bytes) */
    ev_prepare budget_watch; /* before the loop sleeps: over the budget? */
    int budget_hit;          /* something was refused for the budget */
    struct {
        uint64_t connections_total, calls_routed, calls_answered, events_published,
            events_delivered, events_dropped, slow_consumers_disconnected,
            late_answers_dropped, answers_to_gone_callers, bytes_in_closed, bytes_out_closed,
            connections_refused, logins, logins_failed, denials, login_timeouts, calls_refused,
            protocol_errors, slow_connections_closed, registrations_refused,
            subscriptions_refused, answers_failed, logins_busy,
            logins_throttled, logins_over_user_cap, cert_identities_refused,
            credentials_revoked, budget_events_dropped, budget_calls_refused,
            budget_connections_closed, box_timeouts, metrics_refused, listener_shed_gone;
        uint64_t codes[N_BROKER_CODES];
        uint64_t other_codes; /* relayed from providers, and anything unknown */
        struct {
            int reason;
            uint64_t n;
        } closes[MAX_CLOSE_REASONS];
    } stats;
};

#define THROTTLE_SLOTS 4096 /* per table (users, addresses): 128 KiB each */
#define THROTTLE_HOLD 1.0   /* seconds a throttled login waits for its refusal */

/* A password check on the worker pool. */
struct login {
    hasher_task task; /* first: the pool hands back &task */
    router *r;
    struct peer *peer; /* NULL once it is gone: the result is dropped */
    amp_request *req;  /* answered exactly once, also when the peer is gone */
    auth_pw_job job;
    uint8_t *user;     /* the name as sent: the key of its failure count */
    size_t user_len;
    uint8_t source[17];
    size_t source_len;
    struct login *prev, *next;
};

struct relay {
    router *r;
    amp_request *req;
    struct peer *provider;
};

/* ---- helpers ------------------------------------------------------------ */

/* A code the broker itself answers with (anything else counts as other). */
static void count_error(router *r, const uint8_t *code, size_t n)
{
    for (size_t i = 0; i < N_BROKER_CODES; i++)
        if (strlen(broker_codes[i]) == n && !memcmp(broker_codes[i], code, n)) {
            r->stats.codes[i]++;
            return;
        }
    r->stats.other_codes++;
}

/* A connection closed for this libamp error. */
static void count_close(router *r, int reason)
{
    size_t i;
    for (i = 0; i < MAX_CLOSE_REASONS && r->stats.closes[i].n; i++)
        if (r->stats.closes[i].reason == reason)
            break;
    if (i == MAX_CLOSE_REASONS) {
        r->stats.other_codes++;
        return;
    }
    r->stats.closes[i].reason = reason;
    r->stats.closes[i].n++;
}

/* The outcome of an answer or error the broker sends: the caller may be
 * gone (nothing to do), or its output full (the session closes it). */
static void sent(router *r, amp_err e)
{
    if (e != AMP_OK && e != AMP_E_CLOSED)
        r->stats.answers_failed++;
}

static void fail(router *r, amp_request *req, const char *code, const char *desc)
{
    count_error(r, (const uint8_t *)code, strlen(code));
    sent(r, amp_request_error(req, code, desc, 0));
}

/* Twisted's "Unhandled Command: b'NAME'", with NAME cut (libamp's rule) so
 * the description always fits in a value: an error box without
 * _error_description is malformed. */
static void unhandled(router *r, amp_request *req)
{
    const amp_pair *cmd = amp_request_command(req);
    uint8_t mem[64 + 4 * AMP_UNHANDLED_NAME_MAX]; /* the most it can need */
    amp_buf d;
    amp_buf_init_fixed(&d, mem, sizeof mem);
    if (amp_unhandled_description(&d, cmd->value, cmd->value_len) != AMP_OK)
        d.len = 0;
    count_error(r, (const uint8_t *)"UNHANDLED", 9);
    sent(r, amp_request_error_bytes(req, (const uint8_t *)"UNHANDLED", 9, d.data, d.len, 0));
}

/* The conversation keys and the broker's own _timeout: everything else is
 * forwarded byte for byte. */
static int is_reserved(const amp_pair *p)
{
    static const char *keys[] = {"_ask", "_answer", "_command", "_error", "_error_code",
                                 "_error_description", "_timeout"};
    if (!p->key_len || p->key[0] != '_')
        return 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (p->key_len == strlen(keys[i]) && !memcmp(p->key, keys[i], p->key_len))
            return 1;
    return 0;
}

static const amp_pair *arg(const amp_box *b, const char *k)
{
    return amp_box_find_str(b, k);
}

static uint64_t next_random(router *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return r->rng;
}

/* ---- owners: quotas over all of a user's (or an address's) connections ---- */

static void release_owner(router *r, struct peer *p)
{
    struct owner *o = p->owner;
    if (!o)
        return;
    p->owner = NULL;
    o->subs -= p->subs.slots ? p->subs.count : 0;
    o->regs -= p->nregs;
    if (--o->refs == 0)
        free(amp_strmap_remove(&r->owners, o->key, o->key_len));
}

/* Make p count for the owner with this key (kind 'u' or 'a'), its holdings
 * moving along. On no memory p stays with its owner. */
static void set_owner(router *r, struct peer *p, char kind, const void *name, size_t n)
{
    uint8_t key[1 + 256];
    if (n > sizeof key - 1)
        n = sizeof key - 1;
    key[0] = (uint8_t)kind;
    memcpy(key + 1, name, n);
    struct owner *o = amp_strmap_get(&r->owners, key, n + 1);
    if (o == p->owner && o)
        return;
    if (!o) {
        o = calloc(1, sizeof *o + n + 1);
        if (!o)
            return;
        memcpy(o->key, key, n + 1);
        o->key_len = n + 1;
        if (amp_strmap_put(&r->owners, key, n + 1, o)) {
            free(o);
            return;
        }
    }
    release_owner(r, p);
    o->refs++;
    o->subs += p->subs.slots ? p->subs.count : 0;
    o->regs += p->nregs;
    p->owner = o;
}

static const char *owner_label(const struct peer *p)
{
    return p->owner && p->owner->key[0] == 'u' && p->user ? p->user : "this address";
}

/* ---- the budget for queued bytes (max_queued_bytes) -------------------------- */

static size_t queued_bytes(const router *r)
{
    return r->usage.output_bytes + r->usage.input_bytes + r->usage.request_bytes;
}

/* 1 if queuing `more` bytes would go over the budget (and notes it: the
 * connections holding the most are closed before the loop sleeps). */
static int over_budget(router *r, size_t more)
{
    if (!r->cfg.max_queued_bytes || queued_bytes(r) + more <= r->cfg.max_queued_bytes)
        return 0;
    r->budget_hit = 1;
    return 1;
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

/* The owner holding the most first, within it the connection holding the
 * most. */
static int by_held_desc(const void *a, const void *b)
{
    const struct holder *x = a, *y = b;
    if (x->group != y->group)
        return x->group < y->group ? 1 : -1;
    return x->held < y->held ? 1 : x->held > y->held ? -1 : 0;
}

/* Over the budget (or something was refused for it): close the connections
 * holding the most until the total is back under three quarters of it, so
 * the broker does not live at the edge refusing everyone. Those are the
 * peers that do not read what is queued for them, or that hold boxes
 * half-sent, or calls unanswered. */
static void shed(router *r)
{
    size_t target = r->cfg.max_queued_bytes / 4 * 3, total = queued_bytes(r);
    if (total <= target || !r->npeers)
        return;
    struct holder *v = malloc(r->npeers * sizeof *v);
    size_t n = 0;
    for (struct peer *p = r->peers; p; p = p->next)
        if (p->owner)
            p->owner->shed_held = 0;
    for (struct peer *p = r->peers; v && p; p = p->next) {
        size_t held = held_by(p);
        if (held) { /* small holders too: many of them can fill the budget together */
            v[n++] = (struct holder){p, 0, held};
            if (p->owner)
                p->owner->shed_held += held;
        }
    }
    if (!v) {
        log_msg(LOG_ERROR, "over max_queued_bytes and out of memory to choose whom to close");
        return;
    }
    for (size_t i = 0; i < n; i++)
        v[i].group = v[i].p->owner ? v[i].p->owner->shed_held : v[i].held;
    qsort(v, n, sizeof *v, by_held_desc);
    for (size_t i = 0; i < n && total > target; i++) {
        total -= v[i].held < total ? v[i].held : total;
        r->stats.budget_connections_closed++;
        log_msg(LOG_WARN, "peer %llu (%s): holds %zu bytes with %zu queued in all "
                "(max_queued_bytes %zu), closing", (unsigned long long)v[i].p->id,
                amp_conn_peer_name(v[i].p->conn), v[i].held, queued_bytes(r),
                r->cfg.max_queued_bytes);
        amp_conn_abort(v[i].p->conn); /* unlinks and frees the peer */
    }
    free(v);
}

static void budget_check(struct ev_loop *loop, ev_prepare *w, int revents)
{
    router *r = w->data;
    if (!r->budget_hit && queued_bytes(r) <= r->cfg.max_queued_bytes)
        return;
    r->budget_hit = 0;
    shed(r);
}

/* ---- authorization ----------------------------------------------------------- */

static const char *action_name(enum acl_action a)
{
    return a == ACT_CALL ? "call" : a == ACT_REGISTER ? "register"
           : a == ACT_PUBLISH ? "publish" : "subscribe";
}

/* 1 if allowed; otherwise answers PERMISSION_DENIED, logs, returns 0. */
static int permit(router *r, struct peer *p, amp_request *req, enum acl_action action,
                  const uint8_t *subject, size_t n)
{
    if (!r->auth || auth_allowed(r->auth, p->who, action, subject, n))
        return 1;
    r->stats.denials++;
    char f[LOG_FIELD_BUF];
    log_peer(&p->log, LOG_WARN, "denied: %s (%s) may not %s %s", p->who->name,
             amp_conn_peer_name(p->conn), action_name(action), log_field(f, subject, n));
    char d[300];
    snprintf(d, sizeof d, "%s may not %s %.*s", p->who->name, action_name(action),
             (int)(n > 200 ? 200 : n), subject);
    fail(r, req, "PERMISSION_DENIED", d);
    return 0;
}

/* ---- routed calls ----------------------------------------------------------- */

static struct peer *pick(router *r, struct command *cmd)
{
    switch (cmd->policy) {
    case POLICY_FIRST:
        return cmd->providers[0];
    case POLICY_RANDOM:
        return cmd->providers[next_random(r) % cmd->n];
    case POLICY_LEAST_BUSY: {
        struct peer *best = cmd->providers[0];
        for (size_t i = 1; i < cmd->n; i++)
            if (cmd->providers[i]->inflight < best->inflight)
                best = cmd->providers[i];
        return best;
    }
    case POLICY_ROUNDROBIN:
    default:
        return cmd->providers[cmd->rr++ % cmd->n];
    }
}

static void on_forwarded(amp_session *s, uint64_t id, const amp_result *res, void *ud)
{
    struct relay *rl = ud;
    router *r = rl->r;
    rl->provider->inflight--;
    r->inflight--;
    amp_err e = AMP_OK;
    if (res->status == AMP_OK) {
        /* the answer's keys, byte for byte, without the provider's tag */
        amp_pair stack[64], *pairs = stack;
        if (res->box->count > 64)
            pairs = malloc(res->box->count * sizeof *pairs);
        size_t n = 0;
        for (size_t i = 0; pairs && i < res->box->count; i++)
            if (!is_reserved(&res->box->pairs[i]))
                pairs[n++] = res->box->pairs[i];
        e = amp_request_answer(rl->req, pairs, n);
        if (pairs != stack)
            free(pairs);
        r->stats.calls_answered++;
    } else if (res->status == AMP_E_REMOTE) {
        r->stats.other_codes++; /* the provider's code: its own business */
        e = amp_request_error_bytes(rl->req, res->error_code->value, res->error_code->value_len,
                                    res->error_description->value,
                                    res->error_description->value_len, 0);
    } else if (res->status == AMP_E_TIMEOUT) {
        count_error(r, (const uint8_t *)"TIMEOUT", 7);
        e = amp_request_error(rl->req, "TIMEOUT", "the provider did not answer in time", 0);
    } else {
        count_error(r, (const uint8_t *)"PROVIDER_LOST", 13);
        e = amp_request_error(rl->req, "PROVIDER_LOST",
                              "the provider disconnected before answering", 0);
    }
    if (e == AMP_E_CLOSED)
        r->stats.answers_to_gone_callers++;
    else
        sent(r, e);
    free(rl);
}

static void route_call(router *r, struct peer *caller, amp_request *req, const amp_box *box)
{
    const amp_pair *cmdp = amp_request_command(req);
    if (!permit(r, caller, req, ACT_CALL, cmdp->value, cmdp->value_len))
        return;
    /* this request is one of the pending ones */
    if (r->cfg.max_calls_in_flight &&
        amp_session_pending_requests(amp_conn_session(caller->conn)) > r->cfg.max_calls_in_flight) {
        r->stats.calls_refused++;
        fail(r, req, "OVERLOADED", "too many calls in flight on this connection");
        return;
    }
    if (over_budget(r, 0)) {
        r->stats.budget_calls_refused++;
        fail(r, req, "OVERLOADED", "the broker holds too much queued data (max_queued_bytes)");
        return;
    }
    /* a name longer than any registration cannot be served: no lookup */
    struct command *cmd = cmdp->value_len > r->cfg.max_command_name
                              ? NULL
                              : amp_strmap_get(&r->commands, cmdp->value, cmdp->value_len);
    if (!cmd) {
        unhandled(r, req);
        return;
    }
    double timeout = r->cfg.call_timeout;
    const amp_pair *t = arg(box, "_timeout");
    if (t) {
        int64_t ms;
        if (amp_int_parse(t->value, t->value_len, &ms) || ms <= 0) {
            fail(r, req, "BAD_REQUEST", "_timeout must be a positive number of milliseconds");
            return;
        }
        timeout = (double)ms / 1000.0;
        if (timeout > r->cfg.max_call_timeout)
            timeout = r->cfg.max_call_timeout;
    }
    amp_pair stack[64], *args = stack;
    if (box->count > 64)
        args = malloc(box->count * sizeof *args);
    struct relay *rl = malloc(sizeof *rl);
    if (!args || !rl) {
        free(rl);
        if (args != stack)
            free(args);
        fail(r, req, "UNKNOWN", "Unknown Error");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < box->count; i++)
        if (!is_reserved(&box->pairs[i]))
            args[n++] = box->pairs[i];
    struct peer *provider = pick(r, cmd);
    rl->r = r;
    rl->req = req;
    rl->provider = provider;
    amp_err e = amp_conn_call_bytes(provider->conn, cmdp->value, cmdp->value_len, args, n,
                                    timeout, on_forwarded, rl, NULL);
    if (args != stack)
        free(args);
    if (e != AMP_OK) {
        free(rl);
        fail(r, req, "OVERLOADED", "the provider cannot take more calls now");
        return;
    }
    provider->inflight++;
    r->inflight++;
    r->stats.calls_routed++;
}

/* ---- events -------------------------------------------------------------------- */

/* One event on its way to the subscribers whose patterns match it. */
struct fanout {
    router *r;
    const amp_pair *cmd;
    const amp_pair *args;
    size_t n, size; /* args; the size of the box queued for each */
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
    if (p->last_event == r->event_seq)
        return;
    p->last_event = r->event_seq;
    amp_session *s = amp_conn_session(p->conn);
    const uint8_t *o;
    size_t pending;
    amp_session_output(s, &o, &pending);
    if (over_budget(r, f->size)) {
        r->stats.events_dropped++;
        r->stats.budget_events_dropped++;
        return;
    }
    amp_call_opts no_answer = {1, 0, 0};
    if (pending + f->size > r->cfg.event_queue_bytes ||
        amp_session_call(s, f->cmd->value, f->cmd->value_len, f->args, f->n, &no_answer, NULL,
                         NULL, NULL) != AMP_OK) {
        r->stats.events_dropped++;
        if (r->cfg.slow_consumer == SLOW_DISCONNECT)
            p->slow = f->any_slow = 1;
        return;
    }
    r->stats.events_delivered++;
}

static void publish(router *r, struct peer *from, amp_request *req, const amp_box *box)
{
    const amp_pair *cmdp = amp_request_command(req);
    if (!permit(r, from, req, ACT_PUBLISH, cmdp->value, cmdp->value_len))
        return;
    r->stats.events_published++;
    amp_pair stack[64], *args = stack;
    if (box->count > 64)
        args = malloc(box->count * sizeof *args);
    size_t n = 0;
    for (size_t i = 0; args && i < box->count; i++)
        if (!is_reserved(&box->pairs[i]))
            args[n++] = box->pairs[i];
    struct fanout f = {r, cmdp, args, n, amp_box_encoded_size(args, n) + cmdp->value_len + 12, 0};
    r->event_seq++; /* a new stamp: every connection may get this one */
    if (args) /* queuing an event never closes a connection: the index
                 stays as it is while it is walked */
        subindex_match(r->subs, cmdp->value, cmdp->value_len, deliver, &f);
    int any_slow = f.any_slow;
    if (args != stack)
        free(args);
    /* disconnect after the loop: closing a peer removes its subscriptions */
    for (struct peer *p = any_slow ? r->peers : NULL, *next; p; p = next) {
        next = p->next;
        if (p->slow) {
            p->slow = 0;
            log_msg(LOG_WARN, "peer %llu (%s): slow consumer, disconnected",
                    (unsigned long long)p->id, amp_conn_peer_name(p->conn));
            r->stats.slow_consumers_disconnected++;
            amp_conn_abort(p->conn);
        }
    }
    sent(r, amp_request_answer(req, NULL, 0)); /* no _ask: nothing is sent */
}

/* ---- the broker's own commands ----------------------------------------------------- */

static int cmd_is(const amp_pair *c, const char *name)
{
    return c->value_len == strlen(name) && !memcmp(c->value, name, c->value_len);
}

/* A name or pattern over max_command_name: refused before anything is
 * stored or matched. 1 if refused (and answered). */
/* Refuse with LIMIT_EXCEEDED and a description saying which limit, counted. */
static void limit_exceeded(router *r, amp_request *req, uint64_t *counter, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void limit_exceeded(router *r, amp_request *req, uint64_t *counter, const char *fmt, ...)
{
    (*counter)++;
    char d[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d, sizeof d, fmt, ap);
    va_end(ap);
    fail(r, req, "LIMIT_EXCEEDED", d);
}

static int too_long(router *r, amp_request *req, const amp_pair *name, uint64_t *counter)
{
    if (name->value_len <= r->cfg.max_command_name)
        return 0;
    limit_exceeded(r, req, counter,
                   "%zu bytes is over the broker's limit of %zu (max_command_name)",
                   name->value_len, r->cfg.max_command_name);
    return 1;
}

/* Remove p from a command; the entry goes with its last provider. Returns 1
 * if p was there. `cmd` may be freed. */
static int drop_provider(router *r, struct command *cmd, struct peer *p)
{
    for (size_t i = 0; i < cmd->n; i++)
        if (cmd->providers[i] == p) {
            memmove(cmd->providers + i, cmd->providers + i + 1,
                    (cmd->n - i - 1) * sizeof *cmd->providers);
            if (--cmd->n == 0) {
                amp_strmap_remove(&r->commands, cmd->name, cmd->name_len);
                free(cmd->providers);
                free(cmd);
            }
            return 1;
        }
    return 0;
}

/* Forget the i-th of p's registrations (the command itself is not touched). */
static void forget_registration(struct peer *p, size_t i)
{
    p->regs[i] = p->regs[--p->nregs];
    if (p->owner)
        p->owner->regs--;
}

static void do_register(router *r, struct peer *p, amp_request *req, const amp_box *box)
{
    const amp_pair *c = arg(box, "command"), *pol = arg(box, "policy");
    if (!c || !c->value_len) {
        fail(r, req, "BAD_REQUEST", "amp.Register needs a command");
        return;
    }
    if (c->value_len >= 4 && !memcmp(c->value, "amp.", 4)) {
        fail(r, req, "BAD_REQUEST", "commands starting with amp. belong to the broker");
        return;
    }
    if (too_long(r, req, c, &r->stats.registrations_refused))
        return;
    if (!permit(r, p, req, ACT_REGISTER, c->value, c->value_len))
        return;
    int policy = -1;
    if (pol) {
        for (int i = 0; i < 4; i++)
            if (pol->value_len == strlen(policy_names[i]) &&
                !memcmp(pol->value, policy_names[i], pol->value_len))
                policy = i;
        if (policy < 0) {
            fail(r, req, "BAD_REQUEST",
                 "policy must be roundrobin, random, first or least-busy");
            return;
        }
    }
    struct command *cmd = amp_strmap_get(&r->commands, c->value, c->value_len);
    if (cmd && policy >= 0 && (enum policy)policy != cmd->policy) {
        fail(r, req, "POLICY_CONFLICT",
             "the command is served with another policy; the first registration's policy "
             "holds while it has providers");
        return;
    }
    for (size_t i = 0; cmd && i < cmd->n; i++)
        if (cmd->providers[i] == p) { /* registering twice is harmless */
            sent(r, amp_request_answer(req, NULL, 0));
            return;
        }
    if (!cmd && r->commands.count >= r->cfg.max_commands) {
        limit_exceeded(r, req, &r->stats.registrations_refused,
                       "the broker serves %zu commands, its limit (max_commands)",
                       r->commands.count);
        return;
    }
    if (r->auth && p->owner && p->owner->regs >= r->cfg.max_registrations_per_user) {
        limit_exceeded(r, req, &r->stats.registrations_refused,
                       "%s serves %zu commands over all its connections, the broker's limit "
                       "(max_registrations_per_user)", owner_label(p), p->owner->regs);
        return;
    }
    if (p->nregs >= r->cfg.max_registrations) {
        limit_exceeded(r, req, &r->stats.registrations_refused,
                       "this connection serves %zu commands, the broker's limit "
                       "(max_registrations)", p->nregs);
        return;
    }
    if (p->nregs == p->regs_cap) {
        size_t cap = p->regs_cap ? p->regs_cap * 2 : 8;
        struct command **v = realloc(p->regs, cap * sizeof *v);
        if (!v) {
            fail(r, req, "UNKNOWN", "Unknown Error");
            return;
        }
        p->regs = v;
        p->regs_cap = cap;
    }
    if (!cmd) {
        cmd = calloc(1, sizeof *cmd + c->value_len);
        if (!cmd || amp_strmap_put(&r->commands, c->value, c->value_len, cmd)) {
            free(cmd);
            fail(r, req, "UNKNOWN", "Unknown Error");
            return;
        }
        memcpy(cmd->name, c->value, c->value_len);
        cmd->name_len = c->value_len;
        cmd->policy = policy >= 0 ? (enum policy)policy : POLICY_ROUNDROBIN;
    }
    if (cmd->n == cmd->cap) {
        size_t cap = cmd->cap ? cmd->cap * 2 : 4;
        struct peer **v = realloc(cmd->providers, cap * sizeof *v);
        if (!v) {
            if (!cmd->n) { /* just created: leave no empty entry behind */
                amp_strmap_remove(&r->commands, cmd->name, cmd->name_len);
                free(cmd);
            }
            fail(r, req, "UNKNOWN", "Unknown Error");
            return;
        }
        cmd->providers = v;
        cmd->cap = cap;
    }
    cmd->providers[cmd->n++] = p;
    p->regs[p->nregs++] = cmd;
    if (p->owner)
        p->owner->regs++;
    char f[LOG_FIELD_BUF];
    log_peer(&p->log, LOG_INFO, "peer %llu (%s) serves %s", (unsigned long long)p->id,
             amp_conn_peer_name(p->conn), log_field(f, c->value, c->value_len));
    sent(r, amp_request_answer(req, NULL, 0));
}

static void do_unregister(router *r, struct peer *p, amp_request *req, const amp_box *box)
{
    const amp_pair *c = arg(box, "command");
    struct command *cmd = c && c->value_len <= r->cfg.max_command_name
                              ? amp_strmap_get(&r->commands, c->value, c->value_len)
                              : NULL;
    for (size_t i = 0; cmd && i < p->nregs; i++)
        if (p->regs[i] == cmd) {
            forget_registration(p, i);
            drop_provider(r, cmd, p);
            sent(r, amp_request_answer(req, NULL, 0));
            return;
        }
    fail(r, req, "NOT_REGISTERED", "this connection does not serve that command");
}

static void do_subscribe(router *r, struct peer *p, amp_request *req, const amp_box *box)
{
    const amp_pair *pat = arg(box, "pattern");
    const char *why = "missing pattern";
    if (pat && too_long(r, req, pat, &r->stats.subscriptions_refused))
        return;
    if (!pat || pattern_check(pat->value, pat->value_len, &why)) {
        char d[128];
        snprintf(d, sizeof d, "bad pattern: %s", why);
        fail(r, req, "BAD_REQUEST", d);
        return;
    }
    /* each token can cost a node of the index: this bounds its memory */
    size_t tokens = pattern_tokens(pat->value, pat->value_len);
    if (tokens > r->cfg.max_pattern_tokens) {
        limit_exceeded(r, req, &r->stats.subscriptions_refused,
                       "%zu tokens is over the broker's limit of %zu (max_pattern_tokens)", tokens,
                       r->cfg.max_pattern_tokens);
        return;
    }
    if (!permit(r, p, req, ACT_SUBSCRIBE, pat->value, pat->value_len))
        return;
    if (!p->subs.slots && amp_strmap_init(&p->subs)) {
        fail(r, req, "UNKNOWN", "Unknown Error");
        return;
    }
    if (amp_strmap_get(&p->subs, pat->value, pat->value_len)) { /* already: harmless */
        sent(r, amp_request_answer(req, NULL, 0));
        return;
    }
    if (p->subs.count >= r->cfg.max_subscriptions) {
        limit_exceeded(r, req, &r->stats.subscriptions_refused,
                       "this connection has %zu subscriptions, the broker's limit "
                       "(max_subscriptions)", p->subs.count);
        return;
    }
    if (r->auth && p->owner && p->owner->subs >= r->cfg.max_subscriptions_per_user) {
        limit_exceeded(r, req, &r->stats.subscriptions_refused,
                       "%s holds %zu subscriptions over all its connections, the broker's limit "
                       "(max_subscriptions_per_user)", owner_label(p), p->owner->subs);
        return;
    }
    if (subindex_count(r->subs) >= r->cfg.max_subscriptions_total) {
        limit_exceeded(r, req, &r->stats.subscriptions_refused,
                       "the broker holds %zu subscriptions, its limit (max_subscriptions_total)",
                       subindex_count(r->subs));
        return;
    }
    struct subscription *sub = malloc(sizeof *sub + pat->value_len);
    if (!sub || subindex_add(r->subs, pat->value, pat->value_len, &sub->link, p)) {
        free(sub);
        fail(r, req, "UNKNOWN", "Unknown Error");
        return;
    }
    if (amp_strmap_put(&p->subs, pat->value, pat->value_len, sub)) {
        subindex_remove(r->subs, &sub->link);
        free(sub);
        fail(r, req, "UNKNOWN", "Unknown Error");
        return;
    }
    sub->peer = p;
    sub->len = pat->value_len;
    memcpy(sub->pattern, pat->value, sub->len);
    if (p->owner)
        p->owner->subs++;
    sent(r, amp_request_answer(req, NULL, 0));
}

/* Remove one of p's subscriptions everywhere. */
static void remove_sub(router *r, struct peer *p, const uint8_t *pattern, size_t len)
{
    struct subscription *sub = amp_strmap_remove(&p->subs, pattern, len);
    if (sub) {
        subindex_remove(r->subs, &sub->link);
        free(sub);
        if (p->owner)
            p->owner->subs--;
    }
}

static void unlink_each(const uint8_t *key, size_t n, void *value, void *ud)
{
    router *r = ud;
    subindex_remove(r->subs, &((struct subscription *)value)->link);
}

/* Every subscription of a peer that is going away. */
static void remove_all_subs(router *r, struct peer *p)
{
    if (!p->subs.slots)
        return;
    amp_strmap_foreach(&p->subs, unlink_each, r);
    amp_strmap_free(&p->subs); /* frees each subscription */
}

static void do_unsubscribe(router *r, struct peer *p, amp_request *req, const amp_box *box)
{
    const amp_pair *pat = arg(box, "pattern");
    if (pat && p->subs.slots && amp_strmap_get(&p->subs, pat->value, pat->value_len)) {
        remove_sub(r, p, pat->value, pat->value_len);
        sent(r, amp_request_answer(req, NULL, 0));
        return;
    }
    fail(r, req, "NOT_SUBSCRIBED", "this connection has no such subscription");
}

struct listing {
    router *r;
    struct peer *p;
    amp_buf *out;
};

static void list_command(const uint8_t *key, size_t n, void *value, void *ud)
{
    struct command *cmd = value;
    struct listing *l = ud;
    if (l->out->len > AMP_MAX_VALUE_LEN)
        return; /* too large already: the answer is TOO_LARGE; skip the ACL checks */
    /* with auth, a peer sees what it may call or serve, nothing else */
    if (l->r->auth && !auth_allowed(l->r->auth, l->p->who, ACT_CALL, key, n) &&
        !auth_allowed(l->r->auth, l->p->who, ACT_REGISTER, key, n))
        return;
    char num[AMP_INT_MAX_LEN];
    amp_encode_pair(l->out, (const uint8_t *)"command", 7, key, n);
    amp_encode_pair_str(l->out, "policy", policy_names[cmd->policy]);
    amp_encode_pair(l->out, (const uint8_t *)"providers", 9, (uint8_t *)num,
                    amp_int_format((int64_t)cmd->n, num));
    amp_encode_end(l->out);
}

static void do_commands(router *r, struct peer *p, amp_request *req)
{
    amp_buf list;
    amp_buf_init(&list);
    struct listing l = {r, p, &list};
    amp_strmap_foreach(&r->commands, list_command, &l);
    if (list.len > AMP_MAX_VALUE_LEN) {
        amp_buf_free(&list);
        fail(r, req, "TOO_LARGE", "the command list is over 65535 bytes");
        return;
    }
    amp_pair pr = {(const uint8_t *)"commands", 8, list.data ? list.data : (const uint8_t *)"",
                   list.len};
    sent(r, amp_request_answer(req, &pr, 1));
    amp_buf_free(&list);
}

/* The counters of amp.Stats and of the metrics endpoint, in one place. */
struct counter_row {
    const char *name, *help;
    uint64_t value;
    int gauge; /* a level now, not a count since the start */
};

#define MAX_COUNTERS 64

static uint64_t listeners_shed(const router *r)
{
    uint64_t n = r->stats.listener_shed_gone;
    for (int i = 0; i < r->nlisteners; i++)
        if (r->listeners[i])
            n += amp_listener_shed(r->listeners[i]);
    return n;
}

static size_t stats_table(router *r, struct counter_row *t)
{
    uint64_t in = r->stats.bytes_in_closed, out = r->stats.bytes_out_closed, late = 0;
    for (struct peer *p = r->peers; p; p = p->next) {
        in += amp_conn_bytes_in(p->conn);
        out += amp_conn_bytes_out(p->conn);
        late += amp_session_late_answers(amp_conn_session(p->conn));
    }
    struct counter_row all[] = {
        {"connections", "connections open now", r->npeers, 1},
        {"connections_total", "connections accepted since start", r->stats.connections_total, 0},
        {"connections_refused", "connections refused over max_connections",
         r->stats.connections_refused, 0},
        {"calls_routed", "calls forwarded to a provider", r->stats.calls_routed, 0},
        {"calls_answered", "forwarded calls answered by their provider", r->stats.calls_answered,
         0},
        {"calls_in_flight", "forwarded calls not answered yet", r->inflight, 1},
        {"calls_refused", "calls refused over max_calls_in_flight", r->stats.calls_refused, 0},
        {"protocol_errors", "connections closed for bad bytes or a limit",
         r->stats.protocol_errors, 0},
        {"logins", "successful logins", r->stats.logins, 0},
        {"logins_failed", "failed logins", r->stats.logins_failed, 0},
        {"login_timeouts", "connections closed for not logging in", r->stats.login_timeouts, 0},
        {"logins_busy", "logins refused (LOGIN_BUSY) over max_pending_logins, globally or per "
         "address", r->stats.logins_busy, 0},
        {"logins_throttled", "logins refused (LOGIN_THROTTLED) after recent failures of the "
         "user or address", r->stats.logins_throttled, 0},
        {"logins_over_user_cap", "logins refused over max_connections_per_user",
         r->stats.logins_over_user_cap, 0},
        {"cert_identities_refused", "verified client certificates that named no user",
         r->stats.cert_identities_refused, 0},
        {"credentials_revoked", "connections closed by a reload: their credential no longer "
         "verifies", r->stats.credentials_revoked, 0},
        {"denials", "requests refused by the ACL", r->stats.denials, 0},
        {"slow_connections_closed", "connections closed for output held over the soft cap",
         r->stats.slow_connections_closed, 0},
        {"events_published", "calls without _ask received", r->stats.events_published, 0},
        {"events_delivered", "events queued for subscribers", r->stats.events_delivered, 0},
        {"events_dropped", "events not delivered to a slow subscriber", r->stats.events_dropped,
         0},
        {"slow_consumers_disconnected", "subscribers disconnected as slow consumers",
         r->stats.slow_consumers_disconnected, 0},
        {"late_answers_dropped", "answers that arrived after the broker's deadline",
         r->stats.late_answers_dropped + late, 0},
        {"answers_to_gone_callers", "answers whose caller had disconnected",
         r->stats.answers_to_gone_callers, 0},
        {"answers_failed", "answers and errors that could not be queued (output full)",
         r->stats.answers_failed, 0},
        {"commands", "entries in the command table now", r->commands.count, 1},
        {"subscriptions", "subscriptions now", subindex_count(r->subs), 1},
        {"registrations_refused", "registrations refused over max_registrations, "
         "max_commands or max_command_name", r->stats.registrations_refused, 0},
        {"subscriptions_refused", "subscriptions refused over max_subscriptions, "
         "max_subscriptions_total, max_pattern_tokens or max_command_name",
         r->stats.subscriptions_refused, 0},
        {"log_lines_suppressed", "log lines dropped by the per-peer rate limit",
         log_lines_suppressed, 0},
        {"queued_bytes", "unsent output, partial input boxes and unanswered calls held now (max_queued_bytes)",
         queued_bytes(r), 1},
        {"budget_events_dropped", "events dropped over max_queued_bytes",
         r->stats.budget_events_dropped, 0},
        {"budget_calls_refused", "calls refused (OVERLOADED) over max_queued_bytes",
         r->stats.budget_calls_refused, 0},
        {"budget_connections_closed", "connections holding the most closed over "
         "max_queued_bytes", r->stats.budget_connections_closed, 0},
        {"box_timeouts", "connections closed for a box not completed within box_timeout",
         r->stats.box_timeouts, 0},
        {"metrics_refused", "metrics clients turned away: 16 served already, or out of "
         "descriptors", r->stats.metrics_refused, 0},
        {"connections_shed", "connections closed at accept: the process was out of "
         "descriptors", listeners_shed(r), 0},
        {"bytes_in", "AMP bytes received", in, 0},
        {"bytes_out", "AMP bytes sent", out, 0},
        {"uptime_seconds", "seconds since start", (uint64_t)(ev_now(r->loop) - r->started), 1},
    };
    _Static_assert(sizeof all / sizeof all[0] <= MAX_COUNTERS, "raise MAX_COUNTERS");
    memcpy(t, all, sizeof all);
    return sizeof all / sizeof all[0];
}

/* The error counts, by code: the broker's own codes, the close reasons,
 * then "other". Calls fn for each nonzero count. */
static void each_error(router *r, void (*fn)(const char *code, uint64_t n, void *ud), void *ud)
{
    for (size_t i = 0; i < N_BROKER_CODES; i++)
        if (r->stats.codes[i])
            fn(broker_codes[i], r->stats.codes[i], ud);
    for (size_t i = 0; i < MAX_CLOSE_REASONS && r->stats.closes[i].n; i++)
        fn(amp_errname(r->stats.closes[i].reason), r->stats.closes[i].n, ud);
    if (r->stats.other_codes)
        fn("other", r->stats.other_codes, ud);
}

static void error_entry(const char *code, uint64_t n, void *ud)
{
    amp_buf *out = ud;
    char c[AMP_INT_MAX_LEN];
    amp_encode_pair_str(out, "code", code);
    amp_encode_pair(out, (const uint8_t *)"count", 5, (uint8_t *)c,
                    amp_int_format((int64_t)n, c));
    amp_encode_end(out);
}

static void do_stats(router *r, amp_request *req)
{
    struct counter_row t[MAX_COUNTERS];
    size_t n = stats_table(r, t);
    char num[MAX_COUNTERS][AMP_INT_MAX_LEN];
    amp_pair pairs[MAX_COUNTERS + 1];
    for (size_t i = 0; i < n; i++) {
        pairs[i].key = (const uint8_t *)t[i].name;
        pairs[i].key_len = strlen(t[i].name);
        pairs[i].value = (const uint8_t *)num[i];
        pairs[i].value_len = amp_int_format((int64_t)t[i].value, num[i]);
    }
    amp_buf errors;
    amp_buf_init(&errors);
    each_error(r, error_entry, &errors);
    pairs[n].key = (const uint8_t *)"errors";
    pairs[n].key_len = 6;
    pairs[n].value = errors.data ? errors.data : (const uint8_t *)"";
    pairs[n].value_len = errors.len;
    sent(r, amp_request_answer(req, pairs, n + 1));
    amp_buf_free(&errors);
}

static void error_metric(const char *code, uint64_t n, void *ud)
{
    char line[160]; /* codes are the broker's own names: printable, short */
    int len = snprintf(line, sizeof line, "amp_broker_errors{code=\"%s\"} %llu\n", code,
                       (unsigned long long)n);
    amp_buf_append(ud, (const uint8_t *)line, (size_t)len);
}

void router_count_listeners(router *r, amp_listener *const *listeners, int n)
{
    r->listeners = listeners;
    r->nlisteners = n;
}

void router_listener_gone(router *r, const amp_listener *l)
{
    r->stats.listener_shed_gone += amp_listener_shed(l);
}

void router_metrics_refused(router *r)
{
    r->stats.metrics_refused++;
}

void router_metrics(router *r, amp_buf *out)
{
    struct counter_row t[MAX_COUNTERS];
    size_t n = stats_table(r, t);
    char line[512];
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(line, sizeof line, "# HELP amp_broker_%s %s\n# TYPE amp_broker_%s %s\n"
                         "amp_broker_%s %llu\n", t[i].name, t[i].help, t[i].name,
                         t[i].gauge ? "gauge" : "counter", t[i].name,
                         (unsigned long long)t[i].value);
        amp_buf_append(out, (const uint8_t *)line, (size_t)k);
    }
    const char *head = "# HELP amp_broker_errors errors answered and connections closed, by "
                       "code (other: codes relayed from providers)\n"
                       "# TYPE amp_broker_errors counter\n";
    amp_buf_append(out, (const uint8_t *)head, strlen(head));
    each_error(r, error_metric, out);
}

/* ---- dispatch --------------------------------------------------------------------- */

/* ---- logins ----------------------------------------------------------------------- */

/* Logged-in connections per user (not anonymous ones), for
 * max_connections_per_user. */
static size_t *user_conns(router *r, const char *name, int create)
{
    size_t *n = amp_strmap_get(&r->user_conns, (const uint8_t *)name, strlen(name));
    if (!n && create && (n = calloc(1, sizeof *n)) &&
        amp_strmap_put(&r->user_conns, (const uint8_t *)name, strlen(name), n)) {
        free(n);
        n = NULL;
    }
    return n;
}

static void uncount_user(router *r, struct peer *p)
{
    size_t *n = p->counted ? user_conns(r, p->user, 0) : NULL;
    p->counted = 0;
    if (n && --*n == 0)
        free(amp_strmap_remove(&r->user_conns, (const uint8_t *)p->user, strlen(p->user)));
}

/* Would p logging in as `name` exceed max_connections_per_user? */
static int over_user_cap(router *r, struct peer *p, const char *name)
{
    if (!r->cfg.max_connections_per_user)
        return 0;
    size_t *n = user_conns(r, name, 0), have = n ? *n : 0;
    if (p->counted && !strcmp(p->user, name))
        have--; /* logging in again as itself */
    return have >= r->cfg.max_connections_per_user;
}

/* Takes over *cred. */
static void logged_in(struct peer *p, const struct identity *id, auth_credential *cred,
                      const char *how)
{
    router *r = p->r;
    uncount_user(r, p);
    p->who = id;
    free(p->user);
    p->user = strdup(id->name);
    auth_credential_clear(&p->cred);
    p->cred = *cred;
    memset(cred, 0, sizeof *cred);
    if (p->user && p->cred.method != AUTH_BY_ANONYMOUS) {
        size_t *n = user_conns(r, p->user, 1);
        if (n) {
            ++*n;
            p->counted = 1;
        }
        set_owner(r, p, 'u', p->user, strlen(p->user));
    } else {
        set_owner(r, p, 'a', p->source, p->source_len);
    }
    ev_timer_stop(r->loop, &p->login_timer);
    amp_session_set_limits(amp_conn_session(p->conn), &r->cfg.limits);
    log_peer(&r->conn_log, LOG_INFO, "peer %llu (%s) is %s (%s)", (unsigned long long)p->id,
             amp_conn_peer_name(p->conn), id->name, how);
}

static void login_failed(router *r, struct peer *p, amp_request *req, const amp_pair *user)
{
    r->stats.logins_failed++;
    count_error(r, (const uint8_t *)"AUTH_FAILED", 11);
    char name[LOG_FIELD_BUF];
    log_peer(&p->log, LOG_WARN, "peer %llu (%s): login failed%s%s", (unsigned long long)p->id,
             amp_conn_peer_name(p->conn), user ? " for " : "",
             user ? log_field(name, user->value, user->value_len) : "");
    amp_request_error(req, "AUTH_FAILED", "bad credentials", 1); /* and close */
}

/* The identity is right, the connection cap decides; takes over *cred. */
static void login_accepted(router *r, struct peer *p, amp_request *req,
                           const struct identity *id, auth_credential *cred, const char *how)
{
    if (over_user_cap(r, p, id->name)) {
        auth_credential_clear(cred);
        r->stats.logins_over_user_cap++;
        log_msg(LOG_WARN, "peer %llu (%s): %s has max_connections_per_user (%zu) open, "
                "login refused", (unsigned long long)p->id, amp_conn_peer_name(p->conn),
                id->name, r->cfg.max_connections_per_user);
        count_error(r, (const uint8_t *)"TOO_MANY_CONNECTIONS", 20);
        amp_request_error(req, "TOO_MANY_CONNECTIONS",
                          "this user has max_connections_per_user connections open", 1);
        return;
    }
    r->stats.logins++;
    logged_in(p, id, cred, how);
    amp_pair who = {(const uint8_t *)"identity", 8, (const uint8_t *)id->name, strlen(id->name)};
    amp_request_answer(req, &who, 1);
}

static void login_run(hasher_task *t)
{
    auth_password_run(&((struct login *)t)->job);
}

/* Back on the loop: answer. A peer that left meanwhile is not answered
 * (nor counted): its request is only released, which answering a request of
 * a closed connection does. */
static void login_done(hasher_task *t)
{
    struct login *l = (struct login *)t;
    router *r = l->r;
    if (l->prev)
        l->prev->next = l->next;
    else
        r->logins = l->next;
    if (l->next)
        l->next->prev = l->prev;
    struct peer *p = l->peer;
    if (p) {
        p->login = NULL;
        auth_credential cred = {0};
        const struct identity *id =
            t->ran && r->auth ? auth_password_finish(r->auth, &l->job, &cred) : NULL;
        amp_pair user = {(const uint8_t *)"username", 8, l->user, l->user_len};
        if (!id) {
            double now = ev_now(r->loop);
            throttle_failed(r->fail_users, l->user, l->user_len, now);
            throttle_failed(r->fail_sources, l->source, l->source_len, now);
            login_failed(r, p, l->req, &user);
        } else {
            throttle_succeeded(r->fail_users, l->user, l->user_len);
            login_accepted(r, p, l->req, id, &cred, "password");
        }
    } else {
        amp_request_error(l->req, "AUTH_FAILED", "the connection is gone", 0);
    }
    auth_password_release(&l->job);
    free(l->user);
    free(l);
}

static size_t logins_from(router *r, const struct peer *p)
{
    size_t n = 0;
    for (struct login *l = r->logins; l; l = l->next)
        n += l->source_len == p->source_len && !memcmp(l->source, p->source, p->source_len);
    return n;
}

static void answer_held(router *r, struct peer *p)
{
    /* whole seconds, rounded up and at least 1 (a login held for the whole
     * wait would read "0 s"), so that a retry after them is never early */
    unsigned long secs = (unsigned long)p->held_wait;
    if (secs < p->held_wait || secs < 1)
        secs++;
    char d[96];
    snprintf(d, sizeof d, "too many failed logins lately: try again in %lu s", secs);
    amp_request *req = p->held;
    p->held = NULL;
    fail(r, req, "LOGIN_THROTTLED", d);
}

static void hold_done(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct peer *p = w->data;
    answer_held(p->r, p);
}

/* 1 if the user or the address failed too often lately: the login is then
 * refused with LOGIN_THROTTLED, after holding it for up to THROTTLE_HOLD
 * seconds of the wait (and half the time left to log in), so that a client
 * retrying at once gains nothing and a flood of them holds connections
 * instead of churning through them. */
static int throttled(router *r, struct peer *p, amp_request *req, int token,
                     const amp_pair *user)
{
    double now = ev_now(r->loop);
    double wait = throttle_wait(token ? r->fail_token_sources : r->fail_sources, p->source,
                                p->source_len, now);
    if (user) {
        double w = throttle_wait(r->fail_users, user->value, user->value_len, now);
        wait = w > wait ? w : wait;
    }
    if (wait <= 0)
        return 0;
    r->stats.logins_throttled++;
    log_peer(&p->log, LOG_DEBUG, "peer %llu (%s): login throttled for %.1f s",
             (unsigned long long)p->id, amp_conn_peer_name(p->conn), wait);
    double hold = wait < THROTTLE_HOLD ? wait : THROTTLE_HOLD;
    if (ev_is_active(&p->login_timer)) { /* answered well before login_timeout */
        double left = ev_timer_remaining(r->loop, &p->login_timer) / 2;
        hold = left < hold ? left : hold;
    }
    p->held = req;
    p->held_wait = wait - hold;
    ev_timer_set(&p->hold_timer, hold, 0);
    ev_timer_start(r->loop, &p->hold_timer);
    return 1;
}

static void login_busy(router *r, struct peer *p, amp_request *req, const char *why)
{
    r->stats.logins_busy++;
    log_peer(&p->log, LOG_DEBUG, "peer %llu (%s): login refused: %s", (unsigned long long)p->id,
             amp_conn_peer_name(p->conn), why);
    fail(r, req, "LOGIN_BUSY", why);
}

/* Hash on the worker pool, within the global and per-address bounds. */
static void password_login(router *r, struct peer *p, amp_request *req, const amp_pair *user,
                           const amp_pair *pw)
{
    if (hasher_pending(r->hasher) >= r->cfg.max_pending_logins) {
        login_busy(r, p, req, "too many logins in progress: try again later");
        return;
    }
    if (logins_from(r, p) >= r->cfg.max_pending_logins_per_address) {
        login_busy(r, p, req, "too many logins in progress from this address: try again later");
        return;
    }
    struct login *l = calloc(1, sizeof *l);
    if (l && (l->user = malloc(user->value_len + 1)))
        memcpy(l->user, user->value, l->user_len = user->value_len);
    if (!l || !l->user ||
        auth_password_prepare(r->auth, user->value, user->value_len, pw->value, pw->value_len,
                              &l->job)) {
        if (l)
            free(l->user);
        free(l);
        fail(r, req, "UNKNOWN", "Unknown Error");
        return;
    }
    l->task.run = login_run;
    l->task.done = login_done;
    l->r = r;
    l->peer = p;
    l->req = req;
    memcpy(l->source, p->source, p->source_len);
    l->source_len = p->source_len;
    l->next = r->logins;
    if (r->logins)
        r->logins->prev = l;
    r->logins = l;
    p->login = l;
    hasher_submit(r->hasher, &l->task);
}

static void do_login(router *r, struct peer *p, amp_request *req, const amp_box *box)
{
    if (!r->auth) {
        amp_request_answer(req, NULL, 0); /* nothing to log in to */
        return;
    }
    if (p->login || p->held) {
        login_busy(r, p, req, "a login is already in progress on this connection");
        return;
    }
    const amp_pair *tok = arg(box, "token"), *user = arg(box, "username"),
                   *pw = arg(box, "password");
    if (throttled(r, p, req, tok != NULL, tok ? NULL : user))
        return;
    if (!tok && user && pw) {
        password_login(r, p, req, user, pw);
        return;
    }
    auth_credential cred = {0};
    const struct identity *id = tok ? auth_token(r->auth, tok->value, tok->value_len, &cred)
                                    : NULL;
    if (!id) {
        throttle_failed(r->fail_token_sources, p->source, p->source_len, ev_now(r->loop));
        login_failed(r, p, req, user);
        return;
    }
    login_accepted(r, p, req, id, &cred, "token");
}

static void on_call(amp_session *s, amp_request *req, const amp_box *box, void *ud)
{
    struct peer *p = ud;
    router *r = p->r;
    const amp_pair *c = amp_request_command(req);
    if (cmd_is(c, "amp.Login")) {
        do_login(r, p, req, box);
        return;
    }
    if (r->auth && !p->who) {
        fail(r, req, "AUTH_REQUIRED", "log in first with amp.Login");
        return;
    }
    if (c->value_len >= 4 && !memcmp(c->value, "amp.", 4)) {
        if ((cmd_is(c, "amp.Commands") || cmd_is(c, "amp.Stats")) &&
            !permit(r, p, req, ACT_CALL, c->value, c->value_len))
            return;
        if (cmd_is(c, "amp.Register"))
            do_register(r, p, req, box);
        else if (cmd_is(c, "amp.Unregister"))
            do_unregister(r, p, req, box);
        else if (cmd_is(c, "amp.Subscribe"))
            do_subscribe(r, p, req, box);
        else if (cmd_is(c, "amp.Unsubscribe"))
            do_unsubscribe(r, p, req, box);
        else if (cmd_is(c, "amp.Commands"))
            do_commands(r, p, req);
        else if (cmd_is(c, "amp.Stats"))
            do_stats(r, req);
        else
            unhandled(r, req);
        return;
    }
    if (r->draining) {
        fail(r, req, "SHUTTING_DOWN", "the broker is shutting down");
        return;
    }
    if (!amp_request_wants_answer(req))
        publish(r, p, req, box);
    else
        route_call(r, p, req, box);
}

/* The peer is going: its password check, if one runs, is dropped when it
 * comes back; its user count and credential go. */
static void forget_login(router *r, struct peer *p)
{
    ev_timer_stop(r->loop, &p->hold_timer);
    if (p->held) /* released: the connection is gone */
        amp_request_error(p->held, "LOGIN_THROTTLED", "the connection is gone", 0);
    p->held = NULL;
    if (p->login)
        p->login->peer = NULL;
    p->login = NULL;
    uncount_user(r, p);
    auth_credential_clear(&p->cred);
    free(p->user);
    p->user = NULL;
}

static void on_closed(amp_conn *c, int reason, void *ud)
{
    struct peer *p = ud;
    router *r = p->r;
    /* forwarded calls to p have all completed (PROVIDER_LOST) by now */
    release_owner(r, p);
    for (size_t i = 0; i < p->nregs; i++)
        drop_provider(r, p->regs[i], p);
    free(p->regs);
    remove_all_subs(r, p);
    r->stats.bytes_in_closed += amp_conn_bytes_in(c);
    r->stats.bytes_out_closed += amp_conn_bytes_out(c);
    r->stats.late_answers_dropped += amp_session_late_answers(amp_conn_session(c));
    if (reason != AMP_E_CLOSED) {
        /* bad bytes, limits, TLS failures and timeouts, socket errors (a
         * half-open peer found by keepalive), counted under the error's name */
        if (amp_err_is_protocol(reason) || amp_err_is_limit(reason))
            r->stats.protocol_errors++;
        if (reason == AMP_E_TIMEOUT) /* a box not completed within box_timeout */
            r->stats.box_timeouts++;
        count_close(r, reason);
    }
    if (p->prev)
        p->prev->next = p->next;
    else
        r->peers = p->next;
    if (p->next)
        p->next->prev = p->prev;
    r->npeers--;
    log_peer(&r->conn_log, reason == AMP_E_CLOSED ? LOG_DEBUG : LOG_INFO,
             "peer %llu (%s) gone: %s%s%s", (unsigned long long)p->id, amp_conn_peer_name(c),
             amp_strerror(reason), *amp_conn_error_text(c) ? ": " : "",
             amp_conn_error_text(c));
    log_peer_flush(&p->log);
    ev_timer_stop(r->loop, &p->login_timer);
    forget_login(r, p);
    free(p);
}

static void login_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct peer *p = w->data;
    p->r->stats.login_timeouts++;
    log_msg(LOG_WARN, "peer %llu (%s): no login within %g s, closing", (unsigned long long)p->id,
            amp_conn_peer_name(p->conn), p->r->cfg.login_timeout);
    amp_conn_abort(p->conn);
}

/* TLS is up: a verified client certificate may name the user, by the
 * configured rule (certid.h) applied to its parsed names. */
static void on_ready(amp_conn *c, void *ud)
{
    struct peer *p = ud;
    router *r = p->r;
    const cert_rule *rule = &r->cfg.cert_identity;
    const uint8_t *der;
    size_t len;
    if (!r->auth || rule->mode == CERT_NONE ||
        (p->who && p->cred.method != AUTH_BY_ANONYMOUS) ||
        amp_conn_peer_certificate_der(c, &der, &len))
        return;
    char name[256];
    const char *why = NULL;
    const struct identity *id = NULL;
    if (!cert_identity_name(rule, der, len, name, sizeof name, &why) &&
        !(id = auth_user(r->auth, name)))
        why = "no such user";
    if (!id) {
        r->stats.cert_identities_refused++;
        log_peer(&p->log, LOG_WARN, "peer %llu (%s): its client certificate names no user "
                 "(cert_identity = %s): %s", (unsigned long long)p->id, amp_conn_peer_name(c),
                 cert_mode_name(rule->mode), why);
        return;
    }
    if (over_user_cap(r, p, id->name)) {
        r->stats.logins_over_user_cap++;
        log_msg(LOG_WARN, "peer %llu (%s): %s has max_connections_per_user (%zu) open, "
                "closing", (unsigned long long)p->id, amp_conn_peer_name(c), id->name,
                r->cfg.max_connections_per_user);
        amp_conn_abort(c);
        return;
    }
    auth_credential cred = {0};
    cred.method = AUTH_BY_CERT;
    cred.cert_mode = (int)rule->mode;
    logged_in(p, id, &cred, "client certificate");
}

/* The key of per-address login limits: the IPv4 address, the /64 of an
 * IPv6 one (one host holds many of those), the uid of a UNIX peer. */
static void source_key(struct peer *p)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = amp_conn_fd(p->conn);
    p->source[0] = '?';
    p->source_len = 1;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        p->source[0] = '4';
        memcpy(p->source + 1, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        p->source_len = 5;
    } else if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        int v4 = IN6_IS_ADDR_V4MAPPED(a);
        p->source[0] = v4 ? '4' : '6';
        memcpy(p->source + 1, v4 ? a->s6_addr + 12 : a->s6_addr, v4 ? 4 : 8);
        p->source_len = v4 ? 5 : 9;
    } else if (ss.ss_family == AF_UNIX) {
        struct ucred uc;
        socklen_t ul = sizeof uc;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0) {
            p->source[0] = 'u';
            memcpy(p->source + 1, &uc.uid, sizeof uc.uid);
            p->source_len = 1 + sizeof uc.uid;
        }
    }
}

static void anonymous_login(struct peer *p, const struct identity *id)
{
    auth_credential cred = {0};
    cred.method = AUTH_BY_ANONYMOUS;
    logged_in(p, id, &cred, "anonymous");
}

void router_accept(router *r, amp_conn *c)
{
    if (r->cfg.max_connections && r->npeers >= r->cfg.max_connections) {
        r->stats.connections_refused++;
        log_peer(&r->refusals_log, LOG_WARN, "refusing %s: %zu connections open "
                 "(max_connections)", amp_conn_peer_name(c), r->npeers);
        amp_conn_abort(c);
        return;
    }
    struct peer *p = calloc(1, sizeof *p);
    if (!p) {
        amp_conn_abort(c);
        return;
    }
    p->r = r;
    p->conn = c;
    p->id = ++r->next_peer_id;
    p->log.id = p->id;
    source_key(p);
    set_owner(r, p, 'a', p->source, p->source_len);
    p->next = r->peers;
    if (r->peers)
        r->peers->prev = p;
    r->peers = p;
    r->npeers++;
    r->stats.connections_total++;
    amp_conn_callbacks cb = {on_ready, on_closed, NULL};
    amp_conn_set_callbacks(c, &cb, p);
    amp_session_serve_fallback(amp_conn_session(c), on_call, p);
    ev_timer_init(&p->login_timer, login_timeout, r->cfg.login_timeout, 0);
    p->login_timer.data = p;
    ev_timer_init(&p->hold_timer, hold_done, 0, 0);
    p->hold_timer.data = p;
    if (r->auth) {
        if (auth_anonymous(r->auth))
            anonymous_login(p, auth_anonymous(r->auth));
        else { /* tight caps and a deadline until it logs in */
            amp_session_set_limits(amp_conn_session(c), &r->cfg.login_limits);
            ev_timer_start(r->loop, &p->login_timer);
        }
    }
    if (r->cfg.keepalive > 0) { /* finds half-open peers; UNIX sockets ignore it */
        int fd = amp_conn_fd(c), on = 1, idle = (int)r->cfg.keepalive;
        int intvl = idle / 3 > 0 ? idle / 3 : 1, cnt = 3;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    }
    log_msg(LOG_DEBUG, "peer %llu (%s) connected", (unsigned long long)p->id,
            amp_conn_peer_name(c));
}

amp_usage *router_usage(router *r)
{
    return &r->usage;
}

size_t router_connections(const router *r)
{
    return r->npeers;
}

/* After a reload: registrations the ACL no longer allows are dropped. */
static void recheck_registrations(router *r, struct peer *p)
{
    for (size_t i = p->nregs; i-- > 0;) {
        struct command *cmd = p->regs[i];
        if (auth_allowed(r->auth, p->who, ACT_REGISTER, cmd->name, cmd->name_len))
            continue;
        char f[LOG_FIELD_BUF];
        log_msg(LOG_INFO, "peer %llu: registration of %s revoked", (unsigned long long)p->id,
                log_field(f, cmd->name, cmd->name_len));
        forget_registration(p, i);
        drop_provider(r, cmd, p);
    }
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
    if (!auth_allowed(rv->r->auth, rv->p->who, ACT_SUBSCRIBE, key, n))
        rv->v[rv->n++] = value;
}

/* After a reload: subscriptions the ACL no longer allows are dropped. */
static void recheck_subscriptions(router *r, struct peer *p)
{
    if (!p->subs.count)
        return;
    struct revoked rv = {r, p, malloc(p->subs.count * sizeof *rv.v), 0};
    if (!rv.v) { /* cannot check: do not keep what may be revoked */
        log_msg(LOG_ERROR, "peer %llu: out of memory re-checking subscriptions, closing",
                (unsigned long long)p->id);
        amp_conn_abort(p->conn);
        return;
    }
    amp_strmap_foreach(&p->subs, collect_revoked, &rv);
    for (size_t i = 0; i < rv.n; i++) {
        log_msg(LOG_INFO, "peer %llu: subscription revoked", (unsigned long long)p->id);
        remove_sub(r, p, rv.v[i]->pattern, rv.v[i]->len);
    }
    free(rv.v);
}

static const char *revoked_why(const auth_credential *c)
{
    switch (c->method) {
    case AUTH_BY_PASSWORD: return "user or password changed";
    case AUTH_BY_TOKEN: return "token removed or changed";
    case AUTH_BY_CERT: return "user removed";
    case AUTH_BY_ANONYMOUS: return "anonymous access removed";
    default: return "no credential";
    }
}

/* The login worker pool and the failure tables, made when authentication
 * is first installed (a broker without it needs no threads). */
static int start_logins(router *r)
{
    if (r->hasher)
        return 0;
    char err[256];
    r->fail_users = throttle_new(THROTTLE_SLOTS, r->cfg.login_throttle_after,
                                 r->cfg.login_throttle_max);
    r->fail_sources = throttle_new(THROTTLE_SLOTS, r->cfg.login_throttle_after,
                                   r->cfg.login_throttle_max);
    r->fail_token_sources = throttle_new(THROTTLE_SLOTS, r->cfg.login_throttle_after,
                                         r->cfg.login_throttle_max);
    if (!r->fail_users || !r->fail_sources || !r->fail_token_sources) {
        log_msg(LOG_ERROR, "no memory for the login failure tables");
        return -1;
    }
    if (!(r->hasher = hasher_new(r->loop, r->cfg.login_workers, err, sizeof err))) {
        log_msg(LOG_ERROR, "login workers: %s", err);
        return -1;
    }
    return 0;
}

int router_set_auth(router *r, auth *a)
{
    if (a && start_logins(r)) {
        auth_free(a);
        return -1;
    }
    auth *old = r->auth;
    r->auth = a;
    for (struct peer *p = r->peers, *next; p; p = next) {
        next = p->next;
        if (!a) {
            p->who = NULL;
            continue;
        }
        if (!p->user) {
            if (auth_anonymous(a))
                anonymous_login(p, auth_anonymous(a));
            else if (!ev_is_active(&p->login_timer))
                ev_timer_start(r->loop, &p->login_timer);
            continue;
        }
        /* what it logged in with must still verify: the same password
         * hash, the same token, the user still there */
        p->who = auth_recheck(a, p->user, &p->cred);
        if (!p->who) {
            r->stats.credentials_revoked++;
            log_msg(LOG_WARN, "peer %llu (%s): %s is no longer allowed (%s), disconnecting",
                    (unsigned long long)p->id, amp_conn_peer_name(p->conn), p->user,
                    revoked_why(&p->cred));
            amp_conn_abort(p->conn); /* on_closed unlinks and frees p */
            continue;
        }
        recheck_registrations(r, p);
        recheck_subscriptions(r, p);
    }
    auth_free(old);
    return 0;
}

void router_drain(router *r)
{
    r->draining = 1;
}

size_t router_inflight(const router *r)
{
    return r->inflight;
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
        if (pending <= r->cfg.output_soft_cap) {
            p->over_soft_since = 0;
            continue;
        }
        if (!p->over_soft_since) {
            p->over_soft_since = now;
            continue;
        }
        if (now - p->over_soft_since >= r->cfg.output_soft_seconds) {
            r->stats.slow_connections_closed++;
            log_msg(LOG_WARN, "peer %llu (%s): %zu bytes unread for %g s, closing",
                    (unsigned long long)p->id, amp_conn_peer_name(p->conn), pending,
                    now - p->over_soft_since);
            amp_conn_abort(p->conn);
        }
    }
}

router *router_new(struct ev_loop *loop, const router_config *cfg)
{
    router *r = calloc(1, sizeof *r);
    if (!r || amp_strmap_init(&r->commands)) {
        free(r);
        return NULL;
    }
    if (amp_strmap_init(&r->user_conns) || amp_strmap_init(&r->owners) ||
        !(r->subs = subindex_new())) {
        amp_strmap_free(&r->user_conns); /* (nothing if its init failed) */
        amp_strmap_free(&r->owners);
        amp_strmap_free(&r->commands);
        free(r);
        return NULL;
    }
    r->conn_log.name = "connections";
    r->conn_log.burst = CONN_LOG_BURST;
    r->conn_log.per_second = CONN_LOG_PER_SECOND;
    r->loop = loop;
    r->cfg = *cfg;
    /* zeroes: no limit (a value can never be longer than this) */
    if (!r->cfg.max_registrations)
        r->cfg.max_registrations = SIZE_MAX;
    if (!r->cfg.max_commands)
        r->cfg.max_commands = SIZE_MAX;
    if (!r->cfg.max_subscriptions)
        r->cfg.max_subscriptions = SIZE_MAX;
    if (!r->cfg.max_subscriptions_total)
        r->cfg.max_subscriptions_total = SIZE_MAX;
    if (!r->cfg.max_subscriptions_per_user)
        r->cfg.max_subscriptions_per_user = SIZE_MAX;
    if (!r->cfg.max_registrations_per_user)
        r->cfg.max_registrations_per_user = SIZE_MAX;
    if (!r->cfg.max_pattern_tokens)
        r->cfg.max_pattern_tokens = 16;
    if (r->cfg.max_pattern_tokens > SUBINDEX_MAX_TOKENS)
        r->cfg.max_pattern_tokens = SUBINDEX_MAX_TOKENS;
    if (!r->cfg.max_command_name)
        r->cfg.max_command_name = AMP_MAX_VALUE_LEN;
    if (r->cfg.login_workers <= 0)
        r->cfg.login_workers = 2;
    if (!r->cfg.max_pending_logins)
        r->cfg.max_pending_logins = 64;
    if (!r->cfg.max_pending_logins_per_address)
        r->cfg.max_pending_logins_per_address = 4;
    if (!r->cfg.login_throttle_after)
        r->cfg.login_throttle_after = 5;
    r->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)ev_time();
    r->started = ev_now(loop);
    r->refusals_log.name = "refused connections";
    if (r->cfg.max_queued_bytes) {
        ev_prepare_init(&r->budget_watch, budget_check);
        r->budget_watch.data = r;
        ev_prepare_start(loop, &r->budget_watch);
        ev_unref(loop); /* it alone does not keep the loop running */
    }
    if (r->cfg.output_soft_cap && r->cfg.output_soft_seconds > 0) {
        double every = r->cfg.output_soft_seconds / 4;
        ev_timer_init(&r->soft_cap_timer, soft_cap_check, every, every);
        r->soft_cap_timer.data = r;
        ev_timer_start(loop, &r->soft_cap_timer);
    }
    return r;
}

void router_free(router *r)
{
    if (!r)
        return;
    ev_timer_stop(r->loop, &r->soft_cap_timer);
    log_peer_flush(&r->conn_log);
    if (ev_is_active(&r->budget_watch)) {
        ev_ref(r->loop);
        ev_prepare_stop(r->loop, &r->budget_watch);
    }
    /* on_closed unlinks each peer and removes its registrations and
     * subscriptions: the command table and the subscriptions end empty */
    while (r->peers)
        amp_conn_abort(r->peers->conn);
    hasher_free(r->hasher); /* the peers are gone: their checks are dropped */
    throttle_free(r->fail_users);
    throttle_free(r->fail_sources);
    throttle_free(r->fail_token_sources);
    amp_strmap_free(&r->user_conns);
    amp_strmap_free(&r->owners); /* empty: every peer released its owner */
    amp_strmap_free(&r->commands);
    auth_free(r->auth);
    subindex_free(r->subs);
    free(r);
}
