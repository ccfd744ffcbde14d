/* The core's only way to memory: every allocation goes through one of these,
 * with the allocator of the object it belongs to (NULL: the default, which
 * is malloc unless the core is built with AMP_NO_MALLOC). Internal.
 *
 * The default allocator is called directly from these inline functions, not
 * through its table: a session allocates a few blocks per call, and a
 * function call plus an indirect call for each showed in the call rate. */
#ifndef AMP_ALLOC_INTERNAL_H
#define AMP_ALLOC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amp/alloc.h"

/* The default allocator's function (compared, to recognise a copy of it). */
void *amp__std_alloc(void *ctx, size_t n);

/* Through the table (NULL: the default one). Sizes are at least 1. */
void *amp__alloc_hook(const amp_allocator *a, size_t n);
void *amp__realloc_hook(const amp_allocator *a, void *p, size_t n);
void amp__free_hook(const amp_allocator *a, void *p);

#ifndef AMP_NO_MALLOC
#define AMP__IS_STD(a) (!(a) || (a)->alloc == amp__std_alloc)
#else
#define AMP__IS_STD(a) 0
#endif

static inline void *amp__alloc(const amp_allocator *a, size_t n)
{
    if (!n)
        n = 1; /* an embedder's allocator never sees a zero size */
#ifndef AMP_NO_MALLOC
    if (AMP__IS_STD(a))
        return malloc(n);
#endif
    return amp__alloc_hook(a, n);
}

/* Zeroed memory for count * size bytes; NULL on overflow too. */
static inline void *amp__calloc(const amp_allocator *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
#ifndef AMP_NO_MALLOC
    if (AMP__IS_STD(a))
        return calloc(count ? count : 1, size ? size : 1);
#endif
    size_t total = count * size;
    void *p = amp__alloc_hook(a, total ? total : 1);
    if (p)
        memset(p, 0, total);
    return p;
}

/* NULL p: a new block. */
static inline void *amp__realloc(const amp_allocator *a, void *p, size_t n)
{
    if (!n)
        n = 1;
    if (!p)
        return amp__alloc(a, n);
#ifndef AMP_NO_MALLOC
    if (AMP__IS_STD(a))
        return realloc(p, n);
#endif
    return amp__realloc_hook(a, p, n);
}

/* NULL p is allowed and does nothing. */
static inline void amp__free(const amp_allocator *a, void *p)
{
    if (!p)
        return;
#ifndef AMP_NO_MALLOC
    if (AMP__IS_STD(a)) {
        free(p);
        return;
    }
#endif
    amp__free_hook(a, p);
}

/* A copy of n bytes (n may be 0: a 1-byte block). */
static inline void *amp__memdup(const amp_allocator *a, const void *p, size_t n)
{
    void *d = amp__alloc(a, n);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

#endif
