/* Decoder behaviour beyond the vectors: limits at, below and above their
 * bounds, long random streams under any split, and misuse. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "vectors.h"

static void put_pair(amp_buf *b, size_t klen, size_t vlen, unsigned *seed)
{
    uint8_t *k = malloc(klen), *v = malloc(vlen + 1);
    for (size_t i = 0; i < klen; i++)
        k[i] = (uint8_t)rand_r(seed);
    for (size_t i = 0; i < vlen; i++)
        v[i] = (uint8_t)rand_r(seed);
    cr_assert_eq(amp_encode_pair(b, k, klen, v, vlen), AMP_OK);
    free(k);
    free(v);
}

Test(decoder, long_random_stream_identical_under_any_split)
{
    unsigned seed = 7;
    amp_buf s;
    amp_buf_init(&s);
    size_t nboxes = 3000;
    for (size_t i = 0; i < nboxes; i++) {
        size_t npairs = 1 + (size_t)rand_r(&seed) % 6;
        for (size_t k = 0; k < npairs; k++) {
            static const size_t klens[] = {1, 2, 9, 255};
            static const size_t vlens[] = {0, 1, 13, 200, 4096, 65535};
            size_t vl = vlens[rand_r(&seed) % 6];
            if (vl == 65535 && rand_r(&seed) % 8)
                vl = 3; /* keep the stream a reasonable size */
            put_pair(&s, klens[rand_r(&seed) % 4], vl, &seed);
        }
        amp_encode_end(&s);
    }
    char *whole, *other;
    size_t n1, n2;
    cr_assert_eq(vec_decode_all(s.data, s.len, 0, NULL, &whole, &n1, NULL), AMP_OK);
    cr_assert_eq(n1, nboxes);
    const size_t splits[] = {1, 2, 3, 5, 4096, 65537, VEC_RANDOM_SPLITS};
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
        cr_assert_eq(vec_decode_all(s.data, s.len, splits[i], NULL, &other, &n2, NULL), AMP_OK);
        cr_assert_eq(n2, nboxes);
        cr_assert(strcmp(whole, other) == 0, "split %zu differs", splits[i]);
        free(other);
    }
    free(whole);
    amp_buf_free(&s);
}

/* A box of `nkeys` pairs "k" + empty value... with distinct 1-byte keys. */
static void box_with_keys(amp_buf *b, size_t nkeys)
{
    for (size_t i = 0; i < nkeys; i++) {
        uint8_t k[2] = {(uint8_t)('a' + i % 26), (uint8_t)(i / 26)};
        amp_encode_pair(b, k, 2, NULL, 0);
    }
    amp_encode_end(b);
}

static int decode_one(const amp_buf *b, const amp_limits *lim, size_t chunk)
{
    char *t;
    size_t n;
    int r = vec_decode_all(b->data, b->len, chunk, lim, &t, &n, NULL);
    free(t);
    return r;
}

Test(decoder, max_keys_below_at_above)
{
    amp_limits lim;
    amp_limits_default(&lim);
    lim.max_keys = 10;
    for (size_t nk = 9; nk <= 11; nk++) {
        amp_buf b;
        amp_buf_init(&b);
        box_with_keys(&b, nk);
        for (size_t chunk = 0; chunk <= 1; chunk++)
            cr_assert_eq(decode_one(&b, &lim, chunk), nk <= 10 ? AMP_OK : AMP_E_TOO_MANY_KEYS,
                         "%zu keys", nk);
        amp_buf_free(&b);
    }
}

Test(decoder, default_max_keys)
{
    amp_buf b;
    amp_buf_init(&b);
    box_with_keys(&b, AMP_DEFAULT_MAX_KEYS);
    cr_assert_eq(decode_one(&b, NULL, 0), AMP_OK);
    amp_buf_free(&b);
    amp_buf_init(&b);
    box_with_keys(&b, AMP_DEFAULT_MAX_KEYS + 1);
    cr_assert_eq(decode_one(&b, NULL, 0), AMP_E_TOO_MANY_KEYS);
    amp_buf_free(&b);
}

Test(decoder, max_box_bytes_below_at_above)
{
    /* one pair with a 1000-byte value: 2+1+2+1000+2 = 1007 bytes */
    uint8_t v[1000] = {0};
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair(&b, (const uint8_t *)"k", 1, v, sizeof v);
    amp_encode_end(&b);
    cr_assert_eq(b.len, 1007);
    amp_limits lim;
    amp_limits_default(&lim);
    for (size_t cap = 1006; cap <= 1008; cap++) {
        lim.max_box_bytes = cap;
        for (size_t chunk = 0; chunk <= 1; chunk++)
            cr_assert_eq(decode_one(&b, &lim, chunk), cap >= 1007 ? AMP_OK : AMP_E_BOX_TOO_LARGE,
                         "cap %zu", cap);
    }
    amp_buf_free(&b);
}

