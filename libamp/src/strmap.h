/* A map from byte strings to pointers (open addressing, FNV-1a). Internal. */
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
    struct amp_strmap_entry *slots;
    size_t mask, count;
} amp_strmap;

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

#endif
