/* Decimal values: the General Decimal Arithmetic numeric-string syntax on
 * input, Python's str(decimal.Decimal) (to-scientific-string) on output. */
#include <string.h>

#include "amp/value.h"

/* Both the exponent and the adjusted exponent (exponent + digits - 1, the
 * one printed in scientific form) must stay within +-EXP_LIMIT, so that every
 * accepted value prints in a form that reads back. */
#define EXP_LIMIT 999999999999999999LL

static int exp_in_range(int64_t exp, size_t ndigits)
{
    return exp <= EXP_LIMIT && exp >= -EXP_LIMIT &&
           (int64_t)ndigits - 1 <= EXP_LIMIT - exp;
}

static int lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int word_is(const uint8_t *p, size_t n, const char *w)
{
    if (strlen(w) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(p[i]) != w[i])
            return 0;
    return 1;
}

static int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* Copy digits without leading zeros; `keep_zero` leaves "0" for an all-zero
 * coefficient (a NaN payload becomes empty instead). */
static size_t copy_digits(const uint8_t *p, size_t n, char *dst, int keep_zero)
{
    size_t i = 0;
    while (i < n && p[i] == '0')
        i++;
    if (i == n) {
        if (keep_zero && n) {
            dst[0] = '0';
            return 1;
        }
        return 0;
    }
    memcpy(dst, p + i, n - i);
    return n - i;
}

amp_err amp_decimal_parse(const uint8_t *p, size_t n, amp_decimal *out, char *scratch,
                          size_t scratch_len)
{
    if (!p || !out || !scratch)
        return AMP_E_INVALID;
    if (scratch_len < n)
        return AMP_E_NOSPACE;
    memset(out, 0, sizeof *out);
    out->digits = scratch;
    size_t i = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        out->negative = p[i++] == '-';
    const uint8_t *s = p + i;
    size_t sn = n - i;
    if (word_is(s, sn, "inf") || word_is(s, sn, "infinity")) {
        out->kind = AMP_DECIMAL_INFINITY;
        return AMP_OK;
    }
    size_t skip = 0;
    if (sn >= 3 && word_is(s, 3, "nan")) {
        out->kind = AMP_DECIMAL_NAN;
        skip = 3;
    } else if (sn >= 4 && word_is(s, 4, "snan")) {
        out->kind = AMP_DECIMAL_SNAN;
        skip = 4;
    }
    if (skip) {
        for (size_t k = skip; k < sn; k++)
            if (!is_digit(s[k]))
                return AMP_E_BAD_VALUE;
        out->ndigits = copy_digits(s + skip, sn - skip, scratch, 0);
        return AMP_OK;
    }

    /* decimal-part: digits '.' [digits] | ['.'] digits */
    size_t k = 0, int_start = 0, int_len, frac_start, frac_len = 0;
    while (k < sn && is_digit(s[k]))
        k++;
    int_len = k;
    frac_start = k;
    if (k < sn && s[k] == '.') {
        frac_start = ++k;
        while (k < sn && is_digit(s[k]))
            k++;
        frac_len = k - frac_start;
    }
    if (int_len + frac_len == 0)
        return AMP_E_BAD_VALUE;
    int64_t exp = 0;
    if (k < sn && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        int eneg = 0;
        if (k < sn && (s[k] == '+' || s[k] == '-'))
            eneg = s[k++] == '-';
        size_t es = k;
        while (k < sn && is_digit(s[k])) {
            /* saturate: the syntax is checked to the end before the range */
            exp = exp > (INT64_MAX - 9) / 10 ? EXP_LIMIT + 1 : exp * 10 + (s[k] - '0');
            k++;
        }
        if (k == es)
            return AMP_E_BAD_VALUE;
        if (eneg)
            exp = -exp;
    }
    if (k != sn)
        return AMP_E_BAD_VALUE;
    exp -= (int64_t)frac_len;

    /* coefficient = integer digits followed by fraction digits */
    size_t lead = 0;
    while (lead < int_len && s[int_start + lead] == '0')
        lead++;
    size_t nd = 0;
    if (lead < int_len) {
        memcpy(scratch, s + int_start + lead, int_len - lead);
        nd = int_len - lead;
        memcpy(scratch + nd, s + frac_start, frac_len);
        nd += frac_len;
    } else {
        nd = copy_digits(s + frac_start, frac_len, scratch, 1);
        if (nd == 0) /* "0." */
            scratch[nd++] = '0';
    }
    if (!exp_in_range(exp, nd))
        return AMP_E_RANGE;
    out->kind = AMP_DECIMAL_FINITE;
    out->exponent = exp;
    out->ndigits = nd;
    return AMP_OK;
}

