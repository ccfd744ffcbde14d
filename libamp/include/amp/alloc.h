/* Memory: the allocator hook of the core (libamp-core).
 *
 * Threads, lifetimes, clocks
 *   - No global state: an allocator is passed to each object that allocates
 *     (amp_buf, amp_decoder, amp_session, amp_strmap) and kept there. NULL
 *     always means the C library's malloc/realloc/free, except in a core
 *     built with AMP_CORE_MALLOC=OFF (firmware that must link no malloc):
 *     there NULL means an allocator that refuses every request, so each
 *     object needs one of its own.
 *   - The core never calls an allocator from more than the one thread that
 *     is using the object it belongs to; an allocator shared by objects on
 *     several threads must itself be thread-safe.
 *   - An object copies the amp_allocator struct when it is created (except
 *     amp_buf, which keeps the pointer it was given: that struct must outlive
 *     the buffer). `ctx` is never copied or freed by the library: it must stay
 *     valid until the last object using it is freed (for a session, also
 *     until its last amp_request is answered, since requests outlive it).
 *   - No clocks here.
 *
 * Contract of the three functions (all three must be set):
 *   alloc(ctx, n)        n > 0 bytes aligned for any type, or NULL;
 *   realloc(ctx, p, n)   as C realloc with p != NULL and n > 0: the first
 *                        min(old, n) bytes are kept; NULL leaves p untouched;
 *   free(ctx, p)         p != NULL, a block from alloc/realloc of the same
 *                        allocator.
 * A NULL from alloc or realloc makes the calling function fail with
 * AMP_E_NOMEM and leave its object usable (nothing half-built is kept). */
#ifndef AMP_ALLOC_H
#define AMP_ALLOC_H

#include <stddef.h>

#include "amp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct amp_allocator {
    void *(*alloc)(void *ctx, size_t n);
    void *(*realloc)(void *ctx, void *p, size_t n);
    void (*free)(void *ctx, void *p);
    void *ctx;
} amp_allocator;

/* Releases a user_data a library object kept (a destroy-notify): called
 * exactly once, when the object lets go of it. */
typedef void (*amp_destroy_cb)(void *user_data);

/* The allocator NULL stands for: malloc, realloc and free (with
 * AMP_CORE_MALLOC=OFF: one whose alloc and realloc return NULL). */
AMP_API const amp_allocator *amp_allocator_default(void);

#ifdef __cplusplus
}
#endif
#endif
