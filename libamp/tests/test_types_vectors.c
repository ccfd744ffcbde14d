/* spec/vectors/types.json: every argument type, both directions. */
#include <criterion/criterion.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "vectors.h"

static json_t *type_cases(json_t *root, const char *type, const char *what)
{
    json_t *t = json_object_get(json_object_get(root, "types"), type);
    cr_assert(t != NULL, "no vectors for %s", type);
    json_t *c = json_object_get(t, what);
    return c ? c : json_array();
}

static double bits_double(const json_t *v)
{
    const char *hex = json_string_value(json_object_get(v, "bits"));
    uint64_t b = strtoull(hex, NULL, 16);
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static void json_decimal(const json_t *v, amp_decimal *d)
{
    const char *kind = json_string_value(json_object_get(v, "kind"));
    memset(d, 0, sizeof *d);
    d->kind = !strcmp(kind, "finite")     ? AMP_DECIMAL_FINITE
              : !strcmp(kind, "infinity") ? AMP_DECIMAL_INFINITY
              : !strcmp(kind, "nan")      ? AMP_DECIMAL_NAN
                                          : AMP_DECIMAL_SNAN;
    d->negative = json_is_true(json_object_get(v, "negative"));
    d->digits = json_string_value(json_object_get(v, "digits"));
    d->ndigits = strlen(d->digits);
    d->exponent = json_integer_value(json_object_get(v, "exponent"));
}

static void json_datetime(const json_t *v, amp_datetime *t)
{
#define F(x) t->x = (int)json_integer_value(json_object_get(v, #x))
    F(year); F(month); F(day); F(hour); F(minute); F(second); F(microsecond);
    F(offset_minutes);
#undef F
}

/* Encode a scalar of `type` from its neutral JSON form. */
static void encode_scalar(const char *type, const json_t *v, amp_buf *out)
{
    char tmp[64];
    size_t n;
    if (!strcmp(type, "Integer") || !strcmp(type, "Descriptor")) {
        const char *s = json_string_value(v);
        int64_t x;
        amp_err r = amp_int_parse((const uint8_t *)s, strlen(s), &x);
        if (r == AMP_E_RANGE) {
            cr_assert_eq(amp_bigint_check((const uint8_t *)s, strlen(s)), AMP_OK);
            amp_buf_append(out, (const uint8_t *)s, strlen(s));
            return;
        }
        cr_assert_eq(r, AMP_OK);
        n = amp_int_format(x, tmp);
        amp_buf_append(out, (uint8_t *)tmp, n);
    } else if (!strcmp(type, "String")) {
        uint8_t *b = vec_hex_json(v, &n);
        amp_buf_append(out, b, n);
        free(b);
    } else if (!strcmp(type, "Unicode")) {
        amp_buf_append(out, (const uint8_t *)json_string_value(v), json_string_length(v));
    } else if (!strcmp(type, "Float")) {
        n = amp_float_format(bits_double(v), tmp);
        cr_assert(n <= AMP_FLOAT_MAX_LEN);
        amp_buf_append(out, (uint8_t *)tmp, n);
    } else if (!strcmp(type, "Boolean")) {
        const char *s = amp_bool_format(json_is_true(v));
        amp_buf_append(out, (const uint8_t *)s, strlen(s));
    } else if (!strcmp(type, "Decimal")) {
        amp_decimal d;
        json_decimal(v, &d);
        cr_assert_eq(amp_decimal_format(&d, out), AMP_OK);
    } else if (!strcmp(type, "DateTime")) {
        amp_datetime t;
        json_datetime(v, &t);
        cr_assert_eq(amp_datetime_format(&t, tmp), AMP_OK);
        amp_buf_append(out, (uint8_t *)tmp, AMP_DATETIME_LEN);
    } else {
        cr_assert_fail("unknown type %s", type);
    }
}

/* Decode bytes of `type` and compare with the neutral JSON form. */
static void check_scalar(const char *type, const uint8_t *p, size_t n, const json_t *v)
{
    if (!strcmp(type, "Integer") || !strcmp(type, "Descriptor")) {
        const char *s = json_string_value(v);
        int64_t x;
        amp_err r = !strcmp(type, "Integer") ? amp_int_parse(p, n, &x)
                                             : amp_descriptor_parse(p, n, &x);
        if (r == AMP_E_RANGE) {
            cr_assert_eq(amp_bigint_check(p, n), AMP_OK);
            cr_assert(n == strlen(s) && memcmp(p, s, n) == 0);
            return;
        }
        cr_assert_eq(r, AMP_OK, "%s %s: %s", type, s, amp_errname(r));
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%lld", (long long)x);
        cr_assert_str_eq(tmp, s);
    } else if (!strcmp(type, "String")) {
        size_t m;
        uint8_t *b = vec_hex_json(v, &m);
        cr_assert(m == n && memcmp(b, p, n) == 0);
        free(b);
    } else if (!strcmp(type, "Unicode")) {
        cr_assert_eq(amp_utf8_check(p, n), AMP_OK);
        cr_assert(json_string_length(v) == n && memcmp(json_string_value(v), p, n) == 0);
    } else if (!strcmp(type, "Float")) {
        double d;
        cr_assert_eq(amp_float_parse(p, n, &d), AMP_OK);
        double want = bits_double(v);
        if (isnan(want))
            cr_assert(isnan(d));
        else
            cr_assert(memcmp(&d, &want, sizeof d) == 0, "float %.*s", (int)n, p);
    } else if (!strcmp(type, "Boolean")) {
        int b;
        cr_assert_eq(amp_bool_parse(p, n, &b), AMP_OK);
        cr_assert_eq(b, json_is_true(v));
    } else if (!strcmp(type, "Decimal")) {
        amp_decimal d, want;
        char *scratch = malloc(n + 1);
        cr_assert_eq(amp_decimal_parse(p, n, &d, scratch, n), AMP_OK, "%.*s", (int)n, p);
        json_decimal(v, &want);
        cr_assert_eq(d.kind, want.kind, "%.*s", (int)n, p);
        cr_assert_eq(d.negative, want.negative, "%.*s", (int)n, p);
        cr_assert(d.ndigits == want.ndigits && memcmp(d.digits, want.digits, d.ndigits) == 0,
                  "digits of %.*s", (int)n, p);
        if (d.kind == AMP_DECIMAL_FINITE)
            cr_assert_eq(d.exponent, want.exponent, "%.*s", (int)n, p);
        free(scratch);
    } else if (!strcmp(type, "DateTime")) {
        amp_datetime t, want;
        cr_assert_eq(amp_datetime_parse(p, n, &t), AMP_OK);
        json_datetime(v, &want);
        cr_assert(memcmp(&t, &want, sizeof t) == 0);
    } else {
        cr_assert_fail("unknown type %s", type);
    }
}

static amp_err parse_only(const char *type, const uint8_t *p, size_t n)
{
    int64_t x;
    double d;
    int b;
    amp_datetime t;
    if (!strcmp(type, "Integer")) {
        amp_err r = amp_int_parse(p, n, &x);
        cr_assert_eq(amp_bigint_check(p, n) == AMP_OK, r == AMP_OK || r == AMP_E_RANGE);
        return r;
    }
    if (!strcmp(type, "Descriptor"))
        return amp_descriptor_parse(p, n, &x);
    if (!strcmp(type, "Unicode"))
        return amp_utf8_check(p, n);
    if (!strcmp(type, "Float"))
        return amp_float_parse(p, n, &d);
    if (!strcmp(type, "Boolean"))
        return amp_bool_parse(p, n, &b);
    if (!strcmp(type, "DateTime"))
        return amp_datetime_parse(p, n, &t);
    if (!strcmp(type, "Decimal")) {
        amp_decimal dec;
        char *scratch = malloc(n + 1);
        amp_err r = amp_decimal_parse(p, n, &dec, scratch, n);
        free(scratch);
        return r;
    }
    if (!strcmp(type, "Structured"))
        return amp_structured_check(p, n);
    cr_assert_fail("unknown type %s", type);
    return AMP_E_INVALID;
}

static const char *scalars[] = {"Integer", "String", "Unicode", "Float", "Boolean",
                                "Decimal", "DateTime", "Descriptor"};

Test(type_vectors, scalars_encode_and_decode)
{
    json_t *root = vec_load("types.json");
    for (size_t t = 0; t < sizeof scalars / sizeof scalars[0]; t++) {
        size_t i;
        json_t *c;
        json_array_foreach(type_cases(root, scalars[t], "encode"), i, c) {
            size_t n;
            uint8_t *want = vec_hex_json(json_object_get(c, "hex"), &n);
            amp_buf out;
            amp_buf_init(&out);
            encode_scalar(scalars[t], json_object_get(c, "value"), &out);
            cr_assert(out.len == n && (n == 0 || memcmp(out.data, want, n) == 0),
                      "%s case %zu: encoded '%.*s', Twisted '%.*s'", scalars[t], i,
                      (int)out.len, out.data, (int)n, want);
            check_scalar(scalars[t], want, n, json_object_get(c, "value"));
            amp_buf_free(&out);
            free(want);
        }
    }
    json_decref(root);
}

Test(type_vectors, decode_only_forms)
{
    json_t *root = vec_load("types.json");
    const char *types[] = {"Float", "Decimal", "DateTime"};
    for (size_t t = 0; t < 3; t++) {
        size_t i;
        json_t *c;
        json_array_foreach(type_cases(root, types[t], "decode_only"), i, c) {
            size_t n;
            uint8_t *p = vec_hex_json(json_object_get(c, "hex"), &n);
            check_scalar(types[t], p, n, json_object_get(c, "value"));
            json_t *canon = json_object_get(c, "canonical");
            if (canon) {
                size_t cn;
                uint8_t *cp = vec_hex_json(canon, &cn);
                amp_buf out;
                amp_buf_init(&out);
                encode_scalar(types[t], json_object_get(c, "value"), &out);
                cr_assert(out.len == cn && (cn == 0 || memcmp(out.data, cp, cn) == 0),
                          "%s: '%.*s' re-encodes as '%.*s', Twisted '%.*s'", types[t], (int)n, p,
                          (int)out.len, out.data, (int)cn, cp);
                amp_buf_free(&out);
                free(cp);
            }
            free(p);
        }
    }
    json_decref(root);
}

Test(type_vectors, scalar_rejects)
{
    json_t *root = vec_load("types.json");
    const char *types[] = {"Integer", "Unicode", "Float", "Boolean", "Decimal", "DateTime",
                           "Descriptor", "Structured"};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        size_t i;
        json_t *c;
        json_array_foreach(type_cases(root, types[t], "reject"), i, c) {
            size_t n;
            uint8_t *p = vec_hex_json(json_object_get(c, "hex"), &n);
            amp_err r = parse_only(types[t], p, n);
            const char *want = json_string_value(json_object_get(c, "error"));
            cr_assert_str_eq(amp_errname(r), want, "%s reject %zu ('%.*s'): got %s", types[t], i,
                             (int)n, p, amp_errname(r));
            free(p);
        }
    }
    json_decref(root);
}