static amp_err put(amp_buf *b, const char *s, size_t n)
{
    return amp_buf_append(b, (const uint8_t *)s, n);
}

static amp_err put_zeros(amp_buf *b, int64_t n)
{
    amp_err r = amp_buf_reserve(b, (size_t)n);
    if (r != AMP_OK)
        return r;
    memset(b->data + b->len, '0', (size_t)n);
    b->len += (size_t)n;
    return AMP_OK;
}

amp_err amp_decimal_format(const amp_decimal *d, amp_buf *out)
{
    if (!d || !out || (d->ndigits && !d->digits))
        return AMP_E_INVALID;
    for (size_t i = 0; i < d->ndigits; i++)
        if (!is_digit((uint8_t)d->digits[i]))
            return AMP_E_INVALID;
    if (d->ndigits > 1 && d->digits[0] == '0')
        return AMP_E_INVALID;

    /* Compose into a mark-and-rollback region so errors leave `out` as it was. */
    size_t mark = out->len;
    amp_err r = AMP_OK;
    if (d->negative)
        r = put(out, "-", 1);
    if (r == AMP_OK && d->kind != AMP_DECIMAL_FINITE) {
        switch (d->kind) {
        case AMP_DECIMAL_INFINITY:
            r = put(out, "Infinity", 8);
            break;
        case AMP_DECIMAL_NAN:
            r = put(out, "NaN", 3);
            break;
        case AMP_DECIMAL_SNAN:
            r = put(out, "sNaN", 4);
            break;
        default:
            r = AMP_E_INVALID;
        }
        if (r == AMP_OK && d->kind != AMP_DECIMAL_INFINITY && !(d->ndigits == 1 && d->digits[0] == '0'))
            r = put(out, d->digits, d->ndigits);
        if (r != AMP_OK)
            out->len = mark;
        return r;
    }
    if (r == AMP_OK && (d->ndigits == 0 || !exp_in_range(d->exponent, d->ndigits)))
        r = AMP_E_INVALID;

    /* Python's Decimal.__str__ (eng=False) */
    int64_t len = (int64_t)d->ndigits;
    int64_t leftdigits = d->exponent + len;
    int64_t dotplace = (d->exponent <= 0 && leftdigits > -6) ? leftdigits : 1;
    if (r == AMP_OK) {
        if (dotplace <= 0) {
            r = put(out, "0.", 2);
            if (r == AMP_OK)
                r = put_zeros(out, -dotplace);
            if (r == AMP_OK)
                r = put(out, d->digits, d->ndigits);
        } else if (dotplace >= len) {
            r = put(out, d->digits, d->ndigits);
            if (r == AMP_OK)
                r = put_zeros(out, dotplace - len);
        } else {
            r = put(out, d->digits, (size_t)dotplace);
            if (r == AMP_OK)
                r = put(out, ".", 1);
            if (r == AMP_OK)
                r = put(out, d->digits + dotplace, (size_t)(len - dotplace));
        }
    }
    if (r == AMP_OK && leftdigits != dotplace) {
        char e[AMP_INT_MAX_LEN + 2];
        int64_t x = leftdigits - dotplace;
        size_t n = 0;
        e[n++] = 'E';
        if (x >= 0)
            e[n++] = '+';
        n += amp_int_format(x, e + n);
        r = put(out, e, n);
    }
    if (r != AMP_OK)
        out->len = mark;
    return r;
}
