/* Typed argument values, byte-identical to Twisted's amp argument types
 * (part of libamp-core).
 * Parsers are strict (see spec/amp.md, "Argument types"): they accept the
 * canonical form Twisted emits and reject what it would not emit. Formatters
 * write exactly Twisted's bytes. None of these functions allocate unless they
 * are given a growable amp_buf (which then uses its own allocator).
 *
 * Threads, lifetimes, clocks
 *   - Threads: every function here is a pure function of its arguments and
 *     may run on any thread concurrently (an amp_buf being appended to is
 *     the caller's and must not be shared meanwhile). Floats parse and print
 *     in the "C" locale whatever the process or thread locale (on a libc
 *     without locale handles, such as picolibc, as long as the program
 *     does not switch its locale).
 *   - Lifetimes: outputs go into caller memory (fixed arrays of the stated
 *     maximum length, or an amp_buf); views (amp_list_next's element,
 *     amp_decimal.digits) point into the caller's input or scratch and live
 *     as long as those.
 *   - Clocks: none. amp_datetime is a value, never read from a clock.
 *   - Structured (MessagePack) values are checked here, in the core, by a
 *     validator of its own: no MessagePack library is linked. Build them
 *     with any MessagePack library (amp-cli and the tests use msgpack-c). */
#ifndef AMP_VALUE_H
#define AMP_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "amp/box.h"
#include "amp/error.h"
#include "amp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Integer: decimal ASCII, `0 | -?[1-9][0-9]*` -------------------------- */
#define AMP_INT_MAX_LEN 20 /* "-9223372036854775808" */

/* AMP_OK, AMP_E_BAD_VALUE (not canonical decimal) or AMP_E_RANGE (valid but
 * outside int64_t; use the arbitrary-precision form). */
AMP_API amp_err amp_int_parse(const uint8_t *p, size_t n, int64_t *out);
/* Writes at most AMP_INT_MAX_LEN bytes (no NUL); returns the length. */
AMP_API size_t amp_int_format(int64_t v, char *out);
/* Arbitrary precision: checks that p..n is a canonical decimal integer of
 * any size. AMP_OK or AMP_E_BAD_VALUE. The wire form is the string itself. */
AMP_API amp_err amp_bigint_check(const uint8_t *p, size_t n);

/* ---- Boolean: exactly "True" / "False" ----------------------------------- */
AMP_API amp_err amp_bool_parse(const uint8_t *p, size_t n, int *out);
/* Returns a static string "True" or "False". */
AMP_API const char *amp_bool_format(int v);

/* ---- Unicode: UTF-8 (strict: no overlongs, no surrogates, <= U+10FFFF) --- */
AMP_API amp_err amp_utf8_check(const uint8_t *p, size_t n);

/* ---- Float: Python repr ------------------------------------------------- */
#define AMP_FLOAT_MAX_LEN 24 /* "-2.2250738585072014e-308" */
AMP_API amp_err amp_float_parse(const uint8_t *p, size_t n, double *out);
/* Python's repr(float): shortest round-trip digits. Writes at most
 * AMP_FLOAT_MAX_LEN bytes (no NUL); returns the length. */
AMP_API size_t amp_float_format(double v, char *out);

/* ---- Decimal: Python str(decimal.Decimal) ------------------------------- */
typedef enum amp_decimal_kind {
    AMP_DECIMAL_FINITE = 0,
    AMP_DECIMAL_INFINITY = 1,
    AMP_DECIMAL_NAN = 2,
    AMP_DECIMAL_SNAN = 3
} amp_decimal_kind;

/* value = (-1)^negative * coefficient * 10^exponent. `digits` holds the
 * coefficient as ASCII digits without leading zeros ("0" for zero; for NaN
 * and sNaN the diagnostic payload, possibly empty). */
typedef struct amp_decimal {
    amp_decimal_kind kind;
    int negative;
    int64_t exponent;
    const char *digits;
    size_t ndigits;
} amp_decimal;

/* Parses the General Decimal Arithmetic numeric-string syntax (what
 * Python's Decimal() accepts, minus whitespace and underscores). The digits
 * are copied into `scratch`, which must hold at least n bytes; `out->digits`
 * points into it. AMP_OK, AMP_E_BAD_VALUE, AMP_E_RANGE (the exponent or the
 * adjusted exponent, exponent + digits - 1, beyond +-(10^18 - 1)),
 * AMP_E_NOSPACE. */
AMP_API amp_err amp_decimal_parse(const uint8_t *p, size_t n, amp_decimal *out,
                                  char *scratch, size_t scratch_len);
/* Appends Python's str() of the value. AMP_E_INVALID for a bad struct. */
AMP_API amp_err amp_decimal_format(const amp_decimal *d, amp_buf *out);

/* ---- DateTime: YYYY-MM-DDTHH:MM:SS.ffffff+HH:MM, always 32 bytes -------- */
#define AMP_DATETIME_LEN 32
typedef struct amp_datetime {
    int year, month, day;             /* 1..9999, 1..12, 1..31 */
    int hour, minute, second;         /* 0..23, 0..59, 0..59 */
    int microsecond;                  /* 0..999999 */
    int offset_minutes;               /* UTC offset, -1439..1439 */
} amp_datetime;

AMP_API amp_err amp_datetime_parse(const uint8_t *p, size_t n, amp_datetime *out);
/* Writes exactly AMP_DATETIME_LEN bytes (no NUL). AMP_E_RANGE if a field is
 * out of range (nothing is then written). UTC is written as "-00:00". */
AMP_API amp_err amp_datetime_format(const amp_datetime *dt, char *out);

/* ---- ListOf(T): a sequence of `u16be len, element` ---------------------- */
/* Iterate: start with *pos = 0. AMP_OK with the element's view, AMP_AGAIN at
 * the clean end of the list, AMP_E_TRUNCATED if the value ends inside an
 * element header or body (Twisted drops such a tail silently; we refuse). */
AMP_API amp_err amp_list_next(const uint8_t *p, size_t n, size_t *pos,
                              const uint8_t **elem, size_t *elem_len);
/* Append one element. AMP_E_VALUE_TOO_LONG over 65535 bytes. */
AMP_API amp_err amp_list_append(amp_buf *b, const uint8_t *elem, size_t elem_len);

/* ---- AmpList: a concatenation of boxes --------------------------------- *
 * Decode with an amp_decoder whose limits have allow_empty_box = 1 (a box
 * with no pairs is an element whose fields are all omitted), then check
 * amp_decoder_finish(). Encode with amp_encode_pair()/amp_encode_end(). */

/* ---- Descriptor: a non-negative Integer ordinal ------------------------- */
AMP_API amp_err amp_descriptor_parse(const uint8_t *p, size_t n, int64_t *ordinal);

/* ---- Structured (project extension): one MessagePack document ---------- *
 * Allowed: nil, booleans, integers, floats, str (valid UTF-8), bin, arrays,
 * maps; no ext types; at most AMP_STRUCTURED_MAX_DEPTH nested containers;
 * exactly one object with no trailing bytes. Checked without allocating, so
 * a hostile length claim costs nothing. AMP_OK, AMP_E_BAD_VALUE,
 * AMP_E_TRUNCATED, AMP_E_UTF8, AMP_E_TOO_DEEP. */
#define AMP_STRUCTURED_MAX_DEPTH 32
AMP_API amp_err amp_structured_check(const uint8_t *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif
