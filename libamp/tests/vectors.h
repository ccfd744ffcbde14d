/* Helpers for tests driven by the JSON files in spec/vectors. */
#ifndef AMP_TEST_VECTORS_H
#define AMP_TEST_VECTORS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "amp/amp.h"

/* Load spec/vectors/NAME; aborts the test on failure. Caller json_decref()s. */
json_t *vec_load(const char *name);

/* Decode a hex string into a malloc'd buffer; *n gets its length. */
uint8_t *vec_hex(const char *hex, size_t *n);
uint8_t *vec_hex_json(const json_t *s, size_t *n);

/* Decoder limits from an optional "limits" object. */
void vec_limits(const json_t *vector, amp_limits *out);

#define VEC_RANDOM_SPLITS ((size_t)-1)

/* Decode every box of `data` fed in chunks of `chunk` bytes (0: whole,
 * VEC_RANDOM_SPLITS: random sizes from 1 to 700, from a fixed seed) and
 * append their canonical text ("k=v;k=v|" in hex) to *out (malloc'd).
 * Returns the final result of the decoder (AMP_OK at a clean end). */
int vec_decode_all(const uint8_t *data, size_t n, size_t chunk, const amp_limits *lim,
                   char **out, size_t *nboxes, uint64_t *err_off);

/* The same text for a JSON list of [key_hex, value_hex] pairs. */
char *vec_pairs_text(const json_t *pairs);

#endif
