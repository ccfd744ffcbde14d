/* The string map behind responder tables (and the broker's command and
 * subscription tables): keyed SipHash, so names a peer picks cannot be made
 * to collide. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "amp/strmap.h"

Test(strmap, siphash24_reference_vectors)
{
    /* the SipHash paper (appendix A) and its reference test.c: key 00..0f,
     * message 00..n-1 */
    uint8_t key[16], msg[15];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 15; i++)
        msg[i] = (uint8_t)i;
    cr_assert_eq(amp_siphash24(key, msg, 15), 0xa129ca6149be45e5ULL);
    cr_assert_eq(amp_siphash24(key, msg, 0), 0x726fdb47dd0e0e31ULL);
    cr_assert_eq(amp_siphash24(key, msg, 1), 0x74f839c593dc67fdULL);
    cr_assert_eq(amp_siphash24(key, msg, 8), 0x93f5f5799a932462ULL);
}

Test(strmap, each_map_has_its_own_key)
{
    amp_strmap a, b;
    cr_assert_eq(amp_strmap_init(&a), 0);
    cr_assert_eq(amp_strmap_init(&b), 0);
    const char *names[] = {"", "Sum", "amp.Register", "x"};
    for (size_t i = 0; i < 4; i++) {
        const uint8_t *k = (const uint8_t *)names[i];
        size_t n = strlen(names[i]);
        cr_assert_neq(amp_strmap_hash(&a, k, n), amp_strmap_hash(&b, k, n), "'%s'", names[i]);
        cr_assert_eq(amp_strmap_hash(&a, k, n), amp_strmap_hash(&a, k, n));
    }
    amp_strmap_free(&a);
    amp_strmap_free(&b);
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

#define NAMES 1000
#define LOW_BITS 12 /* covers every table size up to 4,096 slots */

/* Longest linear-probing chain for these hashes in a table of `size`. */
static size_t max_probe_with(const uint64_t *h, size_t n, size_t size)
{
    static uint8_t used[1 << LOW_BITS];
    memset(used, 0, size);
    size_t most = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = h[i] & (size - 1), probe = 1;
        while (used[j]) {
            j = (j + 1) & (size - 1);
            probe++;
        }
        used[j] = 1;
        most = probe > most ? probe : most;
    }
    return most;
}

Test(strmap, names_colliding_under_fnv1a_make_no_long_chains)
{
    /* what a peer would register against an unkeyed FNV-1a table: names
     * whose hashes share their low bits, so they all want the same slot */
    static char names[NAMES][16];
    static uint64_t fnv[NAMES];
    size_t found = 0;
    for (uint32_t i = 0; found < NAMES; i++) {
        char name[16];
        int n = snprintf(name, sizeof name, "cmd%u", i);
        uint64_t h = fnv1a((const uint8_t *)name, (size_t)n);
        if ((h & ((1u << LOW_BITS) - 1)) == 0) {
            memcpy(names[found], name, (size_t)n + 1);
            fnv[found++] = h;
        }
    }
    amp_strmap m;
    cr_assert_eq(amp_strmap_init(&m), 0);
    static int values[NAMES];
    for (size_t i = 0; i < NAMES; i++) {
        int *v = malloc(sizeof *v);
        *v = (int)i;
        cr_assert_eq(amp_strmap_put(&m, (const uint8_t *)names[i], strlen(names[i]), v), 0);
        values[i] = (int)i;
    }
    size_t size = m.mask + 1;
    cr_assert(size <= (1u << LOW_BITS));
    /* under FNV-1a they would form one chain of every name */
    cr_assert_eq(max_probe_with(fnv, NAMES, size), NAMES);
    size_t probe = amp_strmap_max_probe(&m);
    cr_assert(probe < 40, "longest probe %zu in %zu slots for %d names", probe, size, NAMES);
    for (size_t i = 0; i < NAMES; i++) {
        int *v = amp_strmap_get(&m, (const uint8_t *)names[i], strlen(names[i]));
        cr_assert(v && *v == values[i]);
    }
    /* removal keeps every other name reachable */
    for (size_t i = 0; i < NAMES; i += 2)
        free(amp_strmap_remove(&m, (const uint8_t *)names[i], strlen(names[i])));
    for (size_t i = 0; i < NAMES; i++) {
        int *v = amp_strmap_get(&m, (const uint8_t *)names[i], strlen(names[i]));
        cr_assert(i % 2 ? v && *v == values[i] : v == NULL, "name %zu", i);
    }
    cr_assert_eq(m.count, NAMES / 2);
    amp_strmap_free(&m);
}

Test(strmap, put_get_remove)
{
    amp_strmap m;
    cr_assert_eq(amp_strmap_init(&m), 0);
    int *v = malloc(sizeof *v);
    cr_assert_eq(amp_strmap_put(&m, (const uint8_t *)"", 0, v), 0, "the empty name is a key");
    cr_assert_eq(amp_strmap_put(&m, (const uint8_t *)"", 0, v), AMP_E_DUPLICATE, "already there");
    cr_assert_eq(amp_strmap_get(&m, (const uint8_t *)"", 0), v);
    cr_assert_null(amp_strmap_get(&m, (const uint8_t *)"a", 1));
    cr_assert_eq(amp_strmap_remove(&m, (const uint8_t *)"", 0), v);
    cr_assert_null(amp_strmap_remove(&m, (const uint8_t *)"", 0));
    free(v);
    amp_strmap_free(&m);
}
