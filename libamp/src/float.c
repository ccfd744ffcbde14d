/* Float values: Python's repr() on output, a strict decimal syntax on input.
 * Both directions run in the "C" locale whatever the process locale is.
 *
 * On a hosted POSIX system the process may switch locales, so strings are
 * read with strtod_l() under a "C" locale handle made once (pthread_once):
 * that handle is the core's only process-wide object, immutable once made.
 * Elsewhere (picolibc or newlib on a microcontroller) plain strtod() is
 * used: those libraries read numbers in the "C" locale unless the
 * application builds them with locales and switches one. */
#if defined(__linux__) || defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || \
    defined(__OpenBSD__)
#define AMP_C_LOCALE_HANDLE 1
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/value.h"

#ifdef AMP_C_LOCALE_HANDLE
#include <locale.h>
#include <pthread.h>
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
#include <xlocale.h>
#endif
#endif

/* Longest accepted input: far above any shortest repr (24 bytes) yet enough
 * for fixed-point output of other languages ("%f" of 1e300 is 308 bytes). */
#define FLOAT_MAX_INPUT 1024

#ifdef AMP_C_LOCALE_HANDLE
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static double c_strtod(const char *s)
{
    pthread_once(&c_locale_once, make_c_locale);
    return c_locale ? strtod_l(s, NULL, c_locale) : strtod(s, NULL);
}
#else
static double c_strtod(const char *s)
{
    return strtod(s, NULL);
}
#endif

static int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* -?D+(.D+)?([eE][+-]?D+)?  |  nan  |  -?inf */
static int float_syntax_ok(const uint8_t *p, size_t n)
{
    size_t i = 0;
    if (n == 3 && memcmp(p, "nan", 3) == 0)
        return 1;
    if (i < n && p[i] == '-')
        i++;
    if (n - i == 3 && memcmp(p + i, "inf", 3) == 0)
        return 1;
    size_t start = i;
    while (i < n && is_digit(p[i]))
        i++;
    if (i == start)
        return 0;
    if (i < n && p[i] == '.') {
        start = ++i;
        while (i < n && is_digit(p[i]))
            i++;
        if (i == start)
            return 0;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        start = i;
        while (i < n && is_digit(p[i]))
            i++;
        if (i == start)
            return 0;
    }
    return i == n;
}

amp_err amp_float_parse(const uint8_t *p, size_t n, double *out)
{
    if (!p || n == 0 || n > FLOAT_MAX_INPUT || !float_syntax_ok(p, n))
        return AMP_E_BAD_VALUE;
    char tmp[FLOAT_MAX_INPUT + 1];
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    double v;
    if (strcmp(tmp, "nan") == 0)
        v = NAN;
    else if (strcmp(tmp, "inf") == 0)
        v = INFINITY;
    else if (strcmp(tmp, "-inf") == 0)
        v = -INFINITY;
    else
        v = c_strtod(tmp); /* overflow gives +-inf, as Python's float() does */
    if (out)
        *out = v;
    return AMP_OK;
}

/* Split "%.*e" output into its digits and decimal exponent. */
static size_t split_sci(const char *s, char *digits, int *exp10)
{
    size_t nd = 0;
    for (; *s && *s != 'e'; s++)
        if (is_digit((uint8_t)*s))
            digits[nd++] = *s;
    *exp10 = atoi(s + 1);
    return nd;
}

/* Does digits[0..nd) x 10^(exp10 - nd + 1) read back as v? */
static int reads_back(const char *digits, size_t nd, int exp10, double v)
{
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%.*se%d", (int)nd, digits, exp10 - (int)nd + 1);
    return c_strtod(tmp) == v;
}

/* Add `delta` (+1 or -1) to the last digit; returns the new digit count and
 * adjusts exp10 when the count of digits before the point changes. */
