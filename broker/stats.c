/* The counters of amp.Stats and of the metrics endpoint, in one table, and
 * the errors by code. */
#include "stats.h"

#include <ev.h>
#include <stdio.h>
#include <string.h>

#include "reply.h"
#include "router_internal.h"

/* The broker's own error codes, counted by name. Codes relayed from
 * providers are peer-chosen: they are lumped under "other", so no peer can
 * fill the table or take a name. */
static const char *const broker_codes[] = {
    "UNHANDLED",     "TIMEOUT",       "PROVIDER_LOST",     "OVERLOADED",
    "SHUTTING_DOWN", "AUTH_REQUIRED", "AUTH_FAILED",       "PERMISSION_DENIED",
    "BAD_REQUEST",   "POLICY_CONFLICT", "NOT_REGISTERED",  "NOT_SUBSCRIBED",
    "LIMIT_EXCEEDED", "TOO_LARGE",    "UNKNOWN",           "LOGIN_BUSY",
    "LOGIN_THROTTLED", "TOO_MANY_CONNECTIONS", "SIGNATURE_CONFLICT",
};
_Static_assert(sizeof broker_codes / sizeof broker_codes[0] == STATS_BROKER_CODES,
               "STATS_BROKER_CODES is the number of broker_codes");

void stats_init(router *r)
{
    r->stats.started = ev_now(r->loop);
}

void stats_error(router *r, const uint8_t *code, size_t n)
{
    for (size_t i = 0; i < STATS_BROKER_CODES; i++)
        if (strlen(broker_codes[i]) == n && !memcmp(broker_codes[i], code, n)) {
            r->stats.codes[i]++;
            return;
        }
    r->stats.other_codes++;
}

void stats_relayed_error(router *r)
{
    r->stats.other_codes++;
}

void stats_close(router *r, int reason)
{
    size_t i;
    for (i = 0; i < STATS_CLOSE_REASONS && r->stats.closes[i].n; i++)
        if (r->stats.closes[i].reason == reason)
            break;
    if (i == STATS_CLOSE_REASONS) {
        r->stats.other_codes++;
        return;
    }
    r->stats.closes[i].reason = reason;
    r->stats.closes[i].n++;
}

struct counter_row {
    const char *name, *help;
    uint64_t value;
    int gauge; /* a level now, not a count since the start */
};

#define MAX_COUNTERS 64

static uint64_t listeners_shed(const router *r)
{
    uint64_t n = r->stats.listener_shed_gone;
    for (int i = 0; i < r->stats.nlisteners; i++)
        if (r->stats.listeners[i])
            n += amp_listener_shed(r->stats.listeners[i]);
    return n;
}

