/* AMP values as JSON by declared type, and JSON back into AMP values. */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "typed_args.h"
#include "typed_json.h"

static sig_type *type_of(const char *s)
{
    sig_type *t;
    char err[256];
    cr_assert_eq(sig_type_parse(s, strlen(s), &t, err, sizeof err), 0, "%s: %s", s, err);
    return t;
}

/* The JSON of value p..n as type `type` (NULL: undeclared). */
static char *json_of(const char *type, const void *p, size_t n)
{
    sig_type *t = type ? type_of(type) : NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    typed_json_write_value(m, t, p, n);
    fclose(m);
    sig_type_free(t);
    return text;
}

static void expect_json(const char *type, const char *value, const char *want)
{
    char *got = json_of(type, value, strlen(value));
    cr_expect_str_eq(got, want, "%s %s", type ? type : "-", value);
    free(got);
}

Test(to_json, scalars)
{
    expect_json("Integer", "42", "42");
    expect_json("Integer", "-7", "-7");
    expect_json("Integer", "123456789012345678901234567890123",
                "123456789012345678901234567890123");
    expect_json("Float", "1.5", "1.5");
    expect_json("Float", "1e+16", "1e+16");
    expect_json("Float", "nan", "\"nan\"");
    expect_json("Float", "inf", "\"inf\"");
    expect_json("Float", "-inf", "\"-inf\"");
    expect_json("Boolean", "True", "true");
    expect_json("Boolean", "False", "false");
    expect_json("String", "a\"b", "\"a\\\"b\"");
    expect_json("Unicode", "h\xc3\xa9", "\"h\xc3\xa9\"");
    expect_json("Path", "/tmp/x", "\"/tmp/x\"");
    expect_json("Decimal", "1.10", "\"1.10\"");
    expect_json("Decimal", "-Infinity", "\"-Infinity\"");
    expect_json("DateTime", "2024-05-01T12:00:00.000000+02:00",
                "\"2024-05-01T12:00:00.000000+02:00\"");
    expect_json("Descriptor", "3", "3");
    expect_json(NULL, "42", "\"42\"");
}

Test(to_json, bytes_that_are_not_utf8_as_surrogates)
{
    char *got = json_of("String", "a\xff\x80", 3);
    cr_expect_str_eq(got, "\"a\\udcff\\udc80\"");
    free(got);
    got = json_of("Unicode", "\xc3", 1);
    cr_expect_str_eq(got, "\"\\udcc3\"");
    free(got);
}

Test(to_json, a_value_not_of_its_type_is_a_string)
{
    expect_json("Integer", "12x", "\"12x\"");
    expect_json("Integer", "007", "\"007\"");
    expect_json("Float", "one", "\"one\"");
    expect_json("Boolean", "yes", "\"yes\"");
    expect_json("Decimal", "1.2.3", "\"1.2.3\"");
    expect_json("DateTime", "today", "\"today\"");
    /* a list cut inside an element: its bytes, nothing half-written */
    char *got = json_of("ListOf(Integer)", "\0\x01" "1\0\x05" "2", 6);
    cr_expect_str_eq(got, "\"\\u0000\\u00011\\u0000\\u00052\"");
    free(got);
}

Test(to_json, lists_and_amplists)
{
    char *got = json_of("ListOf(Integer)", "\0\x01" "1\0\x02" "-2\0\x15" "123456789012345678901",
                        30);
    cr_expect_str_eq(got, "[1,-2,123456789012345678901]");
    free(got);
    got = json_of("ListOf(Integer)", "", 0);
    cr_expect_str_eq(got, "[]");
    free(got);
    got = json_of("ListOf(ListOf(Boolean))", "\0\x06\0\x04True\0\0", 10);
    cr_expect_str_eq(got, "[[true],[]]");
    free(got);
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair_str(&b, "a", "5");
    amp_encode_pair_str(&b, "extra", "x");
    amp_encode_end(&b);
    amp_encode_end(&b); /* an element with every field omitted */
    got = json_of("AmpList(a: Integer, b: Float)", b.data, b.len);
    cr_expect_str_eq(got, "[{\"a\":5,\"extra\":\"x\"},{}]");
    free(got);
    amp_buf_free(&b);
}

