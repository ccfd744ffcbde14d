/* SipHash-2-4 with the key already split into its two words, for the map
 * that hashes on every lookup (loading the key each time cost a third of
 * the hash for short names). Internal. */
#ifndef AMP_SIPHASH_INTERNAL_H
#define AMP_SIPHASH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

uint64_t amp__siphash_k(uint64_t k0, uint64_t k1, const uint8_t *p, size_t n);
void amp__siphash_key(const uint8_t key[16], uint64_t *k0, uint64_t *k1);

#endif
