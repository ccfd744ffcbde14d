/* The static-arena allocator the Cortex-M image gives amp::core, tested on
 * the host: blocks do not overlap, freeing merges neighbours, realloc keeps
 * the bytes, an exhausted arena says so, and everything freed is reusable. */
#include <criterion/criterion.h>
#include <string.h>

#include "arena.h"

static _Alignas(8) uint8_t mem[4096];

Test(arena, allocations_are_aligned_and_disjoint)
{
    amp_arena a;
    amp_arena_init(&a, mem, sizeof mem);
    uint8_t *p[8];
    for (int i = 0; i < 8; i++) {
        p[i] = amp_arena_alloc(&a, (size_t)(1 + 37 * i));
        cr_assert(p[i] != NULL);
        cr_assert_eq((uintptr_t)p[i] % 8, 0);
        memset(p[i], 0xa0 + i, (size_t)(1 + 37 * i));
    }
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 1 + 37 * i; k++)
            cr_assert_eq(p[i][k], 0xa0 + i, "block %d overwritten", i);
    for (int i = 0; i < 8; i++)
        amp_arena_free(&a, p[i]);
    cr_assert_eq(a.in_use, 0);
    cr_assert(a.high_water > 0);
}

Test(arena, counts_what_is_allocated_not_what_is_free)
{
    amp_arena a;
    amp_arena_init(&a, mem, sizeof mem);
    void *p = amp_arena_alloc(&a, 100);
    cr_assert(p != NULL);
    cr_assert_eq(a.in_use, 112, "100 bytes, an 8-byte header, rounded to 8: %zu", a.in_use);
    cr_assert_eq(a.high_water, a.in_use);
    p = amp_arena_realloc(&a, p, 1000); /* grows in place */
    cr_assert_eq(a.in_use, 1008);
    p = amp_arena_realloc(&a, p, 10); /* shrinks in place */
    cr_assert_eq(a.in_use, 24);
    cr_assert_eq(a.high_water, 1008);
    amp_arena_free(&a, p);
    cr_assert_eq(a.in_use, 0);
}

Test(arena, freed_neighbours_merge_into_one_block)
{
    amp_arena a;
    amp_arena_init(&a, mem, sizeof mem);
    void *x = amp_arena_alloc(&a, 1000), *y = amp_arena_alloc(&a, 1000),
         *z = amp_arena_alloc(&a, 1000);
    cr_assert(x && y && z);
    cr_assert_null(amp_arena_alloc(&a, 2000));
    cr_assert_eq(a.failures, 1);
    /* free in an order that needs both merges: after, then before */
    amp_arena_free(&a, x);
    amp_arena_free(&a, z);
    amp_arena_free(&a, y);
    cr_assert_eq(a.in_use, 0);
    void *big = amp_arena_alloc(&a, sizeof mem - 64);
    cr_assert(big != NULL, "the arena did not merge back into one block");
    amp_arena_free(&a, big);
}

Test(arena, realloc_keeps_bytes_grows_in_place_and_shrinks)
{
    amp_arena a;
    amp_arena_init(&a, mem, sizeof mem);
    uint8_t *p = amp_arena_realloc(&a, NULL, 10);
    cr_assert(p != NULL);
    memcpy(p, "0123456789", 10);
    uint8_t *q = amp_arena_realloc(&a, p, 1000);
    cr_assert_eq(q, p, "the free space after the block was not used");
    cr_assert(memcmp(q, "0123456789", 10) == 0);
    void *blocker = amp_arena_alloc(&a, 16);
    uint8_t *r = amp_arena_realloc(&a, q, 2000); /* must move */
    cr_assert(r != NULL && r != q);
    cr_assert(memcmp(r, "0123456789", 10) == 0);
    uint8_t *s = amp_arena_realloc(&a, r, 8);
    cr_assert_eq(s, r);
    cr_assert_null(amp_arena_realloc(&a, s, sizeof mem), "more than the arena holds");
    cr_assert(memcmp(s, "01234567", 8) == 0, "a failed realloc must leave the block as it was");
    cr_assert_null(amp_arena_realloc(&a, s, 0));
    amp_arena_free(&a, blocker);
    cr_assert_eq(a.in_use, 0);
}

Test(arena, survives_a_long_mixed_run)
{
    amp_arena a;
    amp_arena_init(&a, mem, sizeof mem);
    void *slot[16] = {0};
    size_t size[16] = {0};
    uint32_t seed = 1;
    for (int step = 0; step < 20000; step++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 16) % 16);
        size_t n = (seed >> 8) % 300;
        if (slot[i]) {
            for (size_t k = 0; k < size[i]; k++)
                cr_assert_eq(((uint8_t *)slot[i])[k], (uint8_t)i, "step %d", step);
        }
        void *p = amp_arena_realloc(&a, slot[i], n);
        if (n == 0 || p) {
            slot[i] = p;
            size[i] = n;
            if (p)
                memset(p, i, n);
        }
    }
    for (int i = 0; i < 16; i++)
        amp_arena_free(&a, slot[i]);
    cr_assert_eq(a.in_use, 0);
    cr_assert_not_null(amp_arena_alloc(&a, sizeof mem - 64));
}
