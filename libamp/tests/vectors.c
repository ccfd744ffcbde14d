#include "vectors.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *vec_load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", AMP_VECTORS_DIR, name);
    json_error_t err;
    json_t *j = json_load_file(path, JSON_ALLOW_NUL, &err);
    cr_assert(j != NULL, "cannot load %s: %s (line %d)", path, err.text, err.line);
    return j;
}

static int nib(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

uint8_t *vec_hex(const char *hex, size_t *n)
{
    size_t len = strlen(hex);
    cr_assert(len % 2 == 0, "odd hex length");
    uint8_t *out = malloc(len / 2 + 1);
    for (size_t i = 0; i < len / 2; i++) {
        int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
        cr_assert(hi >= 0 && lo >= 0, "bad hex");
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *n = len / 2;
    return out;
}

uint8_t *vec_hex_json(const json_t *s, size_t *n)
{
    cr_assert(json_is_string(s), "expected a hex string");
    return vec_hex(json_string_value(s), n);
}

void vec_limits(const json_t *vector, amp_limits *out)
{
    amp_limits_default(out);
    json_t *l = json_object_get(vector, "limits");
    if (!l)
        return;
    json_t *v;
    if ((v = json_object_get(l, "max_keys")))
        out->max_keys = (size_t)json_integer_value(v);
    if ((v = json_object_get(l, "max_box_bytes")))
        out->max_box_bytes = (size_t)json_integer_value(v);
    if ((v = json_object_get(l, "allow_empty_box")))
        out->allow_empty_box = json_is_true(v);
}

struct text {
    char *p;
    size_t len, cap;
};

static void put(struct text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

static void put_hex(struct text *t, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        char two[2] = {digits[p[i] >> 4], digits[p[i] & 15]};
        put(t, two, 2);
    }
}

static void put_box(struct text *t, const amp_box *b)
{
    for (size_t i = 0; i < b->count; i++) {
        put_hex(t, b->pairs[i].key, b->pairs[i].key_len);
        put(t, "=", 1);
        put_hex(t, b->pairs[i].value, b->pairs[i].value_len);
        put(t, ";", 1);
    }
    put(t, "|", 1);
}

int vec_decode_all(const uint8_t *data, size_t n, size_t chunk, const amp_limits *lim,
                   char **out, size_t *nboxes, uint64_t *err_off)
{
    amp_decoder *d;
    cr_assert_eq(amp_decoder_new(&d, lim), AMP_OK);
    struct text t = {0};
    put(&t, "", 0);
    *nboxes = 0;
    int r = AMP_OK;
    unsigned seed = 12345;
    size_t step = 0;
    for (size_t off = 0; off < n || off == 0; off += step) {
        if (chunk == VEC_RANDOM_SPLITS)
            step = 1 + (size_t)rand_r(&seed) % 700;
        else
            step = chunk ? chunk : (n ? n : 1);
        size_t k = n - off < step ? n - off : step;
        cr_assert_eq(amp_decoder_feed(d, data + off, k), AMP_OK);
        amp_box box;
        while ((r = amp_decoder_next(d, &box)) == AMP_OK) {
            put_box(&t, &box);
            (*nboxes)++;
        }
        if (r != AMP_AGAIN)
            break;
        if (n == 0)
            break;
    }
    if (r == AMP_AGAIN)
        r = amp_decoder_finish(d);
    if (err_off)
        *err_off = amp_decoder_error_offset(d);
    amp_decoder_free(d);
    *out = t.p;
    return r;
}

char *vec_pairs_text(const json_t *pairs)
{
    struct text t = {0};
    put(&t, "", 0);
    size_t i;
    json_t *pair;
    json_array_foreach(pairs, i, pair) {
        put(&t, json_string_value(json_array_get(pair, 0)), strlen(json_string_value(json_array_get(pair, 0))));
        put(&t, "=", 1);
        put(&t, json_string_value(json_array_get(pair, 1)), strlen(json_string_value(json_array_get(pair, 1))));
        put(&t, ";", 1);
    }
    put(&t, "|", 1);
    return t.p;
}