static size_t stats_table(router *r, struct counter_row *t)
{
    const struct stats *s = &r->stats;
    uint64_t in = s->bytes_in_closed, out = s->bytes_out_closed, late = 0;
    for (struct peer *p = r->peers; p; p = p->next) {
        in += amp_conn_bytes_in(p->conn);
        out += amp_conn_bytes_out(p->conn);
        late += amp_session_late_answers(amp_conn_session(p->conn));
    }
    struct counter_row all[] = {
        {"connections", "connections open now", r->npeers, 1},
        {"connections_total", "connections accepted since start", s->connections_total, 0},
        {"connections_refused", "connections refused over max_connections",
         s->connections_refused, 0},
        {"calls_routed", "calls forwarded to a provider", s->calls_routed, 0},
        {"calls_answered", "forwarded calls answered by their provider", s->calls_answered, 0},
        {"calls_in_flight", "forwarded calls not answered yet", registry_inflight(r), 1},
        {"calls_refused", "calls refused over max_calls_in_flight", s->calls_refused, 0},
        {"protocol_errors", "connections closed for bad bytes or a limit", s->protocol_errors,
         0},
        {"logins", "successful logins", s->logins, 0},
        {"logins_failed", "failed logins", s->logins_failed, 0},
        {"password_checks", "password key derivations run (for unknown users and users "
         "without a password too)", s->password_checks, 0},
        {"login_timeouts", "connections closed for not logging in", s->login_timeouts, 0},
        {"logins_busy", "logins refused (LOGIN_BUSY) over max_pending_logins, globally or per "
         "address", s->logins_busy, 0},
        {"logins_throttled", "logins refused (LOGIN_THROTTLED) after recent failures of the "
         "user or address", s->logins_throttled, 0},
        {"logins_over_user_cap", "logins refused over max_connections_per_user",
         s->logins_over_user_cap, 0},
        {"cert_identities_refused", "verified client certificates that named no user",
         s->cert_identities_refused, 0},
        {"credentials_revoked", "connections closed by a reload: their credential no longer "
         "verifies", s->credentials_revoked, 0},
        {"denials", "requests refused by the ACL", s->denials, 0},
        {"slow_connections_closed", "connections closed for output held over the soft cap",
         s->slow_connections_closed, 0},
        {"events_published", "calls without _ask received", s->events_published, 0},
        {"events_delivered", "events queued for subscribers", s->events_delivered, 0},
        {"events_dropped", "events not delivered to a slow subscriber", s->events_dropped, 0},
        {"slow_consumers_disconnected", "subscribers disconnected as slow consumers",
         s->slow_consumers_disconnected, 0},
        {"late_answers_dropped", "answers that arrived after the broker's deadline",
         s->late_answers_dropped + late, 0},
        {"answers_to_gone_callers", "answers whose caller had disconnected",
         s->answers_to_gone_callers, 0},
        {"answers_failed", "answers and errors that could not be queued (output full)",
         s->answers_failed, 0},
        {"commands", "entries in the command table now", registry_commands(r), 1},
        {"subscriptions", "subscriptions now", pubsub_total(r), 1},
        {"registrations_refused", "registrations refused over max_registrations, "
         "max_commands or max_command_name", s->registrations_refused, 0},
        {"subscriptions_refused", "subscriptions refused over max_subscriptions, "
         "max_subscriptions_total, max_pattern_tokens or max_command_name",
         s->subscriptions_refused, 0},
        {"log_lines_suppressed", "log lines dropped by the per-peer rate limit",
         log_lines_suppressed, 0},
        {"queued_bytes", "unsent output, partial input boxes and unanswered calls held now (max_queued_bytes)",
         budget_queued(r), 1},
        {"budget_events_dropped", "events dropped over max_queued_bytes",
         s->budget_events_dropped, 0},
        {"budget_calls_refused", "calls refused (OVERLOADED) over max_queued_bytes",
         s->budget_calls_refused, 0},
        {"budget_connections_closed", "connections holding the most closed over "
         "max_queued_bytes", s->budget_connections_closed, 0},
        {"box_timeouts", "connections closed for a box not completed within box_timeout",
         s->box_timeouts, 0},
        {"metrics_refused", "metrics clients turned away: 16 served already, or out of "
         "descriptors", s->metrics_refused, 0},
        {"connections_shed", "connections closed at accept: the process was out of "
         "descriptors", listeners_shed(r), 0},
        {"bytes_in", "AMP bytes received", in, 0},
        {"bytes_out", "AMP bytes sent", out, 0},
        {"uptime_seconds", "seconds since start", (uint64_t)(ev_now(r->loop) - s->started), 1},
    };
    _Static_assert(sizeof all / sizeof all[0] <= MAX_COUNTERS, "raise MAX_COUNTERS");
    memcpy(t, all, sizeof all);
    return sizeof all / sizeof all[0];
}

/* The error counts, by code: the broker's own codes, the close reasons,
 * then "other". Calls fn for each nonzero count. */
static void each_error(router *r, void (*fn)(const char *code, uint64_t n, void *ud), void *ud)
{
    for (size_t i = 0; i < STATS_BROKER_CODES; i++)
        if (r->stats.codes[i])
            fn(broker_codes[i], r->stats.codes[i], ud);
    for (size_t i = 0; i < STATS_CLOSE_REASONS && r->stats.closes[i].n; i++)
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

void stats_reply(router *r, amp_request *req)
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
    reply_sent(r, amp_request_answer(req, pairs, n + 1));
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
    r->stats.listeners = listeners;
    r->stats.nlisteners = n;
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
