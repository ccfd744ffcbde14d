/* The allocator hook: NULL means the C library's allocator. Sizes of 0 are
 * turned into 1 so that an embedder's allocator never sees a zero size.
 * Every path to memory goes through an amp_allocator (NULL: std_allocator),
 * so that a build without malloc (AMP_NO_MALLOC) only swaps that one. */
#include <stdlib.h>

#include "alloc_internal.h"

#ifndef AMP_NO_MALLOC
void *amp__std_alloc(void *ctx, size_t n)
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
#else
/* Built with AMP_CORE_MALLOC=OFF, for firmware that must not link the C
 * library's allocator: NULL stands for an allocator that refuses every
 * request (AMP_E_NOMEM), so every object needs an allocator of its own. */
void *amp__std_alloc(void *ctx, size_t n)
{
    (void)ctx;
    (void)n;
    return NULL;
}

static void *std_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    (void)p;
    (void)n;
    return NULL;
}

static void std_free(void *ctx, void *p)
{
    (void)ctx;
    (void)p;
}
#endif

static const amp_allocator std_allocator = {amp__std_alloc, std_realloc, std_free, NULL};

const amp_allocator *amp_allocator_default(void)
{
    return &std_allocator;
}

void *amp__alloc_hook(const amp_allocator *a, size_t n)
{
    if (!a)
        a = &std_allocator;
    return a->alloc(a->ctx, n);
}

void *amp__realloc_hook(const amp_allocator *a, void *p, size_t n)
{
    if (!a)
        a = &std_allocator;
    return a->realloc(a->ctx, p, n);
}

void amp__free_hook(const amp_allocator *a, void *p)
{
    if (!a)
        a = &std_allocator;
    a->free(a->ctx, p);
}