Test(decoder, box_too_large_is_refused_before_the_value_arrives)
{
    /* only the header claiming a 65535-byte value: refused with 7 bytes in */
    const uint8_t head[] = {0, 1, 'k', 0xff, 0xff};
    amp_limits lim;
    amp_limits_default(&lim);
    lim.max_box_bytes = 1024;
    amp_decoder *d;
    amp_decoder_new(&d, &lim);
    amp_decoder_feed(d, head, sizeof head);
    amp_box box;
    cr_assert_eq(amp_decoder_next(d, &box), AMP_E_BOX_TOO_LARGE);
    cr_assert_eq(amp_decoder_error_offset(d), 3);
    /* the error is final */
    cr_assert_eq(amp_decoder_next(d, &box), AMP_E_BOX_TOO_LARGE);
    cr_assert_eq(amp_decoder_finish(d), AMP_E_BOX_TOO_LARGE);
    amp_decoder_free(d);
}

Test(decoder, key_lengths_255_and_256)
{
    uint8_t key[256];
    memset(key, 'K', sizeof key);
    amp_buf b;
    amp_buf_init(&b);
    cr_assert_eq(amp_encode_pair(&b, key, 255, NULL, 0), AMP_OK);
    amp_encode_end(&b);
    cr_assert_eq(decode_one(&b, NULL, 1), AMP_OK);
    /* hand-build a 256-byte key: the encoder refuses to */
    b.data[0] = 1;
    b.data[1] = 0;
    cr_assert_eq(decode_one(&b, NULL, 0), AMP_E_KEY_TOO_LONG);
    amp_buf_free(&b);
}

Test(decoder, value_lengths_0_and_65535)
{
    static uint8_t v[65535];
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair(&b, (const uint8_t *)"e", 1, NULL, 0);
    amp_encode_pair(&b, (const uint8_t *)"f", 1, v, sizeof v);
    amp_encode_end(&b);
    char *t;
    size_t n;
    cr_assert_eq(vec_decode_all(b.data, b.len, 1, NULL, &t, &n, NULL), AMP_OK);
    cr_assert_eq(n, 1);
    free(t);
    amp_buf_free(&b);
}

Test(decoder, empty_box_and_empty_first_key)
{
    const uint8_t empty[] = {0, 0};
    amp_decoder *d;
    amp_decoder_new(&d, NULL);
    amp_decoder_feed(d, empty, 2);
    amp_box box;
    cr_assert_eq(amp_decoder_next(d, &box), AMP_E_EMPTY_BOX);
    cr_assert(amp_err_is_protocol(AMP_E_EMPTY_BOX));
    amp_decoder_free(d);

    amp_limits lim;
    amp_limits_default(&lim);
    lim.allow_empty_box = 1;
    amp_decoder_new(&d, &lim);
    amp_decoder_feed(d, empty, 2);
    cr_assert_eq(amp_decoder_next(d, &box), AMP_OK);
    cr_assert_eq(box.count, 0);
    cr_assert_eq(box.wire_len, 2);
    cr_assert_eq(amp_decoder_next(d, &box), AMP_AGAIN);
    amp_decoder_free(d);
}

Test(decoder, only_ask_decodes_but_has_no_role)
{
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair_str(&b, "_ask", "1");
    amp_encode_end(&b);
    amp_decoder *d;
    amp_decoder_new(&d, NULL);
    amp_decoder_feed(d, b.data, b.len);
    amp_box box;
    cr_assert_eq(amp_decoder_next(d, &box), AMP_OK);
    amp_message m;
    cr_assert_eq(amp_box_classify(&box, &m), AMP_E_NO_ROLE);
    amp_decoder_free(d);
    amp_buf_free(&b);
}

Test(decoder, views_into_the_fed_block_without_copy)
{
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair_str(&b, "a", "1");
    amp_encode_end(&b);
    amp_decoder *d;
    amp_decoder_new(&d, NULL);
    amp_decoder_feed(d, b.data, b.len);
    amp_box box;
    cr_assert_eq(amp_decoder_next(d, &box), AMP_OK);
    cr_assert(box.pairs[0].value >= b.data && box.pairs[0].value < b.data + b.len);
    amp_decoder_free(d);
    amp_buf_free(&b);
}

