#include "strmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

int amp_strmap_init(amp_strmap *m)
{
    m->slots = calloc(16, sizeof *m->slots);
    m->mask = 15;
    m->count = 0;
    return m->slots ? 0 : -1;
}

void amp_strmap_free(amp_strmap *m)
{
    if (!m->slots)
        return;
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->slots[i].key) {
            free(m->slots[i].key);
            free(m->slots[i].value);
        }
    }
    free(m->slots);
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
    amp_strmap bigger = {calloc((m->mask + 1) * 2, sizeof *m->slots), m->mask * 2 + 1, m->count};
    if (!bigger.slots)
        return -1;
    for (size_t i = 0; i <= m->mask; i++)
        if (m->slots[i].key)
            *find(&bigger, m->slots[i].key, m->slots[i].key_len, m->slots[i].hash) = m->slots[i];
    free(m->slots);
    *m = bigger;
    return 0;
}

int amp_strmap_put(amp_strmap *m, const uint8_t *key, size_t n, void *value)
{
    if ((m->count + 1) * 2 > m->mask + 1 && grow(m))
        return -1;
    uint64_t h = fnv1a(key, n);
    struct amp_strmap_entry *e = find(m, key, n, h);
    if (e->key)
        return 1;
    e->key = malloc(n ? n : 1);
    if (!e->key)
        return -1;
    memcpy(e->key, key, n);
    e->key_len = n;
    e->hash = h;
    e->value = value;
    m->count++;
    return 0;
}

void *amp_strmap_get(const amp_strmap *m, const uint8_t *key, size_t n)
{
    struct amp_strmap_entry *e = find(m, key, n, fnv1a(key, n));
    return e->key ? e->value : NULL;
}

void *amp_strmap_remove(amp_strmap *m, const uint8_t *key, size_t n)
{
    struct amp_strmap_entry *e = find(m, key, n, fnv1a(key, n));
    if (!e->key)
        return NULL;
    void *value = e->value;
    free(e->key);
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
