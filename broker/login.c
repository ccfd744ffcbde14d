/* Logins, the ACL check, and credentials re-checked on reload.
 *
 * A little over 500 lines, on purpose: logging in is one flow (amp.Login,
 * throttling, the password check on the workers, then accepted or failed;
 * certificates and anonymous access ending in the same logged_in()), and
 * the ACL check and the re-check on reload read the same identity. Split,
 * its static helpers would become functions between files for no reader's
 * gain. */
#include "login.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "router_internal.h"

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

int login_init(router *r)
{
    return amp_strmap_init(&r->login.user_conns);
}

void login_free(router *r)
{
    struct logins *l = &r->login;
    hasher_free(l->hasher); /* the peers are gone: their checks are dropped */
    throttle_free(l->fail_users);
    throttle_free(l->fail_sources);
    throttle_free(l->fail_token_sources);
    amp_strmap_free(&l->user_conns);
    auth_free(l->auth);
}

int login_enabled(const router *r)
{
    return r->login.auth != NULL;
}

int login_needed(const router *r, const struct peer *p)
{
    return r->login.auth && !p->login.who;
}

const char *login_user(const struct peer *p)
{
    return p->login.user;
}

/* ---- authorisation ----------------------------------------------------------- */

static const char *action_name(enum acl_action a)
{
    return a == ACT_CALL ? "call" : a == ACT_REGISTER ? "register"
           : a == ACT_PUBLISH ? "publish" : "subscribe";
}

int login_allows(const router *r, const struct peer *p, enum acl_action action,
                 const uint8_t *subject, size_t n)
{
    return !r->login.auth || auth_allowed(r->login.auth, p->login.who, action, subject, n);
}

int login_allows_any(const router *r, const struct peer *p, unsigned actions,
                     const uint8_t *subject, size_t n)
{
    return !r->login.auth || auth_allowed_any(r->login.auth, p->login.who, actions, subject, n);
}

int login_permit(router *r, struct peer *p, amp_request *req, enum acl_action action,
                 const uint8_t *subject, size_t n)
{
    if (login_allows(r, p, action, subject, n))
        return 1;
    r->stats.denials++;
    const char *who = p->login.who->name;
    char f[LOG_FIELD_BUF];
    log_peer(&p->log, LOG_WARN, "denied: %s (%s) may not %s %s", who,
             amp_conn_peer_name(p->conn), action_name(action), log_field(f, subject, n));
    char d[300];
    snprintf(d, sizeof d, "%s may not %s %.*s", who, action_name(action),
             (int)(n > 200 ? 200 : n), subject);
    reply_error(r, req, "PERMISSION_DENIED", d);
    return 0;
}

/* ---- who is logged in --------------------------------------------------------- */

/* Logged-in connections per user (not anonymous ones), for
 * max_connections_per_user. */
static size_t *user_conns(router *r, const char *name, int create)
{
    amp_strmap *m = &r->login.user_conns;
    size_t *n = amp_strmap_get(m, (const uint8_t *)name, strlen(name));
    if (!n && create && (n = calloc(1, sizeof *n)) &&
        amp_strmap_put(m, (const uint8_t *)name, strlen(name), n)) {
        free(n);
        n = NULL;
    }
    return n;
}

static void uncount_user(router *r, struct peer *p)
{
    const char *name = p->login.user;
    size_t *n = p->login.counted ? user_conns(r, name, 0) : NULL;
    p->login.counted = 0;
    if (n && --*n == 0)
        free(amp_strmap_remove(&r->login.user_conns, (const uint8_t *)name, strlen(name)));
}

/* Would p logging in as `name` exceed max_connections_per_user? */
static int over_user_cap(router *r, struct peer *p, const char *name)
{
    if (!r->cfg.max_connections_per_user)
        return 0;
    size_t *n = user_conns(r, name, 0), have = n ? *n : 0;
    if (p->login.counted && !strcmp(p->login.user, name))
        have--; /* logging in again as itself */
    return have >= r->cfg.max_connections_per_user;
}

