/* libFuzzer target for the typed-value parsers: nothing may crash, and every
 * value that parses must format back to something that parses to the same
 * value. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_decimal(const uint8_t *p, size_t n)
{
    char *scratch = malloc(n + 1);
    amp_decimal d;
    if (amp_decimal_parse(p, n, &d, scratch, n) == AMP_OK) {
        amp_buf b;
        amp_buf_init(&b);
        if (amp_decimal_format(&d, &b) != AMP_OK)
            abort();
        char *s2 = malloc(b.len + 1);
        amp_decimal d2;
        if (amp_decimal_parse(b.data, b.len, &d2, s2, b.len) != AMP_OK)
            abort();
        if (d2.kind != d.kind || d2.negative != d.negative || d2.ndigits != d.ndigits ||
            memcmp(d2.digits, d.digits, d.ndigits) != 0 ||
            (d.kind == AMP_DECIMAL_FINITE && d2.exponent != d.exponent))
            abort();
        free(s2);
        amp_buf_free(&b);
    }
    free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t i64;
    if (amp_int_parse(data, size, &i64) == AMP_OK) {
        char out[AMP_INT_MAX_LEN];
        size_t n = amp_int_format(i64, out);
        if (n != size || memcmp(out, data, n) != 0)
            abort(); /* canonical input only, so formatting gives it back */
    }
    (void)amp_bigint_check(data, size);

    double d;
    if (amp_float_parse(data, size, &d) == AMP_OK) {
        char out[AMP_FLOAT_MAX_LEN];
        size_t n = amp_float_format(d, out);
        double back;
        if (n > AMP_FLOAT_MAX_LEN || amp_float_parse((uint8_t *)out, n, &back) != AMP_OK)
            abort();
        if (!(isnan(d) ? isnan(back) : memcmp(&d, &back, sizeof d) == 0))
            abort();
    }

    check_decimal(data, size);

    amp_datetime t;
    if (amp_datetime_parse(data, size, &t) == AMP_OK) {
        char out[AMP_DATETIME_LEN];
        amp_datetime t2;
        if (amp_datetime_format(&t, out) != AMP_OK ||
            amp_datetime_parse((uint8_t *)out, sizeof out, &t2) != AMP_OK ||
            memcmp(&t, &t2, sizeof t) != 0)
            abort();
    }

    int b;
    (void)amp_bool_parse(data, size, &b);
    (void)amp_utf8_check(data, size);
    (void)amp_structured_check(data, size);

    size_t pos = 0;
    const uint8_t *elem;
    size_t elen;
    while (amp_list_next(data, size, &pos, &elem, &elen) == AMP_OK)
        if (elem + elen > data + size)
            abort();
    return 0;
}
