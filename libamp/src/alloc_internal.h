/* The core's only way to memory: every allocation goes through one of these,
 * with the allocator of the object it belongs to (NULL: malloc). Internal. */
#ifndef AMP_ALLOC_INTERNAL_H
#define AMP_ALLOC_INTERNAL_H

#include <stddef.h>

#include "amp/alloc.h"

void *amp__alloc(const amp_allocator *a, size_t n);
/* Zeroed memory for count * size bytes; NULL on overflow too. */
void *amp__calloc(const amp_allocator *a, size_t count, size_t size);
void *amp__realloc(const amp_allocator *a, void *p, size_t n);
/* NULL p is allowed and does nothing. */
void amp__free(const amp_allocator *a, void *p);
/* A copy of n bytes (n may be 0: a 1-byte block). */
void *amp__memdup(const amp_allocator *a, const void *p, size_t n);

#endif