/* Takes over *cred. */
static void logged_in(struct peer *p, const struct identity *id, auth_credential *cred,
                      const char *how)
{
    router *r = p->r;
    struct peer_login *pl = &p->login;
    uncount_user(r, p);
    pl->who = id;
    free(pl->user);
    pl->user = strdup(id->name);
    auth_credential_clear(&pl->cred);
    pl->cred = *cred;
    memset(cred, 0, sizeof *cred);
    if (pl->user && pl->cred.method != AUTH_BY_ANONYMOUS) {
        size_t *n = user_conns(r, pl->user, 1);
        if (n) {
            ++*n;
            pl->counted = 1;
        }
        owner_set(r, p, 'u', pl->user, strlen(pl->user));
    } else {
        owner_set(r, p, 'a', p->source, p->source_len);
    }
    ev_timer_stop(r->loop, &pl->timer);
    amp_session_set_limits(amp_conn_session(p->conn), &r->cfg.limits);
    log_peer(&r->conn_log, LOG_INFO, "peer %llu (%s) is %s (%s)", (unsigned long long)p->id,
             amp_conn_peer_name(p->conn), id->name, how);
}

static void anonymous_login(struct peer *p, const struct identity *id)
{
    auth_credential cred = {0};
    cred.method = AUTH_BY_ANONYMOUS;
    logged_in(p, id, &cred, "anonymous");
}

static void login_failed(router *r, struct peer *p, amp_request *req, const amp_pair *user)
{
    r->stats.logins_failed++;
    stats_error(r, (const uint8_t *)"AUTH_FAILED", 11);
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
        stats_error(r, (const uint8_t *)"TOO_MANY_CONNECTIONS", 20);
        amp_request_error(req, "TOO_MANY_CONNECTIONS",
                          "this user has max_connections_per_user connections open", 1);
        return;
    }
    r->stats.logins++;
    logged_in(p, id, cred, how);
    amp_pair who = {(const uint8_t *)"identity", 8, (const uint8_t *)id->name, strlen(id->name)};
    amp_request_answer(req, &who, 1);
}

