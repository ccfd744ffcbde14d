/* The command table and the calls routed through it. */
#include "registry.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "reply.h"
#include "router_internal.h"
#include "signature.h"

const char *const registry_policy_names[4] = {"roundrobin", "random", "first", "least-busy"};

/* A forwarded call, until its completion. */
struct relay {
    router *r;
    amp_request *req;
    struct peer *provider;
};

int registry_init(router *r)
{
    r->reg.rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)ev_time();
    registry_list_init(r);
    return amp_strmap_init(&r->reg.commands);
}

void registry_free(router *r)
{
    amp_strmap_free(&r->reg.commands);
}

size_t registry_count(const struct peer *p)
{
    return p->reg.n;
}

size_t registry_commands(const router *r)
{
    return r->reg.commands.count;
}

size_t registry_inflight(const router *r)
{
    return r->reg.inflight;
}

static uint64_t next_random(router *r)
{
    r->reg.rng ^= r->reg.rng << 13;
    r->reg.rng ^= r->reg.rng >> 7;
    r->reg.rng ^= r->reg.rng << 17;
    return r->reg.rng;
}

/* ---- routed calls ----------------------------------------------------------- */

static struct peer *pick(router *r, struct command *cmd)
{
    switch (cmd->policy) {
    case POLICY_FIRST:
        return cmd->providers[0].peer;
    case POLICY_RANDOM:
        return cmd->providers[next_random(r) % cmd->n].peer;
    case POLICY_LEAST_BUSY: {
        struct peer *best = cmd->providers[0].peer;
        for (size_t i = 1; i < cmd->n; i++)
            if (cmd->providers[i].peer->reg.inflight < best->reg.inflight)
                best = cmd->providers[i].peer;
        return best;
    }
    case POLICY_ROUNDROBIN:
    default:
        return cmd->providers[cmd->rr++ % cmd->n].peer;
    }
}

/* The provider's answer, relayed with the answer's keys byte for byte,
 * without the provider's tag. */
static amp_err relay_answer(router *r, amp_request *req, const amp_box *box)
{
    amp_pair stack[FORWARD_STACK];
    size_t n;
    amp_pair *pairs = forward_pairs(box, stack, &n);
    if (!pairs) {
        stats_error(r, (const uint8_t *)"UNKNOWN", 7);
        return amp_request_error(req, "UNKNOWN", "Unknown Error", 0);
    }
    amp_err e = amp_request_answer(req, pairs, n);
    forward_pairs_free(pairs, stack);
    return e;
}

static void on_forwarded(amp_session *s, uint64_t id, const amp_result *res, void *ud)
{
    struct relay *rl = ud;
    router *r = rl->r;
    rl->provider->reg.inflight--;
    r->reg.inflight--;
    amp_err e = AMP_OK;
    if (res->status == AMP_OK) {
        e = relay_answer(r, rl->req, res->box);
        r->stats.calls_answered++;
    } else if (res->status == AMP_E_REMOTE) {
        stats_relayed_error(r); /* the provider's code: its own business */
        e = amp_request_error_bytes(rl->req, res->error_code->value, res->error_code->value_len,
                                    res->error_description->value,
                                    res->error_description->value_len, 0);
    } else if (res->status == AMP_E_TIMEOUT) {
        stats_error(r, (const uint8_t *)"TIMEOUT", 7);
        e = amp_request_error(rl->req, "TIMEOUT", "the provider did not answer in time", 0);
    } else {
        stats_error(r, (const uint8_t *)"PROVIDER_LOST", 13);
        e = amp_request_error(rl->req, "PROVIDER_LOST",
                              "the provider disconnected before answering", 0);
    }
    if (e == AMP_E_CLOSED)
        r->stats.answers_to_gone_callers++;
    else
        reply_sent(r, e);
    free(rl);
}

/* The deadline of a forwarded call: call_timeout, or the caller's _timeout
 * (milliseconds) up to max_call_timeout. 0 and *out set, or -1 (answered). */
static int call_deadline(router *r, amp_request *req, const amp_box *box, double *out)
{
    *out = r->cfg.call_timeout;
    const amp_pair *t = amp_box_find_str(box, "_timeout");
    if (!t)
        return 0;
    int64_t ms;
    if (amp_int_parse(t->value, t->value_len, &ms) || ms <= 0) {
        reply_error(r, req, "BAD_REQUEST", "_timeout must be a positive number of milliseconds");
        return -1;
    }
    *out = (double)ms / 1000.0;
    if (*out > r->cfg.max_call_timeout)
        *out = r->cfg.max_call_timeout;
    return 0;
}

