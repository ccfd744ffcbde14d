/* What the router's rooms share: the router and its peers.
 *
 * The router (router.c, the dispatch) owns both structs, the list of peers
 * and their lifetime: a peer is made by router_accept() and freed by the
 * connection's close callback, after every room has let go of it
 * (registry_detach, pubsub_detach, login_detach, owner_release). A peer
 * pointer held by a room is valid until then; amp_conn_abort() on a peer
 * frees it before returning.
 *
 * Each room keeps its state in its own struct, embedded here, and its part
 * of each peer in a struct of its own: the fields of those are the room's,
 * and other rooms go through the room's functions. Two things are shared
 * on purpose: the counter block (stats.h: plain increments, read by
 * stats.c) and the peer's identity fields below (set by the dispatch at
 * accept, read by all).
 *
 * Threads: everything here runs on the loop thread. The one exception is
 * the login workers (hasher.h), which run a password check on a copy and
 * touch nothing here. */
#ifndef AMP_BROKER_ROUTER_INTERNAL_H
#define AMP_BROKER_ROUTER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "log.h"
#include "login.h"
#include "owner.h"
#include "pubsub.h"
#include "registry.h"
#include "router.h"
#include "stats.h"

struct peer {
    /* identity, set at accept (router.c) */
    router *r;
    amp_conn *conn;
    uint64_t id;
    uint8_t source[17]; /* its address (IPv6: the /64), or UNIX peer uid: */
    size_t source_len;  /* the key of per-address limits and owners */
    log_bucket log;     /* rate limit of the lines it causes */
    struct peer *prev, *next; /* router.peers */

    struct owner *owner;       /* owner.c: whose quotas it uses */
    struct peer_login login;   /* login.c */
    struct peer_regs reg;      /* registry.c */
    struct peer_subs sub;      /* pubsub.c */
    struct peer_budget budget; /* budget.c */
};

struct router {
    struct ev_loop *loop;
    router_config cfg; /* zeroes replaced by what they mean (router_new) */
    struct peer *peers;
    size_t npeers;
    uint64_t next_peer_id;
    int draining;
    /* lines every connection causes once (who it is, why it went): one
     * bucket for all, so churning connections cannot flood the log */
    log_bucket conn_log;
    log_bucket refusals_log; /* refused connections: one bucket for all */

    struct registry reg;
    struct pubsub ps;
    struct logins login;
    struct owners owners;
    struct budget budget;
    struct stats stats;
};

#endif
