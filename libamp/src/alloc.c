/* The allocator hook: NULL means the C library's allocator. Sizes of 0 are
 * turned into 1 so that an embedder's allocator never sees a zero size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_internal.h"

static void *std_alloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n);
}

static void *std_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n);
}

static void std_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static const amp_allocator std_allocator = {std_alloc, std_realloc, std_free, NULL};

const amp_allocator *amp_allocator_default(void)
{
    return &std_allocator;
}

void *amp__alloc(const amp_allocator *a, size_t n)
{
    if (!n)
        n = 1;
    return a ? a->alloc(a->ctx, n) : malloc(n);
}

void *amp__calloc(const amp_allocator *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    if (!a)
        return calloc(count ? count : 1, size ? size : 1);
    void *p = amp__alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *amp__realloc(const amp_allocator *a, void *p, size_t n)
{
    if (!n)
        n = 1;
    if (!p)
        return amp__alloc(a, n);
    return a ? a->realloc(a->ctx, p, n) : realloc(p, n);
}

void amp__free(const amp_allocator *a, void *p)
{
    if (!p)
        return;
    if (a)
        a->free(a->ctx, p);
    else
        free(p);
}

void *amp__memdup(const amp_allocator *a, const void *p, size_t n)
{
    void *d = amp__alloc(a, n);
    if (d && n)
        memcpy(d, p, n);
    return d;
}