void registry_call(router *r, struct peer *caller, amp_request *req, const amp_box *box)
{
    const amp_pair *cmdp = amp_request_command(req);
    if (!login_permit(r, caller, req, ACT_CALL, cmdp->value, cmdp->value_len))
        return;
    /* this request is one of the pending ones */
    if (r->cfg.max_calls_in_flight &&
        amp_session_pending_requests(amp_conn_session(caller->conn)) > r->cfg.max_calls_in_flight) {
        r->stats.calls_refused++;
        reply_error(r, req, "OVERLOADED", "too many calls in flight on this connection");
        return;
    }
    if (budget_over(r, 0)) {
        r->stats.budget_calls_refused++;
        reply_error(r, req, "OVERLOADED", "the broker holds too much queued data (max_queued_bytes)");
        return;
    }
    /* a name longer than any registration cannot be served: no lookup */
    struct command *cmd = cmdp->value_len > r->cfg.max_command_name
                              ? NULL
                              : amp_strmap_get(&r->reg.commands, cmdp->value, cmdp->value_len);
    if (!cmd) {
        reply_unhandled(r, req);
        return;
    }
    double timeout;
    if (call_deadline(r, req, box, &timeout))
        return;
    amp_pair stack[FORWARD_STACK];
    size_t n;
    amp_pair *args = forward_pairs(box, stack, &n);
    struct relay *rl = malloc(sizeof *rl);
    if (!args || !rl) {
        free(rl);
        forward_pairs_free(args, stack);
        reply_error(r, req, "UNKNOWN", "Unknown Error");
        return;
    }
    struct peer *provider = pick(r, cmd);
    rl->r = r;
    rl->req = req;
    rl->provider = provider;
    amp_err e = amp_conn_call_bytes(provider->conn, cmdp->value, cmdp->value_len, args, n,
                                    timeout, on_forwarded, rl, NULL);
    forward_pairs_free(args, stack);
    if (e != AMP_OK) {
        free(rl);
        reply_error(r, req, "OVERLOADED", "the provider cannot take more calls now");
        return;
    }
    provider->reg.inflight++;
    r->reg.inflight++;
    r->stats.calls_routed++;
}

/* ---- registrations ---------------------------------------------------------- */

/* Remove p from a command; the signature goes with the last provider that
 * declared it (a provider that joined without one cannot keep another's),
 * the entry with its last provider. Returns 1 if p was there. `cmd` may be
 * freed. */
static int drop_provider(router *r, struct command *cmd, struct peer *p)
{
    for (size_t i = 0; i < cmd->n; i++)
        if (cmd->providers[i].peer == p) {
            if (cmd->providers[i].declared && --cmd->declarers == 0) {
                free(cmd->sig);
                cmd->sig = NULL;
            }
            memmove(cmd->providers + i, cmd->providers + i + 1,
                    (cmd->n - i - 1) * sizeof *cmd->providers);
            if (--cmd->n == 0) {
                amp_strmap_remove(&r->reg.commands, cmd->name, cmd->name_len);
                free(cmd->providers);
                free(cmd->sig);
                free(cmd);
            }
            return 1;
        }
    return 0;
}

/* Forget the i-th of p's registrations (the command itself is not touched). */
static void forget_registration(struct peer *p, size_t i)
{
    p->reg.v[i] = p->reg.v[--p->reg.n];
    owner_count(p, OWNER_REGS, -1);
}

/* The policy a registration asks for: 0 and *out (-1: none asked), or -1
 * if it names none of them. */
static int parse_policy(const amp_pair *pol, int *out)
{
    *out = -1;
    if (!pol)
        return 0;
    for (int i = 0; i < 4; i++)
        if (pol->value_len == strlen(registry_policy_names[i]) &&
            !memcmp(pol->value, registry_policy_names[i], pol->value_len))
            *out = i;
    return *out < 0 ? -1 : 0;
}

