/* A map from byte strings to pointers, safe with names chosen by a peer
 * (part of libamp-core).
 *
 * Open addressing with linear probing; slots come from SipHash-2-4 keyed
 * with 128 bits that are secret per map, so a peer cannot choose names that
 * collide. The session keeps its responders here; the broker its commands,
 * owners and subscriptions.
 *
 * Threads, lifetimes, clocks
 *   - A map is a plain value the caller owns (embed it, zero it, never copy
 *     a live one). No internal locking: one thread at a time per map.
 *   - The map owns a copy of every key and the table. It does not own the
 *     values while it holds them, except that amp_strmap_free() frees every
 *     value still in the map with the map's allocator (NULL values are
 *     fine). amp_strmap_remove() hands the value back to the caller.
 *   - Pointers returned by amp_strmap_get() are the caller's values; the
 *     map's own memory moves on every put.
 *   - No clocks. Entropy only from amp_strmap_init()/amp_random_key() when
 *     the caller gives no key.
 *
 * The fields are private: read only `count`, and `slots` (NULL: the map was
 * zeroed or freed, or its init failed; freeing it is then a no-op). */
#ifndef AMP_STRMAP_H
#define AMP_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "amp/alloc.h"
#include "amp/error.h"
#include "amp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

struct amp_strmap_entry {
    uint8_t *key; /* owned copy; NULL = empty slot */
    size_t key_len;
    uint64_t hash;
    void *value;
};

typedef struct amp_strmap {
    struct amp_strmap_entry *slots; /* NULL until an init succeeds */
    size_t mask, count;
    uint64_t k0, k1;       /* the SipHash key of this map */
    amp_allocator alloc;   /* a copy of the map's allocator */
} amp_strmap;

/* A map with malloc and a random key from the platform (amp_random_key()).
 * AMP_OK; AMP_E_NOMEM; AMP_E_IO (the kernel gave no random bytes) or
 * AMP_E_INVALID (the platform has no entropy source: use
 * amp_strmap_init_with() and a key). On failure the map is left empty
 * (slots NULL) and need not be freed. */
AMP_API amp_err amp_strmap_init(amp_strmap *m);
/* The same with a caller's 16-byte secret `key` (NULL: as amp_strmap_init)
 * and `allocator` (copied; NULL: malloc). AMP_E_INVALID too for an
 * allocator with a missing function. */
AMP_API amp_err amp_strmap_init_with(amp_strmap *m, const uint8_t key[16],
                                     const amp_allocator *allocator);
/* Frees the keys, the table and every value (with the map's allocator). */
AMP_API void amp_strmap_free(amp_strmap *m);
/* AMP_OK: stored; AMP_E_DUPLICATE: the key exists (nothing changed);
 * AMP_E_NOMEM. The key is copied; `value` is stored as is. */
AMP_API amp_err amp_strmap_put(amp_strmap *m, const uint8_t *key, size_t n, void *value);
/* The value, or NULL when the key is not there. */
AMP_API void *amp_strmap_get(const amp_strmap *m, const uint8_t *key, size_t n);
/* Calls fn for every entry, in no particular order; fn must not change the
 * map. */
AMP_API void amp_strmap_foreach(const amp_strmap *m,
                                void (*fn)(const uint8_t *key, size_t n, void *value, void *ud),
                                void *ud);
/* Removes the key and returns its value (not freed), or NULL. */
AMP_API void *amp_strmap_remove(amp_strmap *m, const uint8_t *key, size_t n);

/* SipHash-2-4 of p[0..n) under a 16-byte key: for other tables keyed by
 * peer data (key from amp_random_key() or the embedder). Pure function. */
AMP_API uint64_t amp_siphash24(const uint8_t key[16], const uint8_t *p, size_t n);
/* 16 random bytes from the platform: getrandom() on Linux. AMP_OK, AMP_E_IO
 * (the kernel refused) or AMP_E_INVALID (no entropy source on this
 * platform; the embedder must supply keys, see amp_session_config). */
AMP_API amp_err amp_random_key(uint8_t key[16]);

/* Diagnostics (tests): the hash this map uses for a key, and the longest
 * probe sequence (slots visited to find an entry, its home slot counting
 * as 1). */
AMP_API uint64_t amp_strmap_hash(const amp_strmap *m, const uint8_t *key, size_t n);
AMP_API size_t amp_strmap_max_probe(const amp_strmap *m);

#ifdef __cplusplus
}
#endif
#endif
