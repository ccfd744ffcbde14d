/* SipHash-2-4 (Aumasson and Bernstein, 2012): the keyed hash of every table
 * whose keys a peer chooses. */
#include "amp/strmap.h"
#include "siphash_internal.h"

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

uint64_t amp__siphash_k(uint64_t k0, uint64_t k1, const uint8_t *p, size_t n)
{
    return siphash(k0, k1, p, n);
}

void amp__siphash_key(const uint8_t key[16], uint64_t *k0, uint64_t *k1)
{
    *k0 = load_le64(key);
    *k1 = load_le64(key + 8);
}

