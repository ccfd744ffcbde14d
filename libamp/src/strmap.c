#include "strmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ---- SipHash-2-4 (Aumasson and Bernstein, 2012) --------------------------- */

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

#define SIPROUND(v0, v1, v2, v3)                                                               \
    do {                                                                                       \
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);                              \
        v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                                                 \
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                                                 \
        v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);                              \
    } while (0)

static uint64_t siphash(uint64_t k0, uint64_t k1, const uint8_t *p, size_t n)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    const uint8_t *end = p + (n & ~(size_t)7);
    for (; p != end; p += 8) {
        uint64_t m = load_le64(p);
        v3 ^= m;
        SIPROUND(v0, v1, v2, v3);
        SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    uint64_t last = (uint64_t)(n & 0xff) << 56; /* the length's low byte, then the tail */
    for (size_t i = 0; i < (n & 7); i++)
        last |= (uint64_t)p[i] << (8 * i);
    v3 ^= last;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    v0 ^= last;
    v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t amp_siphash24(const uint8_t key[16], const uint8_t *p, size_t n)
{
    return siphash(load_le64(key), load_le64(key + 8), p, n);
}

static uint64_t hash_of(const amp_strmap *m, const uint8_t *key, size_t n)
{
    return siphash(m->k0, m->k1, key, n);
}

uint64_t amp_strmap_hash(const amp_strmap *m, const uint8_t *key, size_t n)
{
    return hash_of(m, key, n);
}

/* ---- the map ------------------------------------------------------------- */

/* 16 random bytes from the kernel; getrandom() only blocks before the
 * kernel's pool is first seeded, early in boot. */
int amp_random_key(uint8_t key[16])
{
    size_t got = 0;
    while (got < 16) {
        ssize_t r = getrandom(key + got, 16 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int amp_strmap_init(amp_strmap *m)
{
    memset(m, 0, sizeof *m);
    uint8_t key[16];
    if (amp_random_key(key))
        return -2;
    m->k0 = load_le64(key);
    m->k1 = load_le64(key + 8);
    m->slots = calloc(16, sizeof *m->slots);
    m->mask = 15;
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
    amp_strmap bigger = {calloc((m->mask + 1) * 2, sizeof *m->slots), m->mask * 2 + 1, m->count,
                         m->k0, m->k1};
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
    uint64_t h = hash_of(m, key, n);
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
    struct amp_strmap_entry *e = find(m, key, n, hash_of(m, key, n));
    return e->key ? e->value : NULL;
}

void *amp_strmap_remove(amp_strmap *m, const uint8_t *key, size_t n)
{
    struct amp_strmap_entry *e = find(m, key, n, hash_of(m, key, n));
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
