/* Outstanding calls: a slab of entries, an open-addressing hash from call id
 * to slab index (linear probing, backward-shift deletion) and a binary heap
 * of deadlines. Call ids are a counter chosen by us, not by the peer, so a
 * fixed mixer spreads them well. */
#include "calltable.h"

#include "alloc_internal.h"

#include <string.h>

#define IDX(t, c) ((uint32_t)((c) - (t)->slab))
#define MIN_CAP 64u

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

int amp_calltable_init(amp_calltable *t, const amp_allocator *alloc)
{
    memset(t, 0, sizeof *t);
    t->alloc = alloc;
    t->hash = amp__calloc(t->alloc, MIN_CAP, sizeof *t->hash);
    if (!t->hash)
        return -1;
    t->hash_mask = MIN_CAP - 1;
    return 0;
}

void amp_calltable_free(amp_calltable *t)
{
    amp__free(t->alloc, t->slab);
    amp__free(t->alloc, t->hash);
    amp__free(t->alloc, t->heap);
    memset(t, 0, sizeof *t);
}

void amp_calltable_clear(amp_calltable *t)
{
    amp__free(t->alloc, t->slab);
    amp__free(t->alloc, t->heap);
    t->slab = NULL;
    t->heap = NULL;
    t->slab_cap = t->free_head = t->heap_len = t->heap_cap = 0;
    t->live = 0;
    uint32_t *h = t->hash_mask + 1 > MIN_CAP ? amp__realloc(t->alloc, t->hash, MIN_CAP * sizeof *h)
                                             : t->hash;
    if (h) {
        t->hash = h;
        t->hash_mask = MIN_CAP - 1;
    }
    memset(t->hash, 0, ((size_t)t->hash_mask + 1) * sizeof *t->hash);
}

/* Fill the zeroed hash `h` of new_size slots with every used slab entry and
 * make it the table's. */
static void fill_hash(amp_calltable *t, uint32_t *h, uint32_t new_size)
{
    uint32_t mask = new_size - 1;
    for (uint32_t i = 0; i < t->slab_cap; i++) {
        if (!t->slab[i].used)
            continue;
        uint32_t j = (uint32_t)mix(t->slab[i].id) & mask;
        while (h[j])
            j = (j + 1) & mask;
        h[j] = i + 1;
    }
    amp__free(t->alloc, t->hash);
    t->hash = h;
    t->hash_mask = mask;
}

static int rehash(amp_calltable *t, uint32_t new_size)
{
    uint32_t *h = amp__calloc(t->alloc, new_size, sizeof *h);
    if (!h)
        return -1;
    fill_hash(t, h, new_size);
    return 0;
}

static uint32_t *slot_of(amp_calltable *t, uint64_t id)
{
    uint32_t j = (uint32_t)mix(id) & t->hash_mask;
    while (t->hash[j]) {
        if (t->slab[t->hash[j] - 1].id == id)
            return &t->hash[j];
        j = (j + 1) & t->hash_mask;
    }
    return NULL;
}

struct amp_call *amp_calltable_add(amp_calltable *t, uint64_t id)
{
    if ((t->live + 1) * 2 > (size_t)t->hash_mask + 1 && rehash(t, (t->hash_mask + 1) * 2))
        return NULL;
    if (!t->free_head) {
        uint32_t cap = t->slab_cap ? t->slab_cap * 2 : MIN_CAP;
        struct amp_call *s = amp__realloc(t->alloc, t->slab, cap * sizeof *s);
        if (!s)
            return NULL;
        t->slab = s;
        for (uint32_t i = cap; i-- > t->slab_cap;) {
            s[i].used = 0;
            s[i].next_free = t->free_head;
            t->free_head = i + 1;
        }
        t->slab_cap = cap;
    }
    uint32_t idx = t->free_head - 1;
    struct amp_call *c = &t->slab[idx];
    t->free_head = c->next_free;
    memset(c, 0, sizeof *c);
    c->id = id;
    c->used = 1;
    uint32_t j = (uint32_t)mix(id) & t->hash_mask;
    while (t->hash[j])
        j = (j + 1) & t->hash_mask;
    t->hash[j] = idx + 1;
    t->live++;
    return c;
}

struct amp_call *amp_calltable_find(amp_calltable *t, uint64_t id)
{
    uint32_t *slot = slot_of(t, id);
    return slot ? &t->slab[*slot - 1] : NULL;
}

/* ---- heap --------------------------------------------------------------- */

static int earlier(amp_calltable *t, uint32_t a, uint32_t b)
{
    return t->slab[t->heap[a]].deadline < t->slab[t->heap[b]].deadline;
}

static void swap(amp_calltable *t, uint32_t a, uint32_t b)
{
    uint32_t x = t->heap[a];
    t->heap[a] = t->heap[b];
    t->heap[b] = x;
    t->slab[t->heap[a]].heap_pos = a + 1;
    t->slab[t->heap[b]].heap_pos = b + 1;
}