/* The limits a new registration must stay within; 1 if refused (answered). */
static int over_limits(router *r, struct peer *p, amp_request *req, const struct command *cmd)
{
    if (!cmd && r->reg.commands.count >= r->cfg.max_commands) {
        reply_limit(r, req, &r->stats.registrations_refused,
                    "the broker serves %zu commands, its limit (max_commands)",
                    r->reg.commands.count);
        return 1;
    }
    if (login_enabled(r) && owner_holds(p, OWNER_REGS) >= r->cfg.max_registrations_per_user) {
        reply_limit(r, req, &r->stats.registrations_refused,
                    "%s serves %zu commands over all its connections, the broker's limit "
                    "(max_registrations_per_user)", owner_label(p), owner_holds(p, OWNER_REGS));
        return 1;
    }
    if (p->reg.n >= r->cfg.max_registrations) {
        reply_limit(r, req, &r->stats.registrations_refused,
                    "this connection serves %zu commands, the broker's limit "
                    "(max_registrations)", p->reg.n);
        return 1;
    }
    return 0;
}

/* Room for one more provider in cmd; a command just made is taken out of
 * the table again if there is none. */
static int make_room(router *r, struct command *cmd)
{
    if (cmd->n == cmd->cap) {
        size_t cap = cmd->cap ? cmd->cap * 2 : 4;
        struct provider *v = realloc(cmd->providers, cap * sizeof *v);
        if (!v) {
            if (!cmd->n) { /* just created: leave no empty entry behind */
                amp_strmap_remove(&r->reg.commands, cmd->name, cmd->name_len);
                free(cmd->sig);
                free(cmd);
            }
            return -1;
        }
        cmd->providers = v;
        cmd->cap = cap;
    }
    return 0;
}

/* The signature a registration carries (spec/amp.md 6b.7), checked and in
 * canonical form: 1 (in *c), 0 none, or -1 refused (answered). */
static int read_signature(router *r, amp_request *req, const amp_box *box, struct sig_canon *c)
{
    char why[256];
    switch (sig_parse(amp_box_find_str(box, "arguments"), amp_box_find_str(box, "response"),
                      amp_box_find_str(box, "errors"), c, why, sizeof why)) {
    case SIG_OK:
        return 1;
    case SIG_NONE:
        return 0;
    case SIG_LIMIT:
        reply_limit(r, req, &r->stats.registrations_refused, "%s", why);
        return -1;
    case SIG_BAD:
    default:
        reply_error(r, req, "BAD_REQUEST", why);
        return -1;
    }
}

/* The conflicts with the command's first registration: 1 if refused
 * (answered). */
static int conflicts(router *r, amp_request *req, const struct command *cmd, int policy,
                     const struct sig_canon *sig)
{
    if (!cmd)
        return 0;
    if (policy >= 0 && (enum policy)policy != cmd->policy) {
        reply_error(r, req, "POLICY_CONFLICT",
                    "the command is served with another policy; the first registration's policy "
                    "holds while it has providers");
        return 1;
    }
    if (sig && cmd->sig && !sig_matches(cmd->sig, sig)) {
        reply_error(r, req, "SIGNATURE_CONFLICT",
                    "the command is served with another signature; it holds while a provider "
                    "that declared it serves the command");
        return 1;
    }
    return 0;
}

/* Command names are shown to people (amp.Commands, logs, terminals): they
 * must be UTF-8 text without control characters (C0, DEL, C1), so no peer
 * can register a name that rewrites a terminal or hides behind a NUL. */
static int name_is_text(const uint8_t *p, size_t n)
{
    if (amp_utf8_check(p, n) != AMP_OK)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] == 0x7f || (p[i] == 0xc2 && i + 1 < n && p[i + 1] < 0xa0))
            return 0;
    return 1;
}

