/* spec/vectors/framing.json: decode, encode and reject exactly as specified. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "vectors.h"

static const size_t chunkings[] = {0, 1, 2, 3, 7, 64, VEC_RANDOM_SPLITS};
#define NCHUNKINGS (sizeof chunkings / sizeof chunkings[0])

Test(framing_vectors, boxes_decode_and_encode)
{
    json_t *root = vec_load("framing.json");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(root, "boxes"), i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        size_t n;
        uint8_t *data = vec_hex_json(json_object_get(v, "hex"), &n);
        amp_limits lim;
        vec_limits(v, &lim);
        char *want = vec_pairs_text(json_object_get(v, "pairs"));
        for (size_t c = 0; c < NCHUNKINGS; c++) {
            char *got;
            size_t nboxes;
            int r = vec_decode_all(data, n, chunkings[c], &lim, &got, &nboxes, NULL);
            cr_assert_eq(r, AMP_OK, "%s: decode: %s", name, amp_strerror(r));
            cr_assert_eq(nboxes, 1, "%s", name);
            cr_assert_str_eq(got, want, "%s (chunk %zu)", name, chunkings[c]);
            free(got);
        }
        /* encode the pairs, in order, and compare with Twisted's bytes */
        json_t *pairs = json_object_get(v, "pairs");
        size_t np = json_array_size(pairs);
        amp_pair *ps = calloc(np, sizeof *ps);
        uint8_t **bufs = calloc(np * 2, sizeof *bufs);
        for (size_t k = 0; k < np; k++) {
            json_t *pr = json_array_get(pairs, k);
            bufs[2 * k] = vec_hex_json(json_array_get(pr, 0), &ps[k].key_len);
            bufs[2 * k + 1] = vec_hex_json(json_array_get(pr, 1), &ps[k].value_len);
            ps[k].key = bufs[2 * k];
            ps[k].value = bufs[2 * k + 1];
        }
        amp_buf out;
        amp_buf_init(&out);
        cr_assert_eq(amp_encode_box(&out, ps, np), AMP_OK, "%s", name);
        cr_assert_eq(out.len, n, "%s: encoded length", name);
        cr_assert(memcmp(out.data, data, n) == 0, "%s: encoded bytes differ", name);
        cr_assert_eq(amp_box_encoded_size(ps, np), n);
        /* pair by pair gives the same bytes */
        amp_buf out2;
        amp_buf_init(&out2);
        for (size_t k = 0; k < np; k++)
            cr_assert_eq(amp_encode_pair(&out2, ps[k].key, ps[k].key_len, ps[k].value,
                                         ps[k].value_len), AMP_OK);
        cr_assert_eq(amp_encode_end(&out2), AMP_OK);
        cr_assert(out2.len == n && memcmp(out2.data, data, n) == 0, "%s", name);
        amp_buf_free(&out);
        amp_buf_free(&out2);
        for (size_t k = 0; k < np * 2; k++)
            free(bufs[k]);
        free(bufs);
        free(ps);
        free(want);
        free(data);
    }
    json_decref(root);
}

Test(framing_vectors, decode_only)
{
    json_t *root = vec_load("framing.json");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(root, "decode_only"), i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        size_t n;
        uint8_t *data = vec_hex_json(json_object_get(v, "hex"), &n);
        amp_limits lim;
        vec_limits(v, &lim);
        char *want;
        size_t want_boxes = 1;
        if (json_object_get(v, "pairs")) {
            want = vec_pairs_text(json_object_get(v, "pairs"));
        } else {
            json_t *boxes = json_object_get(v, "boxes");
            want_boxes = json_array_size(boxes);
            want = strdup("");
            size_t k;
            json_t *b;
            json_array_foreach(boxes, k, b) {
                char *one = vec_pairs_text(b);
                want = realloc(want, strlen(want) + strlen(one) + 1);
                strcat(want, one);
                free(one);
            }
        }
        for (size_t c = 0; c < NCHUNKINGS; c++) {
            char *got;
            size_t nboxes;
            int r = vec_decode_all(data, n, chunkings[c], &lim, &got, &nboxes, NULL);
            cr_assert_eq(r, AMP_OK, "%s: %s", name, amp_strerror(r));
            cr_assert_eq(nboxes, want_boxes, "%s", name);
            cr_assert_str_eq(got, want, "%s", name);
            free(got);
        }
        free(want);
        free(data);
    }
    json_decref(root);
}