Test(decoder, misuse)
{
    amp_decoder *d;
    amp_limits lim = {0, 1, 0};
    cr_assert_eq(amp_decoder_new(&d, &lim), AMP_E_INVALID);
    cr_assert_eq(amp_decoder_new(NULL, NULL), AMP_E_INVALID);
    amp_decoder_new(&d, NULL);
    const uint8_t two[] = {0, 1, 'a', 0, 0, 0, 0, 0, 1, 'b', 0, 0, 0, 0};
    amp_decoder_feed(d, two, sizeof two);
    amp_box box;
    cr_assert_eq(amp_decoder_next(d, &box), AMP_OK);
    /* feeding again before the block is used up is refused */
    cr_assert_eq(amp_decoder_feed(d, two, sizeof two), AMP_E_INVALID);
    cr_assert_eq(amp_decoder_finish(d), AMP_E_INVALID);
    cr_assert_eq(amp_decoder_next(d, &box), AMP_OK);
    cr_assert_eq(amp_decoder_next(d, &box), AMP_AGAIN);
    cr_assert_eq(amp_decoder_finish(d), AMP_OK);
    cr_assert_eq(amp_decoder_offset(d), sizeof two);
    amp_decoder_free(d);
    amp_decoder_free(NULL);
}

Test(decoder, limits_lowered_in_the_middle_of_a_box)
{
    /* 10 keys arrive in two blocks; the caps drop between them */
    amp_buf b;
    amp_buf_init(&b);
    box_with_keys(&b, 10);
    amp_decoder *d;
    amp_decoder_new(&d, NULL);
    amp_decoder_feed(d, b.data, 25); /* five pairs of 5 bytes */
    amp_box box;
    cr_assert_eq(amp_decoder_next(d, &box), AMP_AGAIN);
    amp_limits lim = {2, 16, 0};
    cr_assert_eq(amp_decoder_set_limits(d, &lim), AMP_OK);
    amp_decoder_feed(d, b.data + 25, b.len - 25);
    amp_err r = amp_decoder_next(d, &box);
    cr_assert(r == AMP_E_TOO_MANY_KEYS || r == AMP_E_BOX_TOO_LARGE, "%s", amp_errname(r));
    amp_decoder_free(d);
    /* raised again, the next stream decodes */
    amp_decoder_new(&d, &lim);
    amp_limits big = {0, 0, 0};
    cr_assert_eq(amp_decoder_set_limits(d, &big), AMP_OK);
    amp_decoder_feed(d, b.data, b.len);
    cr_assert_eq(amp_decoder_next(d, &box), AMP_OK);
    cr_assert_eq(box.count, 10);
    amp_limits bad = {0, 1, 0};
    cr_assert_eq(amp_decoder_set_limits(d, &bad), AMP_E_INVALID);
    amp_decoder_free(d);
    amp_buf_free(&b);
}

Test(decoder, pending_counts_the_partial_box_it_holds)
{
    /* two large boxes split across blocks, then a small one */
    static uint8_t big[60000];
    amp_buf b;
    amp_buf_init(&b);
    for (int i = 0; i < 2; i++) {
        amp_encode_pair(&b, (const uint8_t *)"a", 1, big, sizeof big);
        amp_encode_pair(&b, (const uint8_t *)"b", 1, big, sizeof big);
        amp_encode_end(&b);
    }
    amp_encode_pair_str(&b, "k", "v");
    amp_encode_end(&b);
    size_t one = (b.len - 8) / 2;
    amp_decoder *d;
    amp_decoder_new(&d, NULL);
    amp_box box;
    cr_assert_eq(amp_decoder_pending(d), 0);
    amp_decoder_feed(d, b.data, 1000);
    cr_assert_eq(amp_decoder_next(d, &box), AMP_AGAIN);
    cr_assert_eq(amp_decoder_pending(d), 1000);
    amp_decoder_feed(d, b.data + 1000, one + 10 - 1000); /* the rest, and 10 bytes more */
    cr_assert_eq(amp_decoder_next(d, &box), AMP_OK);
    cr_assert_eq(amp_decoder_pending(d), 0, "a complete box is not pending");
    cr_assert_eq(amp_decoder_next(d, &box), AMP_AGAIN);
    cr_assert_eq(amp_decoder_pending(d), 10);
    amp_decoder_feed(d, b.data + one + 10, b.len - one - 10);
    cr_assert_eq(amp_decoder_next(d, &box), AMP_OK);
    cr_assert_eq(box.count, 2);
    cr_assert_eq(amp_decoder_next(d, &box), AMP_OK);
    cr_assert_eq(box.count, 1);
    cr_assert_eq(amp_decoder_next(d, &box), AMP_AGAIN);
    cr_assert_eq(amp_decoder_pending(d), 0);
    cr_assert_eq(amp_decoder_finish(d), AMP_OK);
    amp_decoder_free(d);
    amp_buf_free(&b);
}