void registry_register(router *r, struct peer *p, amp_request *req, const amp_box *box)
{
    const amp_pair *c = amp_box_find_str(box, "command"), *pol = amp_box_find_str(box, "policy");
    if (!c || !c->value_len) {
        reply_error(r, req, "BAD_REQUEST", "amp.Register needs a command");
        return;
    }
    if (c->value_len >= 4 && !memcmp(c->value, "amp.", 4)) {
        reply_error(r, req, "BAD_REQUEST", "commands starting with amp. belong to the broker");
        return;
    }
    if (!name_is_text(c->value, c->value_len)) {
        reply_error(r, req, "BAD_REQUEST",
                    "a command name must be UTF-8 text without control characters");
        return;
    }
    if (reply_too_long(r, req, c, &r->stats.registrations_refused))
        return;
    if (!login_permit(r, p, req, ACT_REGISTER, c->value, c->value_len))
        return;
    int policy;
    if (parse_policy(pol, &policy)) {
        reply_error(r, req, "BAD_REQUEST", "policy must be roundrobin, random, first or least-busy");
        return;
    }
    struct sig_canon canon;
    int has_sig = read_signature(r, req, box, &canon);
    if (has_sig < 0)
        return;
    struct command *cmd = amp_strmap_get(&r->reg.commands, c->value, c->value_len);
    if (conflicts(r, req, cmd, policy, has_sig ? &canon : NULL))
        return;
    /* the first signature declared sets the command's, even after providers
     * without one; made before anything changes, so a refusal leaves none */
    struct signature *sig = NULL;
    if (has_sig && !(cmd && cmd->sig) && !(sig = sig_new(&canon))) {
        reply_error(r, req, "UNKNOWN", "Unknown Error");
        return;
    }
    for (size_t i = 0; cmd && i < cmd->n; i++)
        if (cmd->providers[i].peer == p) { /* registering twice is harmless */
            if (sig)
                cmd->sig = sig;
            if (has_sig && !cmd->providers[i].declared) { /* now it declares it too */
                cmd->providers[i].declared = 1;
                cmd->declarers++;
            }
            reply_ok(r, req);
            return;
        }
    if (over_limits(r, p, req, cmd)) {
        free(sig);
        return;
    }
    if (p->reg.n == p->reg.cap) {
        size_t cap = p->reg.cap ? p->reg.cap * 2 : 8;
        struct command **v = realloc(p->reg.v, cap * sizeof *v);
        if (!v) {
            free(sig);
            reply_error(r, req, "UNKNOWN", "Unknown Error");
            return;
        }
        p->reg.v = v;
        p->reg.cap = cap;
    }
    if (!cmd) {
        cmd = calloc(1, sizeof *cmd + c->value_len);
        if (!cmd || amp_strmap_put(&r->reg.commands, c->value, c->value_len, cmd)) {
            free(cmd);
            free(sig);
            reply_error(r, req, "UNKNOWN", "Unknown Error");
            return;
        }
        memcpy(cmd->name, c->value, c->value_len);
        cmd->name_len = c->value_len;
        cmd->policy = policy >= 0 ? (enum policy)policy : POLICY_ROUNDROBIN;
    }
    if (make_room(r, cmd)) {
        free(sig);
        reply_error(r, req, "UNKNOWN", "Unknown Error");
        return;
    }
    if (sig)
        cmd->sig = sig;
    /* carrying the signature (the one it sets, or the same): it holds it too */
    cmd->providers[cmd->n++] = (struct provider){p, has_sig};
    cmd->declarers += has_sig ? 1 : 0;
    p->reg.v[p->reg.n++] = cmd;
    owner_count(p, OWNER_REGS, +1);
    char f[LOG_FIELD_BUF];
    log_peer(&p->log, LOG_INFO, "peer %llu (%s) serves %s", (unsigned long long)p->id,
             amp_conn_peer_name(p->conn), log_field(f, c->value, c->value_len));
    reply_ok(r, req);
}

void registry_unregister(router *r, struct peer *p, amp_request *req, const amp_box *box)
{
    const amp_pair *c = amp_box_find_str(box, "command");
    struct command *cmd = c && c->value_len <= r->cfg.max_command_name
                              ? amp_strmap_get(&r->reg.commands, c->value, c->value_len)
                              : NULL;
    for (size_t i = 0; cmd && i < p->reg.n; i++)
        if (p->reg.v[i] == cmd) {
            forget_registration(p, i);
            drop_provider(r, cmd, p);
            reply_ok(r, req);
            return;
        }
    reply_error(r, req, "NOT_REGISTERED", "this connection does not serve that command");
}

void registry_detach(router *r, struct peer *p)
{
    for (size_t i = 0; i < p->reg.n; i++)
        drop_provider(r, p->reg.v[i], p);
    free(p->reg.v);
    p->reg.v = NULL;
    p->reg.n = p->reg.cap = 0;
}

void registry_recheck(router *r, struct peer *p)
{
    for (size_t i = p->reg.n; i-- > 0;) {
        struct command *cmd = p->reg.v[i];
        if (login_allows(r, p, ACT_REGISTER, cmd->name, cmd->name_len))
            continue;
        char f[LOG_FIELD_BUF];
        log_msg(LOG_INFO, "peer %llu: registration of %s revoked", (unsigned long long)p->id,
                log_field(f, cmd->name, cmd->name_len));
        forget_registration(p, i);
        drop_provider(r, cmd, p);
    }
}
