/* Owners: quotas over all of a user's (or an address's) connections. */
#include "owner.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router_internal.h"

struct owner {
    size_t held[2];    /* enum owner_holding: of all its connections */
    size_t refs;       /* its connections */
    size_t key_len;
    uint8_t key[];     /* 'u' + user name, or 'a' + the address key */
};

int owners_init(router *r)
{
    return amp_strmap_init(&r->owners.map);
}

void owners_free(router *r)
{
    amp_strmap_free(&r->owners.map);
}

void owner_release(router *r, struct peer *p)
{
    struct owner *o = p->owner;
    if (!o)
        return;
    p->owner = NULL;
    o->held[OWNER_SUBS] -= pubsub_count(p);
    o->held[OWNER_REGS] -= registry_count(p);
    if (--o->refs == 0)
        free(amp_strmap_remove(&r->owners.map, o->key, o->key_len));
}

void owner_set(router *r, struct peer *p, char kind, const void *name, size_t n)
{
    uint8_t key[1 + 256];
    if (n > sizeof key - 1)
        n = sizeof key - 1;
    key[0] = (uint8_t)kind;
    memcpy(key + 1, name, n);
    struct owner *o = amp_strmap_get(&r->owners.map, key, n + 1);
    if (o == p->owner && o)
        return;
    if (!o) {
        o = calloc(1, sizeof *o + n + 1);
        if (!o)
            return;
        memcpy(o->key, key, n + 1);
        o->key_len = n + 1;
        if (amp_strmap_put(&r->owners.map, key, n + 1, o)) {
            free(o);
            return;
        }
    }
    owner_release(r, p);
    o->refs++;
    o->held[OWNER_SUBS] += pubsub_count(p);
    o->held[OWNER_REGS] += registry_count(p);
    p->owner = o;
}

void owner_count(struct peer *p, enum owner_holding what, int delta)
{
    if (p->owner && delta > 0)
        p->owner->held[what]++;
    else if (p->owner)
        p->owner->held[what]--;
}

size_t owner_holds(const struct peer *p, enum owner_holding what)
{
    return p->owner ? p->owner->held[what] : 0;
}

const char *owner_label(const struct peer *p)
{
    const char *user = login_user(p);
    return p->owner && p->owner->key[0] == 'u' && user ? user : "this address";
}
