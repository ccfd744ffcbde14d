/* Bounded, keyed table of recent login failures. */
#include "throttle.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amp/strmap.h" /* amp_siphash24, amp_random_key */

#define WAYS 8
#define FORGET_SECONDS 900.0
#define FIRST_WAIT 1.0

struct slot {
    uint64_t tag; /* 0: empty */
    unsigned failures;
    double last;  /* time of the last failure */
    double until; /* no try before this */
};

struct throttle {
    struct slot *slots;
    size_t nsets; /* a power of two */
    unsigned after;
    double max_wait;
    uint8_t key[16]; /* SipHash key: names cannot be chosen to share a set */
};

throttle *throttle_new(size_t slots, unsigned after, double max_wait)
{
    struct throttle *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->nsets = 1;
    while (t->nsets * WAYS < slots)
        t->nsets *= 2;
    t->after = after;
    t->max_wait = max_wait;
    t->slots = calloc(t->nsets * WAYS, sizeof *t->slots);
    if (!t->slots || amp_random_key(t->key)) {
        throttle_free(t);
        return NULL;
    }
    return t;
}

void throttle_free(throttle *t)
{
    if (t)
        free(t->slots);
    free(t);
}

static uint64_t tag_of(const throttle *t, const void *key, size_t n)
{
    uint64_t h = amp_siphash24(t->key, key, n);
    return h ? h : 1; /* 0 marks an empty slot */
}

static struct slot *set_of(throttle *t, uint64_t tag)
{
    return &t->slots[((tag >> 32) & (t->nsets - 1)) * WAYS];
}

static struct slot *find(throttle *t, uint64_t tag, double now)
{
    struct slot *set = set_of(t, tag);
    for (int i = 0; i < WAYS; i++)
        if (set[i].tag == tag) {
            if (now - set[i].last > FORGET_SECONDS)
                memset(&set[i], 0, sizeof set[i]);
            return set[i].tag ? &set[i] : NULL;
        }
    return NULL;
}

double throttle_wait(throttle *t, const void *key, size_t n, double now)
{
    struct slot *s = find(t, tag_of(t, key, n), now);
    return s && s->until > now ? s->until - now : 0;
}

/* An empty or forgotten slot, else the one with the fewest failures and,
 * among those, the oldest. */
static struct slot *victim(struct slot *set, double now)
{
    struct slot *best = &set[0];
    for (int i = 0; i < WAYS; i++) {
        if (!set[i].tag || now - set[i].last > FORGET_SECONDS)
            return &set[i];
        if (set[i].failures < best->failures ||
            (set[i].failures == best->failures && set[i].last < best->last))
            best = &set[i];
    }
    return best;
}

void throttle_failed(throttle *t, const void *key, size_t n, double now)
{
    uint64_t tag = tag_of(t, key, n);
    struct slot *s = find(t, tag, now);
    if (!s) {
        s = victim(set_of(t, tag), now);
        memset(s, 0, sizeof *s);
        s->tag = tag;
    }
    s->failures++;
    s->last = now;
    if (t->max_wait > 0 && s->failures >= t->after) {
        unsigned k = s->failures - t->after;
        double wait = k >= 30 ? t->max_wait : FIRST_WAIT * (double)(1u << k);
        s->until = now + (wait < t->max_wait ? wait : t->max_wait);
    }
}

void throttle_succeeded(throttle *t, const void *key, size_t n)
{
    uint64_t tag = tag_of(t, key, n);
    struct slot *set = set_of(t, tag);
    for (int i = 0; i < WAYS; i++)
        if (set[i].tag == tag)
            memset(&set[i], 0, sizeof set[i]);
}
