#include "arena.h"

#include <string.h>

/* Every block starts with this header; blocks tile the arena, so the next
 * block is at (header + size) and the previous one at (header - prev). */
typedef struct hdr {
    uint32_t size; /* the whole block, header included; bit 0: in use */
    uint32_t prev; /* size of the block before (0 for the first) */
} hdr;

#define HDR sizeof(hdr)
#define MIN_BLOCK 16u
#define USED 1u

static uint32_t bsize(const hdr *h)
{
    return h->size & ~USED;
}

static int used(const hdr *h)
{
    return h->size & USED;
}

static hdr *first(const amp_arena *a)
{
    return (hdr *)a->base;
}

static hdr *next(const amp_arena *a, hdr *h)
{
    uint8_t *n = (uint8_t *)h + bsize(h);
    return n < a->base + a->size ? (hdr *)n : NULL;
}

static hdr *prev(hdr *h)
{
    return h->prev ? (hdr *)((uint8_t *)h - h->prev) : NULL;
}

static hdr *header_of(void *p)
{
    return (hdr *)((uint8_t *)p - HDR);
}

/* Tell the block after `h` how large `h` now is. */
static void link_next(const amp_arena *a, hdr *h)
{
    hdr *n = next(a, h);
    if (n)
        n->prev = bsize(h);
}

void amp_arena_init(amp_arena *a, void *mem, size_t size)
{
    a->base = mem;
    a->size = size & ~(size_t)7;
    a->in_use = a->high_water = a->failures = 0;
    hdr *h = first(a);
    h->size = (uint32_t)a->size;
    h->prev = 0;
}

/* Bytes of block needed for n bytes of payload; 0 if n is absurd. */
static uint32_t block_for(size_t n)
{
    if (n > UINT32_MAX - HDR - 8)
        return 0;
    uint32_t need = (uint32_t)((n + HDR + 7) & ~(size_t)7);
    return need < MIN_BLOCK ? MIN_BLOCK : need;
}

/* Cut a used block down to `need`, returning the tail to the free space.
 * The caller accounts for the block's size after the cut. */
static void split(amp_arena *a, hdr *h, uint32_t need)
{
    uint32_t have = bsize(h);
    if (have - need < MIN_BLOCK)
        return;
    hdr *rest = (hdr *)((uint8_t *)h + need);
    rest->size = have - need;
    rest->prev = need;
    h->size = need | USED;
    link_next(a, rest);
    hdr *after = next(a, rest);
    if (after && !used(after)) { /* keep free space in one piece */
        rest->size += bsize(after);
        link_next(a, rest);
    }
}

/* A used block went from `before` bytes to bsize(h). */
static void account(amp_arena *a, const hdr *h, uint32_t before)
{
    a->in_use = a->in_use - before + bsize(h);
    if (a->in_use > a->high_water)
        a->high_water = a->in_use;
}

void *amp_arena_alloc(amp_arena *a, size_t n)
{
    uint32_t need = block_for(n);
    for (hdr *h = need ? first(a) : NULL; h; h = next(a, h)) {
        if (used(h) || bsize(h) < need)
            continue;
        h->size |= USED;
        split(a, h, need);
        account(a, h, 0);
        return (uint8_t *)h + HDR;
    }
    a->failures++;
    return NULL;
}

void amp_arena_free(amp_arena *a, void *p)
{
    if (!p)
        return;
    hdr *h = header_of(p);
    h->size &= ~USED;
    a->in_use -= bsize(h);
    hdr *n = next(a, h);
    if (n && !used(n))
        h->size += bsize(n);
    hdr *before = prev(h);
    if (before && !used(before)) {
        before->size += bsize(h);
        h = before;
    }
    link_next(a, h);
}

void *amp_arena_realloc(amp_arena *a, void *p, size_t n)
{
    if (!p)
        return amp_arena_alloc(a, n);
    if (n == 0) {
        amp_arena_free(a, p);
        return NULL;
    }
    uint32_t need = block_for(n);
    if (!need) {
        a->failures++;
        return NULL;
    }
    hdr *h = header_of(p);
    uint32_t before = bsize(h);
    hdr *nx = next(a, h);
    if (before < need && nx && !used(nx) && before + bsize(nx) >= need) {
        /* grow in place into the free block after */
        h->size += bsize(nx);
        link_next(a, h);
    }
    if (bsize(h) >= need) {
        split(a, h, need);
        account(a, h, before);
        return p;
    }
    void *q = amp_arena_alloc(a, n);
    if (!q)
        return NULL;
    memcpy(q, p, bsize(h) - HDR);
    amp_arena_free(a, p);
    return q;
}