/* ListOf: spec is the element type path, outermost first. */
static void encode_list(json_t *spec, size_t depth, const json_t *value, amp_buf *out)
{
    const char *type = json_string_value(json_array_get(spec, depth));
    size_t i;
    json_t *e;
    json_array_foreach(value, i, e) {
        amp_buf elem;
        amp_buf_init(&elem);
        if (!strcmp(type, "ListOf"))
            encode_list(spec, depth + 1, e, &elem);
        else
            encode_scalar(type, e, &elem);
        cr_assert_eq(amp_list_append(out, elem.data, elem.len), AMP_OK);
        amp_buf_free(&elem);
    }
}

static void check_list(json_t *spec, size_t depth, const uint8_t *p, size_t n, const json_t *value)
{
    const char *type = json_string_value(json_array_get(spec, depth));
    size_t pos = 0, i = 0;
    const uint8_t *elem;
    size_t elen;
    amp_err r;
    while ((r = amp_list_next(p, n, &pos, &elem, &elen)) == AMP_OK) {
        json_t *e = json_array_get(value, i++);
        cr_assert(e != NULL, "more elements than expected");
        if (!strcmp(type, "ListOf"))
            check_list(spec, depth + 1, elem, elen, e);
        else
            check_scalar(type, elem, elen, e);
    }
    cr_assert_eq(r, AMP_AGAIN);
    cr_assert_eq(i, json_array_size(value));
}