Test(to_json, structured)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "n", 1);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint64(&pk, 18446744073709551615ull);
    msgpack_pack_int64(&pk, -5);
    msgpack_pack_double(&pk, 0.5);
    msgpack_pack_nil(&pk);
    msgpack_pack_str_with_body(&pk, "t", 1);
    msgpack_pack_true(&pk);
    char *got = json_of("Structured", sb.data, sb.size);
    cr_expect_str_eq(got, "{\"n\":[18446744073709551615,-5,0.5,null],\"t\":true}");
    free(got);
    msgpack_sbuffer_destroy(&sb);
}

Test(to_json, boxes_with_and_without_declared_keys)
{
    signature s;
    char err[256];
    cr_assert_eq(signature_parse("S() -> (total: Integer, ok: Boolean)", &s, err, sizeof err), 0);
    amp_pair p[3] = {{(const uint8_t *)"total", 5, (const uint8_t *)"99", 2},
                     {(const uint8_t *)"note", 4, (const uint8_t *)"99", 2},
                     {(const uint8_t *)"ok", 2, (const uint8_t *)"False", 5}};
    amp_box box = {p, 3, 0};
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    typed_json_write_box(m, &box, s.response, s.nresponse);
    fclose(m);
    cr_expect_str_eq(text, "{\"total\":99,\"note\":\"99\",\"ok\":false}");
    free(text);
    signature_free(&s);
}

static char *readable(const char *type, const char *value)
{
    sig_type *t = type ? type_of(type) : NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    typed_json_write_text(m, t, (const uint8_t *)value, strlen(value));
    fclose(m);
    sig_type_free(t);
    return text;
}

Test(to_text, strings_bare_the_rest_as_json)
{
    char *s = readable("Unicode", "hello world");
    cr_expect_str_eq(s, "hello world");
    free(s);
    s = readable(NULL, "two\nlines");
    cr_expect_str_eq(s, "two\\nlines"); /* escaped for a terminal, term_text.h */
    free(s);
    s = readable("Float", "nan");
    cr_expect_str_eq(s, "\"nan\"");
    free(s);
    s = readable("Integer", "12");
    cr_expect_str_eq(s, "12");
    free(s);
    s = readable("Decimal", "1.10");
    cr_expect_str_eq(s, "1.10");
    free(s);
}

/* The AMP bytes of JSON text `json` as type `type`, or NULL if refused. */
static amp_buf encoded;
static int encode(const char *type, const char *json, char *err, size_t n)
{
    sig_type *t = type_of(type);
    json_error_t je;
    json_t *j = json_loads(json, JSON_DECODE_ANY, &je);
    cr_assert_not_null(j, "%s", je.text);
    amp_buf_free(&encoded);
    amp_buf_init(&encoded);
    int r = typed_args_encode_json(t, j, &encoded, err, n);
    json_decref(j);
    sig_type_free(t);
    return r;
}

static void expect_amp(const char *type, const char *json, const void *want, size_t wn)
{
    char err[256] = "";
    cr_assert_eq(encode(type, json, err, sizeof err), 0, "%s %s: %s", type, json, err);
    cr_expect_eq(encoded.len, wn, "%s %s: %zu bytes", type, json, encoded.len);
    cr_expect_eq(memcmp(encoded.data, want, wn), 0, "%s %s", type, json);
}

static void expect_refused(const char *type, const char *json, const char *why)
{
    char err[256] = "";
    cr_expect_eq(encode(type, json, err, sizeof err), -1, "%s %s accepted", type, json);
    cr_expect(strstr(err, why), "%s %s: '%s' lacks '%s'", type, json, err, why);
}