static size_t step_last(char *d, size_t nd, int *exp10, int delta)
{
    size_t i = nd;
    while (i-- > 0) {
        int x = d[i] - '0' + delta;
        if (x >= 0 && x <= 9) {
            d[i] = (char)('0' + x);
            break;
        }
        d[i] = delta > 0 ? '0' : '9';
        if (i == 0) {
            if (delta > 0) { /* 999 -> 1000 */
                memmove(d + 1, d, nd);
                d[0] = '1';
                (*exp10)++;
                return nd; /* the trailing zero is dropped below */
            }
            return 0; /* cannot go below 1 at this precision */
        }
    }
    if (nd > 0 && d[0] == '0') { /* 1000 -> 0999 (nd > 0 always: for the compiler) */
        memmove(d, d + 1, nd - 1);
        (*exp10)--;
        return nd - 1;
    }
    return nd;
}

/* Python's repr digits: the shortest digit string that reads back as v,
 * closest to v among those. The correctly rounded string at each precision
 * is the closest; at a power of two the rounding interval is lopsided, so
 * its neighbour on the other side of v may read back when it does not.
 * Returns the digit count; *decpt: value = 0.DIGITS x 10^decpt. */
static size_t shortest_digits(double v, char *digits, int *decpt)
{
    char tmp[40];
    for (int prec = 0; prec <= 16; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, v);
        int exp10;
        size_t nd = split_sci(tmp, digits, &exp10);
        int found = c_strtod(tmp) == v || prec == 16;
        for (int delta = -1; !found && delta <= 1; delta += 2) {
            char alt[24];
            int alt_exp = exp10;
            memcpy(alt, digits, nd);
            size_t an = step_last(alt, nd, &alt_exp, delta);
            if (an && reads_back(alt, an, alt_exp, v)) {
                memcpy(digits, alt, an);
                nd = an;
                exp10 = alt_exp;
                found = 1;
            }
        }
        if (found) {
            while (nd > 1 && digits[nd - 1] == '0')
                nd--;
            *decpt = exp10 + 1;
            return nd;
        }
    }
    return 0; /* not reached: 17 significant digits always read back */
}

size_t amp_float_format(double v, char *out)
{
    size_t len = 0;
    if (isnan(v)) {
        memcpy(out, "nan", 3);
        return 3;
    }
    if (signbit(v)) {
        out[len++] = '-';
        v = -v;
    }
    if (isinf(v)) {
        memcpy(out + len, "inf", 3);
        return len + 3;
    }
    if (v == 0) {
        memcpy(out + len, "0.0", 3);
        return len + 3;
    }
    char d[20];
    int decpt;
    size_t nd = shortest_digits(v, d, &decpt);
    if (decpt <= -4 || decpt > 16) {
        /* d[.ddd]e+XX, at least two exponent digits, as Python does */
        out[len++] = d[0];
        if (nd > 1) {
            out[len++] = '.';
            memcpy(out + len, d + 1, nd - 1);
            len += nd - 1;
        }
        int e = decpt - 1;
        out[len++] = 'e';
        out[len++] = e < 0 ? '-' : '+';
        if (e < 0)
            e = -e;
        if (e >= 100)
            out[len++] = (char)('0' + e / 100);
        out[len++] = (char)('0' + (e / 10) % 10);
        out[len++] = (char)('0' + e % 10);
    } else if (decpt <= 0) {
        out[len++] = '0';
        out[len++] = '.';
        for (int i = 0; i < -decpt; i++)
            out[len++] = '0';
        memcpy(out + len, d, nd);
        len += nd;
    } else if ((size_t)decpt >= nd) {
        memcpy(out + len, d, nd);
        len += nd;
        for (size_t i = nd; i < (size_t)decpt; i++)
            out[len++] = '0';
        out[len++] = '.';
        out[len++] = '0';
    } else {
        memcpy(out + len, d, (size_t)decpt);
        len += (size_t)decpt;
        out[len++] = '.';
        memcpy(out + len, d + decpt, nd - (size_t)decpt);
        len += nd - (size_t)decpt;
    }
    return len;
}
