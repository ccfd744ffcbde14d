/* The dispatch: the router's peers from accept to close, and each request
 * handed to the room whose job it is (router_internal.h):
 *   amp.Login                        login.c
 *   amp.Register, amp.Unregister,
 *   amp.Commands, calls with _ask    registry.c
 *   amp.Subscribe, amp.Unsubscribe,
 *   calls without _ask (events)      pubsub.c
 *   amp.Stats                        stats.c
 * and the budget (budget.c) watching them all. */
#include "router.h"

#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "reply.h"
#include "router_internal.h"

/* Lines about connections coming and going, all connections together. */
#define CONN_LOG_BURST 200
#define CONN_LOG_PER_SECOND 20.0

static int cmd_is(const amp_pair *c, const char *name)
{
    return c->value_len == strlen(name) && !memcmp(c->value, name, c->value_len);
}

/* The broker's own commands (amp.*), once logged in. */
static void broker_command(router *r, struct peer *p, amp_request *req, const amp_box *box)
{
    const amp_pair *c = amp_request_command(req);
    if ((cmd_is(c, "amp.Commands") || cmd_is(c, "amp.Stats")) &&
        !login_permit(r, p, req, ACT_CALL, c->value, c->value_len))
        return;
    if (cmd_is(c, "amp.Register"))
        registry_register(r, p, req, box);
    else if (cmd_is(c, "amp.Unregister"))
        registry_unregister(r, p, req, box);
    else if (cmd_is(c, "amp.Subscribe"))
        pubsub_subscribe(r, p, req, box);
    else if (cmd_is(c, "amp.Unsubscribe"))
        pubsub_unsubscribe(r, p, req, box);
    else if (cmd_is(c, "amp.Commands"))
        registry_list(r, p, req, box);
    else if (cmd_is(c, "amp.Stats"))
        stats_reply(r, req);
    else
        reply_unhandled(r, req);
}

static void on_call(amp_session *s, amp_request *req, const amp_box *box, void *ud)
{
    struct peer *p = ud;
    router *r = p->r;
    const amp_pair *c = amp_request_command(req);
    if (cmd_is(c, "amp.Login")) {
        login_request(r, p, req, box);
        return;
    }
    if (login_needed(r, p)) {
        reply_error(r, req, "AUTH_REQUIRED", "log in first with amp.Login");
        return;
    }
    if (c->value_len >= 4 && !memcmp(c->value, "amp.", 4)) {
        broker_command(r, p, req, box);
        return;
    }
    if (r->draining) {
        reply_error(r, req, "SHUTTING_DOWN", "the broker is shutting down");
        return;
    }
    if (!amp_request_wants_answer(req))
        pubsub_publish(r, p, req, box);
    else
        registry_call(r, p, req, box);
}

/* What a closing connection leaves in the counters. */
static void count_closed(router *r, amp_conn *c, int reason)
{
    r->stats.bytes_in_closed += amp_conn_bytes_in(c);
    r->stats.bytes_out_closed += amp_conn_bytes_out(c);
    r->stats.late_answers_dropped += amp_session_late_answers(amp_conn_session(c));
    if (reason == AMP_E_CLOSED)
        return;
    /* bad bytes, limits, TLS failures and timeouts, socket errors (a
     * half-open peer found by keepalive), counted under the error's name */
    if (amp_err_is_protocol(reason) || amp_err_is_limit(reason))
        r->stats.protocol_errors++;
    if (reason == AMP_E_TIMEOUT) /* a box not completed within box_timeout */
        r->stats.box_timeouts++;
    stats_close(r, reason);
}

static void on_closed(amp_conn *c, int reason, void *ud)
{
    struct peer *p = ud;
    router *r = p->r;
    /* forwarded calls to p have all completed (PROVIDER_LOST) by now */
    owner_release(r, p);
    registry_detach(r, p);
    pubsub_detach(r, p);
    count_closed(r, c, reason);
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
    login_detach(r, p);
    free(p);
}

static void on_ready(amp_conn *c, void *ud)
{
    struct peer *p = ud;
    login_tls_ready(p->r, p);
}

/* The key of per-address limits: the IPv4 address, the /64 of an IPv6 one
 * (one host holds many of those), the uid of a UNIX peer. */
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