/* ---- password checks on the workers -------------------------------------------- */

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
    struct logins *lg = &r->login;
    if (l->prev)
        l->prev->next = l->next;
    else
        lg->pending = l->next;
    if (l->next)
        l->next->prev = l->prev;
    struct peer *p = l->peer;
    if (t->ran)
        r->stats.password_checks++; /* the dummy check for unknown users too */
    if (p) {
        p->login.check = NULL;
        auth_credential cred = {0};
        const struct identity *id =
            t->ran && lg->auth ? auth_password_finish(lg->auth, &l->job, &cred) : NULL;
        amp_pair user = {(const uint8_t *)"username", 8, l->user, l->user_len};
        if (!id) {
            double now = ev_now(r->loop);
            throttle_failed(lg->fail_users, l->user, l->user_len, now);
            throttle_failed(lg->fail_sources, l->source, l->source_len, now);
            login_failed(r, p, l->req, &user);
        } else {
            throttle_succeeded(lg->fail_users, l->user, l->user_len);
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
    for (struct login *l = r->login.pending; l; l = l->next)
        n += l->source_len == p->source_len && !memcmp(l->source, p->source, p->source_len);
    return n;
}

static void login_busy(router *r, struct peer *p, amp_request *req, const char *why)
{
    r->stats.logins_busy++;
    log_peer(&p->log, LOG_DEBUG, "peer %llu (%s): login refused: %s", (unsigned long long)p->id,
             amp_conn_peer_name(p->conn), why);
    reply_error(r, req, "LOGIN_BUSY", why);
}

/* Hash on the worker pool, within the global and per-address bounds. */
static void password_login(router *r, struct peer *p, amp_request *req, const amp_pair *user,
                           const amp_pair *pw)
{
    struct logins *lg = &r->login;
    if (hasher_pending(lg->hasher) >= r->cfg.max_pending_logins) {
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
        auth_password_prepare(lg->auth, user->value, user->value_len, pw->value, pw->value_len,
                              &l->job)) {
        if (l)
            free(l->user);
        free(l);
        reply_error(r, req, "UNKNOWN", "Unknown Error");
        return;
    }
    l->task.run = login_run;
    l->task.done = login_done;
    l->r = r;
    l->peer = p;
    l->req = req;
    memcpy(l->source, p->source, p->source_len);
    l->source_len = p->source_len;
    l->next = lg->pending;
    if (lg->pending)
        lg->pending->prev = l;
    lg->pending = l;
    p->login.check = l;
    hasher_submit(lg->hasher, &l->task);
}

/* ---- throttling --------------------------------------------------------------- */

static void answer_held(router *r, struct peer *p)
{
    /* whole seconds, rounded up and at least 1 (a login held for the whole
     * wait would read "0 s"), so that a retry after them is never early */
    double wait = p->login.held_wait;
    unsigned long secs = (unsigned long)wait;
    if (secs < wait || secs < 1)
        secs++;
    char d[96];
    snprintf(d, sizeof d, "too many failed logins lately: try again in %lu s", secs);
    amp_request *req = p->login.held;
    p->login.held = NULL;
    reply_error(r, req, "LOGIN_THROTTLED", d);
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
    struct logins *lg = &r->login;
    double now = ev_now(r->loop);
    double wait = throttle_wait(token ? lg->fail_token_sources : lg->fail_sources, p->source,
                                p->source_len, now);
    if (user) {
        double w = throttle_wait(lg->fail_users, user->value, user->value_len, now);
        wait = w > wait ? w : wait;
    }
    if (wait <= 0)
        return 0;
    r->stats.logins_throttled++;
    log_peer(&p->log, LOG_DEBUG, "peer %llu (%s): login throttled for %.1f s",
             (unsigned long long)p->id, amp_conn_peer_name(p->conn), wait);
    double hold = wait < THROTTLE_HOLD ? wait : THROTTLE_HOLD;
    if (ev_is_active(&p->login.timer)) { /* answered well before login_timeout */
        double left = ev_timer_remaining(r->loop, &p->login.timer) / 2;
        hold = left < hold ? left : hold;
    }
    p->login.held = req;
    p->login.held_wait = wait - hold;
    ev_timer_set(&p->login.hold_timer, hold, 0);
    ev_timer_start(r->loop, &p->login.hold_timer);
    return 1;
}

/* ---- amp.Login, certificates, the connection's lifetime ------------------------- */

void login_request(router *r, struct peer *p, amp_request *req, const amp_box *box)
{
    struct logins *lg = &r->login;
    if (!lg->auth) {
        amp_request_answer(req, NULL, 0); /* nothing to log in to */
        return;
    }
    if (p->login.check || p->login.held) {
        login_busy(r, p, req, "a login is already in progress on this connection");
        return;
    }
    const amp_pair *tok = amp_box_find_str(box, "token"),
                   *user = amp_box_find_str(box, "username"),
                   *pw = amp_box_find_str(box, "password");
    if (throttled(r, p, req, tok != NULL, tok ? NULL : user))
        return;
    if (!tok && user && pw) {
        password_login(r, p, req, user, pw);
        return;
    }
    auth_credential cred = {0};
    const struct identity *id = tok ? auth_token(lg->auth, tok->value, tok->value_len, &cred)
                                    : NULL;
    if (!id) {
        throttle_failed(lg->fail_token_sources, p->source, p->source_len, ev_now(r->loop));
        login_failed(r, p, req, user);
        return;
    }
    login_accepted(r, p, req, id, &cred, "token");
}

void login_tls_ready(router *r, struct peer *p)
{
    const cert_rule *rule = &r->cfg.cert_identity;
    const uint8_t *der;
    size_t len;
    if (!r->login.auth || rule->mode == CERT_NONE ||
        (p->login.who && p->login.cred.method != AUTH_BY_ANONYMOUS) ||
        amp_conn_peer_certificate_der(p->conn, &der, &len))
        return;
    char name[256];
    const char *why = NULL;
    const struct identity *id = NULL;
    if (!cert_identity_name(rule, der, len, name, sizeof name, &why) &&
        !(id = auth_user(r->login.auth, name)))
        why = "no such user";
    if (!id) {
        r->stats.cert_identities_refused++;
        log_peer(&p->log, LOG_WARN, "peer %llu (%s): its client certificate names no user "
                 "(cert_identity = %s): %s", (unsigned long long)p->id,
                 amp_conn_peer_name(p->conn), cert_mode_name(rule->mode), why);
        return;
    }
    if (over_user_cap(r, p, id->name)) {
        r->stats.logins_over_user_cap++;
        log_msg(LOG_WARN, "peer %llu (%s): %s has max_connections_per_user (%zu) open, "
                "closing", (unsigned long long)p->id, amp_conn_peer_name(p->conn), id->name,
                r->cfg.max_connections_per_user);
        amp_conn_abort(p->conn);
        return;
    }
    auth_credential cred = {0};
    cred.method = AUTH_BY_CERT;
    cred.cert_mode = (int)rule->mode;
    logged_in(p, id, &cred, "client certificate");
}

static void login_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct peer *p = w->data;
    p->r->stats.login_timeouts++;
    log_msg(LOG_WARN, "peer %llu (%s): no login within %g s, closing", (unsigned long long)p->id,
            amp_conn_peer_name(p->conn), p->r->cfg.login_timeout);
    amp_conn_abort(p->conn);
}

