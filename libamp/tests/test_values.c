/* Typed values beyond the vectors: boundaries and round trips. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"

static amp_err ip(const char *s, int64_t *v)
{
    return amp_int_parse((const uint8_t *)s, strlen(s), v);
}

Test(values, int64_boundaries)
{
    int64_t v;
    cr_assert_eq(ip("9223372036854775807", &v), AMP_OK);
    cr_assert_eq(v, INT64_MAX);
    cr_assert_eq(ip("-9223372036854775808", &v), AMP_OK);
    cr_assert_eq(v, INT64_MIN);
    cr_assert_eq(ip("9223372036854775808", &v), AMP_E_RANGE);
    cr_assert_eq(ip("-9223372036854775809", &v), AMP_E_RANGE);
    cr_assert_eq(ip("99999999999999999999999", &v), AMP_E_RANGE);
    char out[AMP_INT_MAX_LEN];
    size_t n = amp_int_format(INT64_MIN, out);
    cr_assert(n == 20 && memcmp(out, "-9223372036854775808", 20) == 0);
    n = amp_int_format(0, out);
    cr_assert(n == 1 && out[0] == '0');
}

Test(values, int_random_round_trip)
{
    unsigned seed = 3;
    for (int i = 0; i < 100000; i++) {
        uint64_t u = ((uint64_t)rand_r(&seed) << 33) ^ ((uint64_t)rand_r(&seed) << 11) ^
                     (uint64_t)rand_r(&seed);
        u >>= rand_r(&seed) % 63;
        int64_t x = (int64_t)(u >> 1);
        if (i & 1)
            x = -x - 1; /* reaches INT64_MIN too */
        char out[AMP_INT_MAX_LEN], ref[32];
        size_t n = amp_int_format(x, out);
        snprintf(ref, sizeof ref, "%lld", (long long)x);
        cr_assert(n == strlen(ref) && memcmp(out, ref, n) == 0);
        int64_t back;
        cr_assert_eq(amp_int_parse((uint8_t *)out, n, &back), AMP_OK);
        cr_assert_eq(back, x);
    }
}

Test(values, float_round_trip_of_random_bits)
{
    unsigned seed = 5;
    for (int i = 0; i < 200000; i++) {
        uint64_t bits = ((uint64_t)rand_r(&seed) << 42) ^ ((uint64_t)rand_r(&seed) << 21) ^
                        (uint64_t)rand_r(&seed) ^ ((uint64_t)(rand_r(&seed) & 3) << 62);
        double d;
        memcpy(&d, &bits, 8);
        char out[AMP_FLOAT_MAX_LEN];
        size_t n = amp_float_format(d, out);
        cr_assert(n <= AMP_FLOAT_MAX_LEN);
        double back;
        cr_assert_eq(amp_float_parse((uint8_t *)out, n, &back), AMP_OK, "%.*s", (int)n, out);
        if (isnan(d))
            cr_assert(isnan(back));
        else
            cr_assert(memcmp(&d, &back, 8) == 0, "%.*s", (int)n, out);
    }
}

Test(values, float_longest_repr_fits)
{
    char out[AMP_FLOAT_MAX_LEN];
    size_t n = amp_float_format(-2.2250738585072014e-308, out);
    cr_assert_eq(n, 24);
    cr_assert(memcmp(out, "-2.2250738585072014e-308", 24) == 0);
}

Test(values, decimal_round_trip_and_errors)
{
    const char *forms[] = {"1E+999999999999999999", "-1E-999999999999999999", "0", "-0.001",
                           "NaN1", "-sNaN", "Infinity"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        const char *s = forms[i];
        char scratch[64];
        amp_decimal d;
        cr_assert_eq(amp_decimal_parse((const uint8_t *)s, strlen(s), &d, scratch, sizeof scratch),
                     AMP_OK, "%s", s);
        amp_buf b;
        amp_buf_init(&b);
        cr_assert_eq(amp_decimal_format(&d, &b), AMP_OK);
        cr_assert(b.len == strlen(s) && memcmp(b.data, s, b.len) == 0, "%s -> %.*s", s,
                  (int)b.len, b.data);
        amp_buf_free(&b);
    }
    char small[2];
    amp_decimal d;
    cr_assert_eq(amp_decimal_parse((const uint8_t *)"123", 3, &d, small, sizeof small),
                 AMP_E_NOSPACE);
    /* a malformed struct is refused and the buffer is untouched */
    amp_decimal bad = {AMP_DECIMAL_FINITE, 0, 0, "12x", 3};
    amp_buf b;
    amp_buf_init(&b);
    amp_buf_append(&b, (const uint8_t *)"keep", 4);
    cr_assert_eq(amp_decimal_format(&bad, &b), AMP_E_INVALID);
    cr_assert_eq(b.len, 4);
    /* so is output that does not fit a fixed buffer */
    uint8_t mem[3];
    amp_buf f;
    amp_buf_init_fixed(&f, mem, sizeof mem);
    amp_decimal big = {AMP_DECIMAL_FINITE, 1, -2, "12345", 5};
    cr_assert_eq(amp_decimal_format(&big, &f), AMP_E_NOSPACE);
    cr_assert_eq(f.len, 0);
    amp_buf_free(&b);
}

Test(values, datetime_range_checks_on_format)
{
    amp_datetime t = {2024, 2, 30, 0, 0, 0, 0, 0};
    char out[AMP_DATETIME_LEN];
    cr_assert_eq(amp_datetime_format(&t, out), AMP_E_RANGE);
    t.day = 29;
    cr_assert_eq(amp_datetime_format(&t, out), AMP_OK);
    cr_assert(memcmp(out, "2024-02-29T00:00:00.000000-00:00", 32) == 0);
    t.offset_minutes = 1440;
    cr_assert_eq(amp_datetime_format(&t, out), AMP_E_RANGE);
    t.offset_minutes = 1;
    cr_assert_eq(amp_datetime_format(&t, out), AMP_OK);
    cr_assert(memcmp(out + 26, "+00:01", 6) == 0);
}

Test(values, list_element_too_long)
{
    static uint8_t big[65536];
    amp_buf b;
    amp_buf_init(&b);
    cr_assert_eq(amp_list_append(&b, big, sizeof big), AMP_E_VALUE_TOO_LONG);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(amp_list_append(&b, big, 65535), AMP_OK);
    cr_assert_eq(b.len, 65537);
    amp_buf_free(&b);
}

Test(values, structured_hostile_length_claims_cost_nothing)
{
    /* an array32 claiming 4 billion elements in 5 bytes */
    const uint8_t a[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    cr_assert_eq(amp_structured_check(a, sizeof a), AMP_E_TRUNCATED);
    /* 33 nested arrays */
    uint8_t deep[33];
    memset(deep, 0x91, sizeof deep);
    deep[32] = 0x90;
    cr_assert_eq(amp_structured_check(deep, sizeof deep), AMP_E_TOO_DEEP);
    cr_assert_eq(amp_structured_check(deep + 1, sizeof deep - 1), AMP_OK);
}