Test(framing_vectors, duplicate_keys_last_wins)
{
    json_t *root = vec_load("framing.json");
    json_t *v = json_array_get(json_object_get(root, "decode_only"), 1);
    cr_assert_str_eq(json_string_value(json_object_get(v, "name")),
                     "duplicate keys: last one wins");
    size_t n;
    uint8_t *data = vec_hex_json(json_object_get(v, "hex"), &n);
    amp_decoder *d;
    amp_decoder_new(&d, NULL);
    amp_decoder_feed(d, data, n);
    amp_box box;
    cr_assert_eq(amp_decoder_next(d, &box), AMP_OK);
    cr_assert_eq(box.count, 3);
    /* every lookup agrees with what Twisted parsed */
    json_t *tw = json_object_get(v, "twisted_parse");
    const char *khex;
    json_t *vhex;
    json_object_foreach(tw, khex, vhex) {
        size_t kn, vn;
        uint8_t *k = vec_hex(khex, &kn);
        uint8_t *val = vec_hex_json(vhex, &vn);
        const amp_pair *p = amp_box_find(&box, k, kn);
        cr_assert(p != NULL);
        cr_assert(p->value_len == vn && memcmp(p->value, val, vn) == 0);
        free(k);
        free(val);
    }
    amp_decoder_free(d);
    free(data);
    json_decref(root);
}

Test(framing_vectors, streams_any_split)
{
    json_t *root = vec_load("framing.json");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(root, "streams"), i, v) {
        size_t n;
        uint8_t *data = vec_hex_json(json_object_get(v, "hex"), &n);
        json_t *boxes = json_object_get(v, "boxes");
        char *want = strdup("");
        size_t k;
        json_t *b;
        json_array_foreach(boxes, k, b) {
            char *one = vec_pairs_text(b);
            want = realloc(want, strlen(want) + strlen(one) + 1);
            strcat(want, one);
            free(one);
        }
        for (size_t c = 0; c < NCHUNKINGS; c++) {
            char *got;
            size_t nboxes;
            int r = vec_decode_all(data, n, chunkings[c], NULL, &got, &nboxes, NULL);
            cr_assert_eq(r, AMP_OK);
            cr_assert_eq(nboxes, json_array_size(boxes));
            cr_assert_str_eq(got, want, "chunking %zu", chunkings[c]);
            free(got);
        }
        free(want);
        free(data);
    }
    json_decref(root);
}

Test(framing_vectors, reject)
{
    json_t *root = vec_load("framing.json");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(root, "reject"), i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *err = json_string_value(json_object_get(v, "error"));
        uint64_t want_off = (uint64_t)json_integer_value(json_object_get(v, "offset"));
        size_t want_boxes = (size_t)json_integer_value(json_object_get(v, "boxes_before"));
        size_t n;
        uint8_t *data = vec_hex_json(json_object_get(v, "hex"), &n);
        amp_limits lim;
        vec_limits(v, &lim);
        for (size_t c = 0; c < NCHUNKINGS; c++) {
            char *got;
            size_t nboxes;
            uint64_t off;
            int r = vec_decode_all(data, n, chunkings[c], &lim, &got, &nboxes, &off);
            cr_assert_str_eq(amp_errname(r), err, "%s (chunk %zu): got %s", name, chunkings[c],
                             amp_errname(r));
            cr_assert_eq(off, want_off, "%s (chunk %zu): offset %llu", name, chunkings[c],
                         (unsigned long long)off);
            cr_assert_eq(nboxes, want_boxes, "%s", name);
            free(got);
        }
        free(data);
    }
    json_decref(root);
}

Test(framing_vectors, truncated_at_every_offset)
{
    json_t *root = vec_load("framing.json");
    json_t *v = json_array_get(json_object_get(root, "truncated"), 0);
    size_t n;
    uint8_t *data = vec_hex_json(json_object_get(v, "hex"), &n);
    for (size_t cut = 1; cut < n; cut++) {
        for (size_t c = 0; c < NCHUNKINGS; c++) {
            char *got;
            size_t nboxes;
            uint64_t off = 99;
            int r = vec_decode_all(data, cut, chunkings[c], NULL, &got, &nboxes, &off);
            cr_assert_eq(r, AMP_E_TRUNCATED, "cut %zu: %s", cut, amp_errname(r));
            cr_assert_eq(nboxes, 0);
            cr_assert_eq(off, 0);
            free(got);
        }
    }
    free(data);
    json_decref(root);
}
