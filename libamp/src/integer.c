/* Integer, Descriptor and Boolean values. */
#include <string.h>

#include "amp/value.h"

amp_err amp_bigint_check(const uint8_t *p, size_t n)
{
    if (!p || n == 0)
        return AMP_E_BAD_VALUE;
    size_t i = 0;
    if (p[0] == '-') {
        i = 1;
        if (n == 1)
            return AMP_E_BAD_VALUE;
    }
    /* canonical: no leading zeros, and no "-0" */
    if (p[i] == '0' && (n - i > 1 || i == 1))
        return AMP_E_BAD_VALUE;
    for (; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return AMP_E_BAD_VALUE;
    return AMP_OK;
}

amp_err amp_int_parse(const uint8_t *p, size_t n, int64_t *out)
{
    amp_err r = amp_bigint_check(p, n);
    if (r != AMP_OK)
        return r;
    int neg = p[0] == '-';
    /* accumulate as a negative number so INT64_MIN fits */
    int64_t acc = 0;
    for (size_t i = (size_t)neg; i < n; i++) {
        int digit = p[i] - '0';
        if (acc < (INT64_MIN + digit) / 10)
            return AMP_E_RANGE;
        acc = acc * 10 - digit;
    }
    if (!neg) {
        if (acc == INT64_MIN)
            return AMP_E_RANGE;
        acc = -acc;
    }
    if (out)
        *out = acc;
    return AMP_OK;
}

size_t amp_int_format(int64_t v, char *out)
{
    char tmp[AMP_INT_MAX_LEN];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    return len;
}

amp_err amp_descriptor_parse(const uint8_t *p, size_t n, int64_t *ordinal)
{
    int64_t v;
    amp_err r = amp_int_parse(p, n, &v);
    if (r != AMP_OK)
        return r;
    if (v < 0)
        return AMP_E_RANGE;
    if (ordinal)
        *ordinal = v;
    return AMP_OK;
}

amp_err amp_bool_parse(const uint8_t *p, size_t n, int *out)
{
    if (!p)
        return AMP_E_BAD_VALUE;
    if (n == 4 && memcmp(p, "True", 4) == 0) {
        if (out)
            *out = 1;
        return AMP_OK;
    }
    if (n == 5 && memcmp(p, "False", 5) == 0) {
        if (out)
            *out = 0;
        return AMP_OK;
    }
    return AMP_E_BAD_VALUE;
}

const char *amp_bool_format(int v)
{
    return v ? "True" : "False";
}
