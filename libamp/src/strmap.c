/* The keyed string map (see amp/strmap.h for the contract). */
#include "amp/strmap.h"

#include <string.h>

#include "alloc_internal.h"
#include "siphash_internal.h"

static uint64_t hash_of(const amp_strmap *m, const uint8_t *key, size_t n)
{
    return amp__siphash_k(m->k0, m->k1, key, n);
}

uint64_t amp_strmap_hash(const amp_strmap *m, const uint8_t *key, size_t n)
{
    return hash_of(m, key, n);
}

/* ---- the map ------------------------------------------------------------- */

amp_err amp_strmap_init(amp_strmap *m)
{
    return amp_strmap_init_with(m, NULL, NULL);
}

amp_err amp_strmap_init_with(amp_strmap *m, const uint8_t key[16],
                             const amp_allocator *allocator)
{
    if (!m)
        return AMP_E_INVALID;
    memset(m, 0, sizeof *m);
    if (allocator && (!allocator->alloc || !allocator->realloc || !allocator->free))
        return AMP_E_INVALID;
    uint8_t random[16];
    if (!key) {
        amp_err r = amp_random_key(random);
        if (r != AMP_OK)
            return r;
        key = random;
    }
    amp__siphash_key(key, &m->k0, &m->k1);
    m->alloc = allocator ? *allocator : *amp_allocator_default();
    m->slots = amp__calloc(&m->alloc, 16, sizeof *m->slots);
    m->mask = 15;
    return m->slots ? AMP_OK : AMP_E_NOMEM;
}

void amp_strmap_free(amp_strmap *m)
{
    if (!m || !m->slots)
        return;
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->slots[i].key) {
            amp__free(&m->alloc, m->slots[i].key);
            amp__free(&m->alloc, m->slots[i].value);
        }
    }
    amp__free(&m->alloc, m->slots);
    m->slots = NULL;
}

static struct amp_strmap_entry *find(const amp_strmap *m, const uint8_t *key, size_t n,
                                     uint64_t h)
{
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        struct amp_strmap_entry *e = &m->slots[i];
        if (!e->key)
            return e;
        if (e->hash == h && e->key_len == n && memcmp(e->key, key, n) == 0)
            return e;
    }
}

static int grow(amp_strmap *m)
{
    amp_strmap bigger = *m;
    bigger.slots = amp__calloc(&m->alloc, (m->mask + 1) * 2, sizeof *m->slots);
    bigger.mask = m->mask * 2 + 1;
    if (!bigger.slots)
        return -1;
    for (size_t i = 0; i <= m->mask; i++)
        if (m->slots[i].key)
            *find(&bigger, m->slots[i].key, m->slots[i].key_len, m->slots[i].hash) = m->slots[i];
    amp__free(&m->alloc, m->slots);
    *m = bigger;
    return 0;
}

amp_err amp_strmap_put(amp_strmap *m, const uint8_t *key, size_t n, void *value)
{
    if (!m || !m->slots || (!key && n))
        return AMP_E_INVALID;
    uint64_t h = hash_of(m, key, n);
    if (find(m, key, n, h)->key)
        return AMP_E_DUPLICATE;
    if ((m->count + 1) * 2 > m->mask + 1 && grow(m))
        return AMP_E_NOMEM;
    struct amp_strmap_entry *e = find(m, key, n, h);
    e->key = amp__memdup(&m->alloc, key, n);
    if (!e->key)
        return AMP_E_NOMEM;
    e->key_len = n;
    e->hash = h;
    e->value = value;
    m->count++;
    return AMP_OK;
}

void *amp_strmap_get(const amp_strmap *m, const uint8_t *key, size_t n)
{
    struct amp_strmap_entry *e = find(m, key, n, hash_of(m, key, n));
    return e->key ? e->value : NULL;
}

void *amp_strmap_remove(amp_strmap *m, const uint8_t *key, size_t n)
{
    struct amp_strmap_entry *e = find(m, key, n, hash_of(m, key, n));
    if (!e->key)
        return NULL;
    void *value = e->value;
    amp__free(&m->alloc, e->key);
    size_t i = (size_t)(e - m->slots);
    m->slots[i].key = NULL;
    m->slots[i].value = NULL;
    m->count--;
    /* re-insert the rest of the probe chain */
    for (size_t j = (i + 1) & m->mask; m->slots[j].key; j = (j + 1) & m->mask) {
        struct amp_strmap_entry moved = m->slots[j];
        m->slots[j].key = NULL;
        *find(m, moved.key, moved.key_len, moved.hash) = moved;
    }
    return value;
}

void amp_strmap_foreach(const amp_strmap *m,
                        void (*fn)(const uint8_t *key, size_t n, void *value, void *ud), void *ud)
{
    for (size_t i = 0; i <= m->mask; i++)
        if (m->slots[i].key)
            fn(m->slots[i].key, m->slots[i].key_len, m->slots[i].value, ud);
}

size_t amp_strmap_max_probe(const amp_strmap *m)
{
    size_t most = 0;
    for (size_t i = 0; m->slots && i <= m->mask; i++) {
        if (!m->slots[i].key)
            continue;
        size_t probe = ((i - (size_t)m->slots[i].hash) & m->mask) + 1;
        most = probe > most ? probe : most;
    }
    return most;
}
