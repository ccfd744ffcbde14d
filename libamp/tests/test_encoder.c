/* Encoder errors are distinct and leave the output untouched. */
#include <criterion/criterion.h>
#include <string.h>

#include "amp/amp.h"

static uint8_t big[70000];

Test(encoder, distinct_errors_and_output_untouched)
{
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair_str(&b, "a", "1");
    size_t len = b.len;
    uint8_t before[16];
    memcpy(before, b.data, len);

    cr_assert_eq(amp_encode_pair(&b, (const uint8_t *)"", 0, (const uint8_t *)"v", 1),
                 AMP_E_EMPTY_KEY);
    cr_assert_eq(amp_encode_pair(&b, big, 256, NULL, 0), AMP_E_KEY_TOO_LONG);
    cr_assert_eq(amp_encode_pair(&b, big, 255, NULL, 0), AMP_OK);
    len = b.len;
    cr_assert_eq(amp_encode_pair(&b, (const uint8_t *)"k", 1, big, 65536), AMP_E_VALUE_TOO_LONG);
    cr_assert_eq(amp_encode_pair(&b, (const uint8_t *)"k", 1, big, 65535), AMP_OK);
    cr_assert_eq(b.len, len + 4 + 1 + 65535);
    cr_assert(memcmp(b.data, before, 6) == 0);
    amp_buf_free(&b);
}

Test(encoder, whole_box_is_all_or_nothing)
{
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair_str(&b, "x", "y");
    amp_encode_end(&b);
    size_t len = b.len;
    amp_pair ps[3] = {
        {(const uint8_t *)"a", 1, (const uint8_t *)"1", 1},
        {(const uint8_t *)"b", 1, (const uint8_t *)"2", 1},
        {(const uint8_t *)"", 0, (const uint8_t *)"3", 1},
    };
    cr_assert_eq(amp_encode_box(&b, ps, 3), AMP_E_EMPTY_KEY);
    cr_assert_eq(b.len, len);
    cr_assert_eq(amp_encode_box(&b, ps, 0), AMP_E_EMPTY_BOX);
    cr_assert_eq(b.len, len);
    cr_assert_eq(amp_box_encoded_size(ps, 3), 0);
    cr_assert_eq(amp_encode_box(&b, ps, 2), AMP_OK);
    cr_assert_eq(b.len, len + 14);
    amp_buf_free(&b);
}

Test(encoder, callers_fixed_buffer)
{
    uint8_t mem[14];
    amp_buf b;
    amp_buf_init_fixed(&b, mem, sizeof mem);
    amp_pair ps[2] = {
        {(const uint8_t *)"a", 1, (const uint8_t *)"1", 1},
        {(const uint8_t *)"b", 1, (const uint8_t *)"22", 2},
    };
    /* 2 + 6 + 7 = 15 bytes do not fit into 14 */
    cr_assert_eq(amp_encode_box(&b, ps, 2), AMP_E_NOSPACE);
    cr_assert_eq(b.len, 0);
    ps[1].value_len = 1;
    cr_assert_eq(amp_encode_box(&b, ps, 2), AMP_OK);
    cr_assert_eq(b.len, 14);
    cr_assert_eq(amp_encode_end(&b), AMP_E_NOSPACE);
    cr_assert_eq(b.len, 14);
    const uint8_t want[] = {0, 1, 'a', 0, 1, '1', 0, 1, 'b', 0, 1, '2', 0, 0};
    cr_assert(memcmp(mem, want, 14) == 0);
    amp_buf_free(&b);
}

Test(encoder, error_names_and_classes)
{
    cr_assert(amp_err_is_limit(AMP_E_TOO_MANY_KEYS));
    cr_assert(amp_err_is_limit(AMP_E_BOX_TOO_LARGE));
    cr_assert(!amp_err_is_limit(AMP_E_KEY_TOO_LONG));
    cr_assert(amp_err_is_protocol(AMP_E_KEY_TOO_LONG));
    cr_assert(!amp_err_is_protocol(AMP_AGAIN));
    cr_assert_str_eq(amp_errname(AMP_E_EMPTY_KEY), "empty-key");
    cr_assert_str_eq(amp_strerror(12345), "unknown error");
    cr_assert_str_eq(amp_version(), AMP_VERSION_STRING);
}