void login_attach(router *r, struct peer *p)
{
    ev_timer_init(&p->login.timer, login_timeout, r->cfg.login_timeout, 0);
    p->login.timer.data = p;
    ev_timer_init(&p->login.hold_timer, hold_done, 0, 0);
    p->login.hold_timer.data = p;
    if (!r->login.auth)
        return;
    if (auth_anonymous(r->login.auth)) {
        anonymous_login(p, auth_anonymous(r->login.auth));
    } else { /* tight caps and a deadline until it logs in */
        amp_session_set_limits(amp_conn_session(p->conn), &r->cfg.login_limits);
        ev_timer_start(r->loop, &p->login.timer);
    }
}

/* Its password check, if one runs, is dropped when it comes back; its user
 * count and credential go. */
void login_detach(router *r, struct peer *p)
{
    struct peer_login *pl = &p->login;
    ev_timer_stop(r->loop, &pl->timer);
    ev_timer_stop(r->loop, &pl->hold_timer);
    if (pl->held) /* released: the connection is gone */
        amp_request_error(pl->held, "LOGIN_THROTTLED", "the connection is gone", 0);
    pl->held = NULL;
    if (pl->check)
        pl->check->peer = NULL;
    pl->check = NULL;
    uncount_user(r, p);
    auth_credential_clear(&pl->cred);
    free(pl->user);
    pl->user = NULL;
}

/* ---- reloads -------------------------------------------------------------------- */

/* The login worker pool and the failure tables, made when authentication
 * is first installed (a broker without it needs no threads). */
static int start_workers(router *r)
{
    struct logins *lg = &r->login;
    if (lg->hasher)
        return 0;
    char err[256];
    lg->fail_users = throttle_new(THROTTLE_SLOTS, r->cfg.login_throttle_after,
                                  r->cfg.login_throttle_max);
    lg->fail_sources = throttle_new(THROTTLE_SLOTS, r->cfg.login_throttle_after,
                                    r->cfg.login_throttle_max);
    lg->fail_token_sources = throttle_new(THROTTLE_SLOTS, r->cfg.login_throttle_after,
                                          r->cfg.login_throttle_max);
    if (!lg->fail_users || !lg->fail_sources || !lg->fail_token_sources) {
        log_msg(LOG_ERROR, "no memory for the login failure tables");
        return -1;
    }
    if (!(lg->hasher = hasher_new(r->loop, r->cfg.login_workers, err, sizeof err))) {
        log_msg(LOG_ERROR, "login workers: %s", err);
        return -1;
    }
    return 0;
}

int login_install(router *r, auth *a, auth **old)
{
    if (a && start_workers(r)) {
        auth_free(a);
        return -1;
    }
    *old = r->login.auth;
    r->login.auth = a;
    return 0;
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

int login_recheck(router *r, struct peer *p)
{
    auth *a = r->login.auth;
    struct peer_login *pl = &p->login;
    if (!a) {
        pl->who = NULL;
        return 0;
    }
    if (!pl->user) {
        if (auth_anonymous(a))
            anonymous_login(p, auth_anonymous(a));
        else if (!ev_is_active(&pl->timer))
            ev_timer_start(r->loop, &pl->timer);
        return 0;
    }
    /* what it logged in with must still verify: the same password
     * hash, the same token, the user still there */
    pl->who = auth_recheck(a, pl->user, &pl->cred);
    if (!pl->who) {
        r->stats.credentials_revoked++;
        log_msg(LOG_WARN, "peer %llu (%s): %s is no longer allowed (%s), disconnecting",
                (unsigned long long)p->id, amp_conn_peer_name(p->conn), pl->user,
                revoked_why(&pl->cred));
        amp_conn_abort(p->conn); /* the close callback unlinks and frees p */
        return 0;
    }
    return 1;
}
