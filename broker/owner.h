/* Owners: who a connection's holdings count for. The user it logged in as,
 * or, for a connection not logged in as a user (anonymous, or no auth), its
 * address. Quotas per owner keep one user or one address from taking a
 * broker-wide limit (max_subscriptions_total, max_commands) for itself, and
 * the budget (budget.h) sheds the owner holding the most first, so a crowd
 * of small connections cannot get a busy client closed in its place.
 *
 * The dispatch gives every peer its address as owner at accept; the login
 * room moves it to its user on login (owner_set); the registry and pub/sub
 * count what it takes and gives back (owner_count); the dispatch releases it
 * when the peer goes (owner_release). An owner lives while a peer refers to
 * it. Loop thread only. */
#ifndef AMP_BROKER_OWNER_H
#define AMP_BROKER_OWNER_H

#include <stddef.h>

#include "amp/strmap.h"

typedef struct router router;
struct peer;
struct owner;

/* owner.c's state. */
struct owners {
    amp_strmap map; /* key -> struct owner */
};

/* 0, or -1 out of memory. */
int owners_init(router *r);
/* Every peer has released its owner by now: the table is empty. */
void owners_free(router *r);

enum owner_holding { OWNER_SUBS, OWNER_REGS };

/* Make p count for the owner with this key (kind 'u': a user name, 'a': an
 * address key), its holdings moving along. On no memory p stays with its
 * owner. */
void owner_set(router *r, struct peer *p, char kind, const void *name, size_t n);
void owner_release(router *r, struct peer *p);
/* p took (+1) or gave back (-1) a subscription or a registration. */
void owner_count(struct peer *p, enum owner_holding what, int delta);
/* What p's owner holds over all its connections (0 without an owner). */
size_t owner_holds(const struct peer *p, enum owner_holding what);
/* How a refusal names the owner: its user, or "this address". */
const char *owner_label(const struct peer *p);

#endif