Test(type_vectors, listof)
{
    json_t *root = vec_load("types.json");
    size_t i;
    json_t *c;
    json_array_foreach(type_cases(root, "ListOf", "encode"), i, c) {
        size_t n;
        uint8_t *want = vec_hex_json(json_object_get(c, "hex"), &n);
        amp_buf out;
        amp_buf_init(&out);
        encode_list(json_object_get(c, "element"), 0, json_object_get(c, "value"), &out);
        cr_assert(out.len == n && (n == 0 || memcmp(out.data, want, n) == 0), "ListOf case %zu", i);
        check_list(json_object_get(c, "element"), 0, want, n, json_object_get(c, "value"));
        amp_buf_free(&out);
        free(want);
    }
    json_array_foreach(type_cases(root, "ListOf", "reject"), i, c) {
        size_t n;
        uint8_t *p = vec_hex_json(json_object_get(c, "hex"), &n);
        size_t pos = 0;
        const uint8_t *elem;
        size_t elen;
        amp_err r;
        while ((r = amp_list_next(p, n, &pos, &elem, &elen)) == AMP_OK) {
            r = parse_only("Integer", elem, elen);
            if (r != AMP_OK)
                break;
        }
        cr_assert_str_eq(amp_errname(r), json_string_value(json_object_get(c, "error")),
                         "ListOf reject %zu: %s", i, amp_errname(r));
        free(p);
    }
    json_decref(root);
}

