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
 * amp.Commands lives in listing.c: it reads the table through the structs
 * below (registry.c owns them and changes them; listing.c only reads) and
 * keeps its budget of commands examined per second in struct registry.
 *
 * Loop thread only. */
#ifndef AMP_BROKER_REGISTRY_H
#define AMP_BROKER_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "amp/amp.h"
#include "amp/strmap.h"

typedef struct router router;
struct peer;
struct signature;

enum policy { POLICY_ROUNDROBIN, POLICY_RANDOM, POLICY_FIRST, POLICY_LEAST_BUSY };
/* The policies' names on the wire, by enum policy. */
extern const char *const registry_policy_names[4];

/* One registration of a command. */
struct provider {
    struct peer *peer;
    int declared; /* it carried the command's signature (spec/amp.md 6b.7) */
};

/* An entry of the command table; removed with its last provider. */
struct command {
    struct provider *providers; /* in registration order */
    size_t n, cap;
    size_t declarers;           /* providers with `declared` set: the
                                   signature is forgotten when none is left */
    enum policy policy;
    struct signature *sig;      /* NULL: none declared (yet) */
    size_t rr;
    size_t name_len;
    uint8_t name[];             /* its key in the table */
};

/* registry.c's state (and listing.c's budget). */
struct registry {
    amp_strmap commands; /* name -> struct command */
    size_t inflight;     /* forwarded calls not answered yet */
    uint64_t rng;        /* the random policy's */
    /* amp.Commands' token bucket (listing.c): commands it may still examine,
     * refilled at commands_list_budget a second up to one second's worth,
     * on the loop's monotonic clock; below 0 after a listing larger than
     * a full bucket */
    double list_tokens;
    double list_stamp;
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
/* amp.Commands (listing.c): all the commands, one page of them in name
 * order after its `after`, or the one its `command` names; refused with
 * OVERLOADED over the budget of commands examined per second. */
void registry_list(router *r, struct peer *p, amp_request *req, const amp_box *box);
/* listing.c's budget, full (registry_init). */
void registry_list_init(router *r);
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
