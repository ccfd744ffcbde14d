/* A fixed-size heap in memory the caller provides (a static array on a
 * microcontroller), for targets where malloc is not linked or not wanted.
 * First fit over blocks with boundary tags: freeing merges neighbours at
 * once, so a long run of allocations and frees of varying sizes (decoder
 * buffers, session tables) does not fragment the arena into uselessness.
 *
 * Not thread-safe: one arena per thread, or a lock around it. No global
 * state: everything is in the amp_arena the caller owns. */
#ifndef AMP_DEVICE_ARENA_H
#define AMP_DEVICE_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct amp_arena {
    uint8_t *base;
    size_t size;       /* usable bytes from base, a multiple of 8 */
    size_t in_use;     /* bytes of allocated blocks, headers included */
    size_t high_water; /* the most in_use has been */
    size_t failures;   /* allocations refused for lack of room */
} amp_arena;

/* `mem` must be 8-byte aligned; `size` at least 64 and below 4 GiB. */
void amp_arena_init(amp_arena *a, void *mem, size_t size);
/* 8-byte aligned memory, or NULL when no free block is large enough. */
void *amp_arena_alloc(amp_arena *a, size_t n);
/* As realloc(): NULL p allocates; n == 0 frees and returns NULL; on
 * failure NULL is returned and p is left as it was. */
void *amp_arena_realloc(amp_arena *a, void *p, size_t n);
void amp_arena_free(amp_arena *a, void *p);

#endif