static void sift_up(amp_calltable *t, uint32_t i)
{
    while (i > 0 && earlier(t, i, (i - 1) / 2)) {
        swap(t, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void sift_down(amp_calltable *t, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->heap_len && earlier(t, l, m))
            m = l;
        if (r < t->heap_len && earlier(t, r, m))
            m = r;
        if (m == i)
            return;
        swap(t, i, m);
        i = m;
    }
}

static void heap_remove(amp_calltable *t, struct amp_call *c)
{
    if (!c->heap_pos)
        return;
    uint32_t i = c->heap_pos - 1;
    c->heap_pos = 0;
    t->heap_len--;
    if (i == t->heap_len)
        return;
    t->heap[i] = t->heap[t->heap_len];
    t->slab[t->heap[i]].heap_pos = i + 1;
    sift_up(t, i);
    sift_down(t, i);
}

void amp_calltable_set_deadline(amp_calltable *t, struct amp_call *c, uint64_t deadline)
{
    heap_remove(t, c);
    if (t->heap_len == t->heap_cap) {
        uint32_t cap = t->heap_cap ? t->heap_cap * 2 : MIN_CAP;
        uint32_t *h = amp__realloc(t->alloc, t->heap, cap * sizeof *h);
        if (!h)
            return; /* no deadline rather than a crash; the call still completes */
        t->heap = h;
        t->heap_cap = cap;
    }
    c->deadline = deadline;
    t->heap[t->heap_len] = IDX(t, c);
    c->heap_pos = ++t->heap_len;
    sift_up(t, t->heap_len - 1);
}

struct amp_call *amp_calltable_due(amp_calltable *t, uint64_t now)
{
    if (!t->heap_len)
        return NULL;
    struct amp_call *c = &t->slab[t->heap[0]];
    return c->deadline <= now ? c : NULL;
}

int amp_calltable_next_deadline(const amp_calltable *t, uint64_t *deadline)
{
    if (!t->heap_len)
        return 0;
    if (deadline)
        *deadline = t->slab[t->heap[0]].deadline;
    return 1;
}

/* ---- removal ---------------------------------------------------------- */

void amp_calltable_remove(amp_calltable *t, struct amp_call *c)
{
    heap_remove(t, c);
    uint32_t *slot = slot_of(t, c->id);
    if (slot) { /* backward-shift deletion keeps probe chains intact */
        uint32_t i = (uint32_t)(slot - t->hash);
        uint32_t j = i;
        for (;;) {
            j = (j + 1) & t->hash_mask;
            if (!t->hash[j])
                break;
            uint32_t home = (uint32_t)mix(t->slab[t->hash[j] - 1].id) & t->hash_mask;
            /* move hash[j] into the hole at i unless its home lies in (i, j] */
            if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
                t->hash[i] = t->hash[j];
                i = j;
            }
        }
        t->hash[i] = 0;
    }
    t->live--;
    c->used = 0;
    c->next_free = t->free_head;
    t->free_head = IDX(t, c) + 1;
}

struct amp_call *amp_calltable_next_live(amp_calltable *t, uint32_t *cursor)
{
    for (; *cursor < t->slab_cap; (*cursor)++) {
        struct amp_call *c = &t->slab[*cursor];
        if (c->used)
            return c;
    }
    return NULL;
}

size_t amp_calltable_live(const amp_calltable *t)
{
    return t->live;
}

static uint32_t pow2_at_least(size_t n)
{
    uint32_t p = MIN_CAP;
    while (p < n)
        p *= 2;
    return p;
}

/* Move the calls to the front of a smaller slab: the heap keeps its order
 * (only its indices change) and the hash is rebuilt. */
static int shrink_slab(amp_calltable *t, uint32_t cap)
{
    struct amp_call *s = amp__alloc(t->alloc, (size_t)cap * sizeof *s);
    if (!s)
        return -1;
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->slab_cap; i++) {
        if (!t->slab[i].used)
            continue;
        s[n] = t->slab[i];
        t->slab[i].next_free = n++; /* where it went, for the heap */
    }
    for (uint32_t i = 0; i < t->heap_len; i++)
        t->heap[i] = t->slab[t->heap[i]].next_free;
    amp__free(t->alloc, t->slab);
    t->slab = s;
    t->slab_cap = cap;
    t->free_head = 0;
    for (uint32_t i = cap; i-- > n;) {
        s[i].used = 0;
        s[i].next_free = t->free_head;
        t->free_head = i + 1;
    }
    return 0;
}

void amp_calltable_trim(amp_calltable *t)
{
    /* shrink by at least half once three quarters are unused, so that the
     * cost of moving is paid for by the removals since the last growth */
    if (t->slab_cap > MIN_CAP && t->live * 4 <= t->slab_cap) {
        uint32_t cap = pow2_at_least(t->live * 2), hsize = pow2_at_least(t->live * 4);
        uint32_t *h = cap < t->slab_cap ? amp__calloc(t->alloc, hsize, sizeof *h) : NULL;
        if (h && shrink_slab(t, cap) == 0)
            fill_hash(t, h, hsize); /* the old hash points at the old slab */
        else
            amp__free(t->alloc, h);
    }
    if (t->heap_cap > MIN_CAP && (size_t)t->heap_len * 4 <= t->heap_cap) {
        uint32_t cap = pow2_at_least((size_t)t->heap_len * 2);
        uint32_t *h = amp__realloc(t->alloc, t->heap, (size_t)cap * sizeof *h);
        if (h) {
            t->heap = h;
            t->heap_cap = cap;
        }
    }
}

size_t amp_calltable_memory(const amp_calltable *t)
{
    return (size_t)t->slab_cap * sizeof *t->slab + ((size_t)t->hash_mask + 1) * sizeof *t->hash +
           (size_t)t->heap_cap * sizeof *t->heap;
}
