/* The registry: the command table (which peers serve each command, under
 * which load-balancing policy, with which signature if one was declared:
 * signature.h), amp.Register, amp.Unregister, amp.Commands,
 * and the calls routed through it. A call for a command the broker does not
 * own is forwarded to one provider under the broker's own tag and the
 * outcome relayed back under the caller's tag: every _ask accepted gets
 * exactly one answer or error (the conversation layer completes each
 * forwarded call exactly once, and each completion answers its request
 * once).
 *
 * The dispatch (router.c) calls the registry_* request handlers from the
 * session's call callback, registry_detach when a peer goes, and
 * registry_recheck after a reload. A command entry lives while it has
 * providers; a forwarded call's relay lives until its completion, which
 * comes at the latest when the provider's connection closes (PROVIDER_LOST).
 * Loop thread only. */
#ifndef AMP_BROKER_REGISTRY_H
#define AMP_BROKER_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "amp/amp.h"
#include "amp/strmap.h"

typedef struct router router;
struct peer;
struct command;

/* registry.c's state. */
struct registry {
    amp_strmap commands; /* name -> struct command */
    size_t inflight;     /* forwarded calls not answered yet */
    uint64_t rng;        /* the random policy's */
};

/* registry.c's part of each peer. */
struct peer_regs {
    struct command **v; /* what it serves: a close visits only these */
    size_t n, cap;
    int inflight;       /* forwarded calls it has not answered */
};

/* 0, or -1 out of memory. */
int registry_init(router *r);
/* Every peer is detached by now: the table is empty. */
void registry_free(router *r);

/* Requests (each answered exactly once). */
void registry_register(router *r, struct peer *p, amp_request *req, const amp_box *box);
void registry_unregister(router *r, struct peer *p, amp_request *req, const amp_box *box);
/* amp.Commands: all the commands, or the one its `command` names. */
void registry_list(router *r, struct peer *p, amp_request *req, const amp_box *box);
/* A call with _ask for a command the broker does not own. */
void registry_call(router *r, struct peer *caller, amp_request *req, const amp_box *box);

/* The peer is going: it serves nothing from now on. Calls forwarded to it
 * have completed (PROVIDER_LOST) by the time its close callback runs. */
void registry_detach(router *r, struct peer *p);
/* After a reload: registrations the ACL no longer allows are dropped. */
void registry_recheck(router *r, struct peer *p);

/* Registrations of p; commands in the table; forwarded calls unanswered. */
size_t registry_count(const struct peer *p);
size_t registry_commands(const router *r);
size_t registry_inflight(const router *r);

#endif
