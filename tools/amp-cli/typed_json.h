/* AMP values <-> JSON by declared type (the "typed JSON" of amp-cli's output
 * and of serve --exec):
 *   Integer -> number, the digits verbatim (any size); Float -> number, but
 *   nan/inf/-inf -> the strings "nan", "inf", "-inf"; Boolean -> true/false;
 *   String/Unicode/Path -> string (bytes that are not UTF-8 as lone
 *   surrogates \udc80..\udcff, as json_text.h writes them); Decimal ->
 *   string, exact ("1.10"); DateTime -> string (the AMP text); Descriptor ->
 *   number; ListOf(T) -> array; AmpList -> array of objects (undeclared
 *   fields as strings); Structured -> the MessagePack value as JSON.
 * A value that does not decode as its declared type is written as a string
 * of its bytes, so output never fails and never loses bytes. A key without a
 * declared type is a string, as json_text.h writes every value.
 *
 * Into AMP: typed_args_encode_json / typed_args_encode_text (typed_args.h)
 * are the encoders; typed_json_to_box applies them to a JSON object. JSON
 * input goes through jansson, so Integers past 64 bits must come as strings
 * of digits ("123456789012345678901234567890"), and strings cannot carry
 * lone surrogates (bytes that are not UTF-8).
 *
 * No global state; FILE output only through the stream given. */
#ifndef AMP_CLI_TYPED_JSON_H
#define AMP_CLI_TYPED_JSON_H

#include <jansson.h>
#include <stdio.h>

#include "amp/amp.h"
#include "signature.h"

/* Does p..n decode as t? 0 yes, -1 no. */
int typed_json_check(const sig_type *t, const uint8_t *p, size_t n);
/* One value as JSON (t NULL: a string). */
void typed_json_write_value(FILE *out, const sig_type *t, const uint8_t *p, size_t n);
/* One value for a person: text-like values (String, Unicode, Path, Decimal,
 * DateTime, undeclared, or not decoding as their type) as their text, with
 * controls and bytes that are not UTF-8 shown as term_text.h escapes
 * (\x1b, \n, \xff); everything else as its typed JSON (escaped the same
 * way). */
void typed_json_write_text(FILE *out, const sig_type *t, const uint8_t *p, size_t n);
/* A box as one JSON object (no newline), keys in wire order: a key declared
 * in fields[0..nfields) typed, any other as a string. */
void typed_json_write_box(FILE *out, const amp_box *box, const sig_field *fields,
                          size_t nfields);
/* The declared type of `key` in fields, or NULL. */
const sig_type *typed_json_field_type(const sig_field *fields, size_t nfields,
                                      const uint8_t *key, size_t key_len);

/* A JSON object turned into AMP pairs (owning their bytes). */
typedef struct typed_box {
    amp_pair *pairs;
    amp_buf *values;
    char **keys;
    size_t count;
} typed_box;

/* Each member of `obj` by its declared type in fields (undeclared: a
 * string, or a number/true/false as its text). Keys must be 1..255 bytes,
 * values at most 65535 bytes. 0, or -1 with a message naming the key. */
int typed_json_to_box(json_t *obj, const sig_field *fields, size_t nfields, typed_box *out,
                      char *err, size_t err_len);
void typed_box_free(typed_box *b);

#endif
