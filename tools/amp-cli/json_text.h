/* The JSON form of AMP boxes used by amp-cli: one object per line, keys in
 * wire order (duplicates kept), every key and value a JSON string. Bytes that
 * are not valid UTF-8 are written as lone surrogates \udc80..\udcff, one per
 * byte (Python's "surrogateescape"), so any byte string round-trips. */
#ifndef AMP_CLI_JSON_TEXT_H
#define AMP_CLI_JSON_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "amp/amp.h"

/* Write `p..n` as a JSON string literal, quotes included. Controls are
 * escaped: C0 and DEL as \n, \r, \t, \"-style or \u00NN, C1 (U+0080..U+009F)
 * as \u0080..\u009f; other UTF-8 (U+2028/U+2029 included, valid in JSON)
 * is written as it is. */
void json_write_bytes(FILE *out, const uint8_t *p, size_t n);
/* Write a box as one JSON object (no newline). */
void json_write_box(FILE *out, const amp_box *box);

/* A parsed line: pairs whose bytes live in `store`. */
typedef struct json_box {
    amp_pair *pairs;
    size_t count, cap;
    uint8_t *store;
    size_t store_len, store_cap;
} json_box;

void json_box_free(json_box *b);
/* Parse one line holding one JSON object of strings. Returns 0 on success,
 * or -1 with a static message in *why and the column (0-based) in *col. */
int json_parse_box(const char *line, size_t n, json_box *out, const char **why, size_t *col);

#endif
