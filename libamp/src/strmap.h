/* A map from byte strings to pointers (open addressing, linear probing).
 * Keys are often chosen by a peer, so slots come from SipHash-2-4 keyed
 * with 128 random bits drawn for each map: a peer cannot predict which
 * names collide. Internal. */
#ifndef AMP_STRMAP_H
#define AMP_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct amp_strmap_entry {
    uint8_t *key; /* owned copy; NULL = empty slot */
    size_t key_len;
    uint64_t hash;
    void *value;
};

typedef struct amp_strmap {
    struct amp_strmap_entry *slots; /* NULL until amp_strmap_init succeeds */
    size_t mask, count;
    uint64_t k0, k1; /* the SipHash key of this map */
} amp_strmap;

/* 0: ready; -1: out of memory; -2: no random key (getrandom() failed). On
 * failure the map is left empty (slots NULL) and need not be freed. */
int amp_strmap_init(amp_strmap *m);
/* Frees the keys and the table, and free()s every value. */
void amp_strmap_free(amp_strmap *m);
/* 0: stored; 1: the key exists (nothing changed); -1: out of memory. */
int amp_strmap_put(amp_strmap *m, const uint8_t *key, size_t n, void *value);
void *amp_strmap_get(const amp_strmap *m, const uint8_t *key, size_t n);
/* Calls fn for every entry; fn must not change the map. */
void amp_strmap_foreach(const amp_strmap *m,
                        void (*fn)(const uint8_t *key, size_t n, void *value, void *ud), void *ud);
/* Removes the key and returns its value (not freed), or NULL. */
void *amp_strmap_remove(amp_strmap *m, const uint8_t *key, size_t n);

/* SipHash-2-4 of p[0..n) under a 16-byte key: for other tables keyed by
 * peer data, with a key from amp_random_key(). */
uint64_t amp_siphash24(const uint8_t key[16], const uint8_t *p, size_t n);
/* 16 random bytes from the kernel (getrandom()); 0, or -1 if none. */
int amp_random_key(uint8_t key[16]);
/* For tests: the hash this map uses for a key, and the longest probe
 * sequence (slots visited to find an entry, its home slot counting as 1). */
uint64_t amp_strmap_hash(const amp_strmap *m, const uint8_t *key, size_t n);
size_t amp_strmap_max_probe(const amp_strmap *m);

#endif
