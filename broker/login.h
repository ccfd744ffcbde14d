/* Login and authorisation: who a connection is (amp.Login with a password
 * or a token, a verified client certificate, or anonymous access), the
 * bounds on logging in (login_timeout, pending password checks globally and
 * per address, throttling after failures, max_connections_per_user), the
 * ACL check of every request (login_permit), and re-checking credentials
 * after a reload.
 *
 * Password checks run on the login workers (hasher.h): the only code of the
 * router that runs off the loop thread is auth_password_run() on a copy of
 * what it needs; its result comes back on the loop thread. Everything else
 * here is loop thread only.
 *
 * The dispatch (router.c) calls login_attach at accept, login_detach when
 * the peer goes (a password check still running is then dropped when it
 * comes back, its request released), login_request for amp.Login,
 * login_tls_ready when TLS is up, and login_install / login_recheck on a
 * reload. The other rooms ask login_permit / login_allows / login_enabled.
 * The auth installed is owned here from login_install to the next one (or
 * login_free). */
#ifndef AMP_BROKER_LOGIN_H
#define AMP_BROKER_LOGIN_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "amp/amp.h"
#include "auth.h"
#include "hasher.h"
#include "amp/strmap.h"
#include "throttle.h"

typedef struct router router;
struct peer;
struct login;

/* login.c's state. */
struct logins {
    auth *auth;      /* NULL: no authentication, everything allowed */
    hasher *hasher;  /* password checks off the loop */
    /* recent failures: password logins by user and by address; token logins by
     * address, apart, so that bad passwords from a shared address (NAT, one
     * UNIX uid) cannot lock out token logins from it */
    throttle *fail_users, *fail_sources, *fail_token_sources;
    struct login *pending; /* password checks submitted, not yet done */
    amp_strmap user_conns; /* user name -> size_t: its logged-in connections */
};

/* login.c's part of each peer. */
struct peer_login {
    const struct identity *who; /* with auth: NULL until logged in */
    char *user;                 /* the identity's name, to find it again */
    auth_credential cred;       /* how it logged in, checked again on reload */
    int counted;                /* counted in user_conns */
    struct login *check;        /* its password check, while one runs */
    amp_request *held;          /* a throttled login, answered when hold_timer */
    double held_wait;           /* fires, and the wait left then */
    ev_timer hold_timer;
    ev_timer timer;             /* login_timeout */
};

/* 0, or -1 out of memory. */
int login_init(router *r);
/* After every peer is gone: the workers, the tables and the auth. */
void login_free(router *r);

/* A new peer: with auth, logged in as anonymous or given the tight login
 * limits and login_timeout. */
void login_attach(router *r, struct peer *p);
/* The peer is going. */
void login_detach(router *r, struct peer *p);
/* amp.Login (answered exactly once, now or when its check comes back). */
void login_request(router *r, struct peer *p, amp_request *req, const amp_box *box);
/* TLS is up: a verified client certificate may name the user. */
void login_tls_ready(router *r, struct peer *p);

/* Authentication is on. */
int login_enabled(const router *r);
/* With auth, p has not logged in yet (everything but amp.Login is refused). */
int login_needed(const router *r, const struct peer *p);
/* The name p logged in as, or NULL. */
const char *login_user(const struct peer *p);
/* May p do `action` on `subject`? Always, without auth. */
int login_allows(const router *r, const struct peer *p, enum acl_action action,
                 const uint8_t *subject, size_t n);
/* login_allows() for any one of `actions` (auth_allowed_any: one pass). */
int login_allows_any(const router *r, const struct peer *p, unsigned actions,
                     const uint8_t *subject, size_t n);
/* login_allows(), or else PERMISSION_DENIED answered, logged and counted. */
int login_permit(router *r, struct peer *p, amp_request *req, enum acl_action action,
                 const uint8_t *subject, size_t n);

/* Install users and ACL (NULL: none); *old gets the auth it replaces, for
 * the caller to free once every peer is re-checked. The first auth starts
 * the login workers: -1 (logged, `a` freed, nothing changed) if they
 * cannot start. */
int login_install(router *r, auth *a, auth **old);
/* After login_install, for each peer: 1 if it stays logged in as a user
 * whose registrations and subscriptions must be re-checked against the new
 * ACL; 0 if there is nothing to re-check (no auth, not logged in: it is
 * logged in anonymously or its login_timeout runs again) or if its
 * credential no longer verifies: then it is closed (and freed). */
int login_recheck(router *r, struct peer *p);

#endif