Test(from_json, by_declared_type)
{
    expect_amp("Integer", "42", "42", 2);
    expect_amp("Integer", "\"123456789012345678901234567890\"",
               "123456789012345678901234567890", 30);
    expect_amp("Float", "2", "2.0", 3);
    expect_amp("Float", "\"nan\"", "nan", 3);
    expect_amp("Float", "\"-inf\"", "-inf", 4);
    expect_amp("Boolean", "true", "True", 4);
    expect_amp("Decimal", "\"1.10\"", "1.10", 4);
    expect_amp("Unicode", "\"h\xc3\xa9\"", "h\xc3\xa9", 3);
    expect_amp("ListOf(Integer)", "[1, 22]", "\0\x01" "1\0\x02" "22", 7);
    expect_amp("AmpList(a: Integer)", "[{\"a\": 5, \"b\": \"x\"}]",
               "\0\x01" "a\0\x01" "5\0\x01" "b\0\x01" "x\0\0", 14);
    expect_amp("Structured", "[1, \"a\"]", "\x92\x01\xa1" "a", 4);
    expect_refused("Integer", "1.5", "not an integer");
    expect_refused("Integer", "\"x\"", "not an integer");
    expect_refused("Boolean", "\"maybe\"", "not a boolean");
    expect_refused("ListOf(Integer)", "{}", "needs a JSON array");
    expect_refused("AmpList(a: Integer)", "[{\"a\": \"q\"}]", "AmpList field 'a'");
    expect_refused("AmpList(a: Integer)", "[{\"b\": 1}]", "must be a string");
    expect_refused("String", "null", "must be a JSON string or number");
    amp_buf_free(&encoded);
}

Test(from_json, an_object_into_a_box)
{
    signature s;
    char err[256];
    cr_assert_eq(signature_parse("S() -> (total: Integer, f: Float)", &s, err, sizeof err), 0);
    json_t *obj = json_loads("{\"total\": 3, \"f\": 1, \"note\": 7, \"s\": \"x\"}", 0, NULL);
    typed_box b;
    cr_assert_eq(typed_json_to_box(obj, s.response, s.nresponse, &b, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(b.count, 4);
    cr_expect_eq(b.pairs[0].value_len, 1);
    cr_expect_eq(memcmp(b.pairs[1].value, "1.0", 3), 0);
    cr_expect_eq(memcmp(b.pairs[2].key, "note", 4), 0);
    cr_expect_eq(memcmp(b.pairs[2].value, "7", 1), 0);
    typed_box_free(&b);
    json_decref(obj);
    obj = json_loads("{\"total\": \"many\"}", 0, NULL);
    cr_expect_eq(typed_json_to_box(obj, s.response, s.nresponse, &b, err, sizeof err), -1);
    cr_expect(strstr(err, "key 'total'"), "%s", err);
    typed_box_free(&b);
    json_decref(obj);
    signature_free(&s);
}

Test(from_text, command_line_arguments_with_a_signature)
{
    signature s;
    char err[512];
    cr_assert_eq(signature_parse("Sum(a: Integer, b: ListOf(Integer)?, c: String?)", &s, err,
                                 sizeof err), 0);
    char a1[] = "a=5", a2[] = "b=[1,2]", a3[] = "c:int=7";
    char *argv[] = {a1, a2, a3};
    typed_args ta;
    cr_assert_eq(typed_args_parse_sig(&ta, 3, argv, &s, err, sizeof err), 0, "%s", err);
    cr_expect_eq(ta.pairs[1].value_len, 6);
    cr_expect_eq(ta.pairs[2].key_len, 1);
    typed_args_free(&ta);
    char b1[] = "a=x";
    char *bad[] = {b1};
    cr_expect_eq(typed_args_parse_sig(&ta, 1, bad, &s, err, sizeof err), -1);
    cr_expect(strstr(err, "not an integer"), "%s", err);
    typed_args_free(&ta);
    char u1[] = "zz=1";
    char *unknown[] = {u1};
    cr_expect_eq(typed_args_parse_sig(&ta, 1, unknown, &s, err, sizeof err), -1);
    cr_expect(strstr(err, "unknown argument 'zz' (declared: Sum(a: Integer, "), "%s", err);
    typed_args_free(&ta);
    char *missing[] = {a2};
    cr_expect_eq(typed_args_parse_sig(&ta, 1, missing, &s, err, sizeof err), -1);
    cr_expect(strstr(err, "missing argument 'a'"), "%s", err);
    typed_args_free(&ta);
    /* explicit Twisted type names work too */
    char t1[] = "a:ListOf(Integer)=[3]";
    char *twisted[] = {t1};
    cr_assert_eq(typed_args_parse(&ta, 1, twisted, err, sizeof err), 0, "%s", err);
    cr_expect_eq(ta.pairs[0].value_len, 3);
    typed_args_free(&ta);
    signature_free(&s);
}