/* Finds half-open peers; UNIX sockets ignore it. */
static void keepalive(int fd, double seconds)
{
    int on = 1, idle = (int)seconds;
    int intvl = idle / 3 > 0 ? idle / 3 : 1, cnt = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
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
    owner_set(r, p, 'a', p->source, p->source_len);
    p->next = r->peers;
    if (r->peers)
        r->peers->prev = p;
    r->peers = p;
    r->npeers++;
    r->stats.connections_total++;
    amp_conn_callbacks cb = {on_ready, on_closed, NULL};
    amp_conn_set_callbacks(c, &cb, p);
    amp_session_serve_fallback(amp_conn_session(c), on_call, p);
    login_attach(r, p);
    if (r->cfg.keepalive > 0)
        keepalive(amp_conn_fd(c), r->cfg.keepalive);
    log_msg(LOG_DEBUG, "peer %llu (%s) connected", (unsigned long long)p->id,
            amp_conn_peer_name(c));
}

size_t router_connections(const router *r)
{
    return r->npeers;
}

void router_drain(router *r)
{
    r->draining = 1;
}

size_t router_inflight(const router *r)
{
    return registry_inflight(r);
}

int router_set_auth(router *r, auth *a)
{
    auth *old;
    if (login_install(r, a, &old))
        return -1;
    for (struct peer *p = r->peers, *next; p; p = next) {
        next = p->next;
        if (login_recheck(r, p)) { /* still logged in: the new ACL applies */
            registry_recheck(r, p);
            pubsub_recheck(r, p); /* last: may close p */
        }
    }
    auth_free(old);
    return 0;
}

/* Zeroes in the configuration: what they mean. */
static void config_defaults(router_config *c)
{
    /* no limit (a value can never be longer than max_command_name's) */
    if (!c->max_registrations)
        c->max_registrations = SIZE_MAX;
    if (!c->max_commands)
        c->max_commands = SIZE_MAX;
    if (!c->max_subscriptions)
        c->max_subscriptions = SIZE_MAX;
    if (!c->max_subscriptions_total)
        c->max_subscriptions_total = SIZE_MAX;
    if (!c->max_subscriptions_per_user)
        c->max_subscriptions_per_user = SIZE_MAX;
    if (!c->max_registrations_per_user)
        c->max_registrations_per_user = SIZE_MAX;
    if (!c->max_pattern_tokens)
        c->max_pattern_tokens = 16;
    if (c->max_pattern_tokens > SUBINDEX_MAX_TOKENS)
        c->max_pattern_tokens = SUBINDEX_MAX_TOKENS;
    if (!c->max_command_name)
        c->max_command_name = AMP_MAX_VALUE_LEN;
    if (!c->commands_list_budget)
        c->commands_list_budget = 100000;
    if (c->login_workers <= 0)
        c->login_workers = 2;
    if (!c->max_pending_logins)
        c->max_pending_logins = 64;
    if (!c->max_pending_logins_per_address)
        c->max_pending_logins_per_address = 4;
    if (!c->login_throttle_after)
        c->login_throttle_after = 5;
}

router *router_new(struct ev_loop *loop, const router_config *cfg)
{
    router *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->loop = loop;
    r->cfg = *cfg;
    config_defaults(&r->cfg);
    /* each room's free is safe on what its init left (a failed init included) */
    if (registry_init(r) || login_init(r) || owners_init(r) || pubsub_init(r)) {
        pubsub_free(r);
        owners_free(r);
        login_free(r);
        registry_free(r);
        free(r);
        return NULL;
    }
    r->conn_log.name = "connections";
    r->conn_log.burst = CONN_LOG_BURST;
    r->conn_log.per_second = CONN_LOG_PER_SECOND;
    r->refusals_log.name = "refused connections";
    stats_init(r);
    budget_start(r);
    return r;
}

void router_free(router *r)
{
    if (!r)
        return;
    budget_stop(r);
    log_peer_flush(&r->conn_log);
    /* each close detaches the peer from every room: the command table and
     * the subscriptions end empty */
    while (r->peers)
        amp_conn_abort(r->peers->conn);
    login_free(r); /* the peers are gone: their password checks are dropped */
    owners_free(r);
    registry_free(r);
    pubsub_free(r);
    free(r);
}