Test(type_vectors, amplist)
{
    json_t *root = vec_load("types.json");
    amp_limits lim;
    amp_limits_default(&lim);
    lim.allow_empty_box = 1;
    size_t i;
    json_t *c;
    json_array_foreach(type_cases(root, "AmpList", "encode"), i, c) {
        size_t n;
        uint8_t *want = vec_hex_json(json_object_get(c, "hex"), &n);
        json_t *value = json_object_get(c, "value");
        /* encode: each element a box with its keys in Twisted's (sorted) order */
        amp_buf out;
        amp_buf_init(&out);
        size_t k;
        json_t *el;
        json_array_foreach(value, k, el) {
            json_t *a = json_object_get(el, "a"), *b = json_object_get(el, "b");
            amp_buf va;
            amp_buf_init(&va);
            encode_scalar("Integer", a, &va);
            cr_assert_eq(amp_encode_pair(&out, (const uint8_t *)"a", 1, va.data, va.len), AMP_OK);
            amp_buf_free(&va);
            if (b)
                cr_assert_eq(amp_encode_pair(&out, (const uint8_t *)"b", 1,
                                             (const uint8_t *)json_string_value(b),
                                             json_string_length(b)), AMP_OK);
            cr_assert_eq(amp_encode_end(&out), AMP_OK);
        }
        cr_assert(out.len == n && (n == 0 || memcmp(out.data, want, n) == 0), "AmpList %zu", i);
        /* decode */
        amp_decoder *d;
        amp_decoder_new(&d, &lim);
        amp_decoder_feed(d, want, n);
        amp_box box;
        size_t count = 0;
        while (amp_decoder_next(d, &box) == AMP_OK) {
            json_t *e = json_array_get(value, count++);
            const amp_pair *pa = amp_box_find_str(&box, "a");
            cr_assert(pa != NULL);
            check_scalar("Integer", pa->value, pa->value_len, json_object_get(e, "a"));
            const amp_pair *pb = amp_box_find_str(&box, "b");
            cr_assert_eq(pb != NULL, json_object_get(e, "b") != NULL);
        }
        cr_assert_eq(amp_decoder_finish(d), AMP_OK);
        cr_assert_eq(count, json_array_size(value));
        amp_decoder_free(d);
        amp_buf_free(&out);
        free(want);
    }
    json_array_foreach(type_cases(root, "AmpList", "reject"), i, c) {
        size_t n;
        uint8_t *p = vec_hex_json(json_object_get(c, "hex"), &n);
        amp_decoder *d;
        amp_decoder_new(&d, &lim);
        amp_decoder_feed(d, p, n);
        amp_box box;
        amp_err r;
        while ((r = amp_decoder_next(d, &box)) == AMP_OK)
            ;
        if (r == AMP_AGAIN)
            r = amp_decoder_finish(d);
        cr_assert_str_eq(amp_errname(r), json_string_value(json_object_get(c, "error")));
        amp_decoder_free(d);
        free(p);
    }
    json_decref(root);
}

Test(type_vectors, structured)
{
    json_t *root = vec_load("types.json");
    size_t i;
    json_t *c;
    json_array_foreach(type_cases(root, "Structured", "encode"), i, c) {
        size_t n;
        uint8_t *p = vec_hex_json(json_object_get(c, "hex"), &n);
        cr_assert_eq(amp_structured_check(p, n), AMP_OK, "Structured %zu", i);
        /* whatever passes the check, msgpack-c can unpack (depth included) */
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        cr_assert_eq(msgpack_unpack_next(&u, (const char *)p, n, &off), MSGPACK_UNPACK_SUCCESS,
                     "msgpack-c cannot unpack Structured %zu", i);
        cr_assert_eq(off, n);
        msgpack_unpacked_destroy(&u);
        free(p);
    }
    json_decref(root);
}
