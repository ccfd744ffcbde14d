/* The signature notation and type strings: parse, print, round trips, the
 * limits, and the wire form (amp.Register arguments, amp.Commands items). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signature.h"

static char *reprint(const char *text)
{
    signature s;
    char err[256];
    cr_assert_eq(signature_parse(text, &s, err, sizeof err), 0, "%s: %s", text, err);
    char *out = signature_format(&s);
    signature_free(&s);
    return out;
}

static void refused(const char *text, const char *why)
{
    signature s;
    char err[256] = "";
    cr_assert_eq(signature_parse(text, &s, err, sizeof err), -1, "accepted: %s", text);
    cr_assert(strstr(err, why), "%s: '%s' does not say '%s'", text, err, why);
    cr_assert_null(s.command); /* nothing left to free */
}

Test(notation, prints_the_canonical_form)
{
    static const char *const same[][2] = {
        {"Sum(a: Integer, b: Integer?) -> (total: Integer) ! ZERO_DIVISION, OVERFLOW",
         "Sum(a: Integer, b: Integer?) -> (total: Integer) ! ZERO_DIVISION, OVERFLOW"},
        {"Sum(a:Integer,b:Integer?)->(total:Integer)!ZERO_DIVISION,OVERFLOW",
         "Sum(a: Integer, b: Integer?) -> (total: Integer) ! ZERO_DIVISION, OVERFLOW"},
        {"  Sum ( a : Integer ,\tb : Integer ? ) -> ( total : Integer )  ",
         "Sum(a: Integer, b: Integer?) -> (total: Integer)"},
        {"Sum", "Sum"},
        {"Ping()", "Ping()"},
        {"Ping -> (ok: Boolean)", "Ping() -> (ok: Boolean)"},
        {"Ping ! DOWN", "Ping() ! DOWN"},
        {"chat.room-1(x: ListOf( ListOf(Unicode) ))", "chat.room-1(x: ListOf(ListOf(Unicode)))"},
        {"Q(rows: AmpList(a:Integer,b:ListOf(Unicode)))",
         "Q(rows: AmpList(a: Integer, b: ListOf(Unicode)))"},
        {"All(a: Integer, b: String, c: Unicode, d: Path, e: Float, f: Boolean, g: Decimal, "
         "h: DateTime, i: Descriptor, j: Structured)",
         "All(a: Integer, b: String, c: Unicode, d: Path, e: Float, f: Boolean, g: Decimal, "
         "h: DateTime, i: Descriptor, j: Structured)"},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        char *out = reprint(same[i][0]);
        cr_expect_str_eq(out, same[i][1]);
        char *again = reprint(out); /* the printed form parses to itself */
        cr_expect_str_eq(again, out);
        free(out);
        free(again);
    }
}

Test(notation, parts_and_lookups)
{
    signature s;
    char err[256];
    cr_assert_eq(signature_parse("Sum(a: Integer, b: Integer?) -> (total: Integer) ! E1", &s,
                                 err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(s.command, "Sum");
    cr_expect(s.has_signature);
    cr_expect_eq(s.nargs, 2);
    cr_expect_eq(s.args[1].optional, 1);
    cr_expect_eq(s.args[0].optional, 0);
    cr_expect_eq(signature_find_arg(&s, "b", 1), &s.args[1]);
    cr_expect_null(signature_find_arg(&s, "total", 5));
    cr_expect_eq(signature_find_response(&s, "total", 5)->type->kind, SIG_INTEGER);
    cr_expect_str_eq(s.errors[0], "E1");
    char *tail = signature_format_tail(&s);
    cr_expect_str_eq(tail, "(a: Integer, b: Integer?) -> (total: Integer) ! E1");
    free(tail);
    signature_free(&s);
    cr_assert_eq(signature_parse("Sum", &s, err, sizeof err), 0);
    cr_expect_eq(s.has_signature, 0);
    tail = signature_format_tail(&s);
    cr_expect_str_eq(tail, "");
    free(tail);
    signature_free(&s);
}

Test(notation, bad_ones_are_refused_with_a_reason)
{
    refused("", "expected a command name");
    refused("Sum(a Integer)", "expected ':'");
    refused("Sum(a: Int)", "unknown type 'Int'");
    refused("Sum(a: Integer", "expected ',' or ')'");
    refused("Sum(a: Integer, a: Float)", "declared twice");
    refused("Sum(_a: Integer)", "bad argument name");
    refused("Sum(a: ListOf Integer)", "expected '('");
    refused("Sum(a: ListOf(Integer x))", "to close ListOf");
    refused("Sum() -> (t: Integer?)", "cannot be optional");
    refused("Sum() ! lower", "bad error code");
    refused("Sum() ! A, A", "declared twice");
    refused("Sum() ->", "expected '(' after '->'");
    refused("Sum() x", "unexpected 'x'");
    refused("Sum(a: AmpList(x: Integer, x: Float))", "declared twice");
    refused("Sum(a: AmpList())", "at least one field");
    refused("S(a: ListOf(ListOf(ListOf(ListOf(ListOf(Integer))))))", "nested deeper than 4");
}

Test(notation, limits)
{
    /* 64 arguments pass, 65 do not */
    char text[4096] = "Many(";
    for (int i = 0; i < 65; i++)
        sprintf(text + strlen(text), "%sa%d: Integer", i ? ", " : "", i);
    strcat(text, ")");
    refused(text, "more than 64 arguments");
    *strrchr(text, ',') = 0;
    strcat(text, ")");
    free(reprint(text));
    /* 32 error codes pass, 33 do not */
    strcpy(text, "E()");
    for (int i = 0; i < 33; i++)
        sprintf(text + strlen(text), "%sE%d", i ? ", " : " ! ", i);
    refused(text, "more than 32 error codes");
    /* a 65-byte name */
    char name[80];
    memset(name, 'n', 65);
    name[65] = 0;
    sprintf(text, "S(%s: Integer)", name);
    refused(text, "bad argument name");
    name[64] = 0;
    sprintf(text, "S(%s: Integer)", name);
    free(reprint(text));
    /* a type string over 256 bytes */
    strcpy(text, "S(a: AmpList(");
    for (int i = 0; i < 20; i++)
        sprintf(text + strlen(text), "%sfield%02d: Integer", i ? ", " : "", i);
    strcat(text, "))");
    refused(text, "a type over 256 bytes");
}

Test(types, parse_and_print)
{
    sig_type *t;
    char err[256];
    cr_assert_eq(sig_type_parse("AmpList(a:Integer,b: ListOf( Unicode ))", 39, &t, err,
                                sizeof err), 0, "%s", err);
    char *s = sig_type_string(t);
    cr_expect_str_eq(s, "AmpList(a: Integer, b: ListOf(Unicode))");
    free(s);
    sig_type_free(t);
    cr_expect_eq(sig_type_parse("Integer x", 9, &t, err, sizeof err), -1);
    cr_expect_eq(sig_type_parse("", 0, &t, err, sizeof err), -1);
    cr_expect_str_eq(sig_kind_name(SIG_DATETIME), "DateTime");
    cr_expect(sig_name_ok("a.b-c_9", 7));
    cr_expect(!sig_name_ok("a b", 3));
    cr_expect(!sig_name_ok("", 0));
    cr_expect(sig_error_code_ok("ZERO_DIVISION2", 14));
    cr_expect(!sig_error_code_ok("Zero", 4));
}

/* The fields of each element of an AmpList value, as "k=v;k=v|" text. */
static int collect(const amp_box *elem, void *ud)
{
    amp_buf *b = ud;
    for (size_t i = 0; i < elem->count; i++) {
        amp_buf_append(b, elem->pairs[i].key, elem->pairs[i].key_len);
        amp_buf_append(b, (const uint8_t *)"=", 1);
        amp_buf_append(b, elem->pairs[i].value, elem->pairs[i].value_len);
        amp_buf_append(b, (const uint8_t *)";", 1);
    }
    amp_buf_append(b, (const uint8_t *)"|", 1);
    return 0;
}

static char *fields_text(const amp_pair *p)
{
    amp_buf b;
    amp_buf_init(&b);
    char err[128];
    cr_assert_eq(amplist_foreach(p->value, p->value_len, collect, &b, err, sizeof err), 0);
    char *s = strndup(b.data ? (char *)b.data : "", b.len);
    amp_buf_free(&b);
    return s;
}

Test(wire, register_arguments_and_back)
{
    signature s, back;
    char err[256];
    cr_assert_eq(signature_parse("Sum(a: Integer, b: ListOf(Float)?) -> (total: Integer) ! "
                                 "OVERFLOW, ZERO", &s, err, sizeof err), 0);
    sig_wire w;
    cr_assert_eq(signature_to_wire(&s, &w, err, sizeof err), 0, "%s", err);
    cr_assert_eq(w.count, 3);
    cr_expect_eq(memcmp(w.pairs[0].key, "arguments", 9), 0);
    char *args = fields_text(&w.pairs[0]);
    cr_expect_str_eq(args, "name=a;type=Integer;|name=b;type=ListOf(Float);optional=True;|");
    char *resp = fields_text(&w.pairs[1]);
    cr_expect_str_eq(resp, "name=total;type=Integer;|");
    free(args);
    free(resp);
    static const uint8_t errors[] = "\0\x08OVERFLOW\0\x04ZERO";
    cr_expect_eq(w.pairs[2].value_len, sizeof errors - 1);
    cr_expect_eq(memcmp(w.pairs[2].value, errors, sizeof errors - 1), 0);

    /* an amp.Commands item carrying them reads back as the same signature */
    amp_pair item[6] = {{(const uint8_t *)"command", 7, (const uint8_t *)"Sum", 3},
                        {(const uint8_t *)"policy", 6, (const uint8_t *)"roundrobin", 10},
                        {(const uint8_t *)"providers", 9, (const uint8_t *)"1", 1},
                        w.pairs[0], w.pairs[1], w.pairs[2]};
    amp_box box = {item, 6, 0};
    cr_assert_eq(signature_from_item(&box, &back, err, sizeof err), 0, "%s", err);
    char *a = signature_format(&s), *b = signature_format(&back);
    cr_expect_str_eq(a, b);
    free(a);
    free(b);
    signature_free(&back);
    sig_wire_free(&w);
    signature_free(&s);

    /* no signature: nothing to send, nothing read */
    cr_assert_eq(signature_parse("Ping", &s, err, sizeof err), 0);
    cr_assert_eq(signature_to_wire(&s, &w, err, sizeof err), 0);
    cr_expect_eq(w.count, 0);
    sig_wire_free(&w);
    signature_free(&s);
    box.count = 3;
    cr_assert_eq(signature_from_item(&box, &back, err, sizeof err), 0);
    cr_expect_eq(back.has_signature, 0);
    cr_expect_str_eq(back.command, "Sum");
    signature_free(&back);
}

Test(wire, malformed_items_are_refused)
{
    signature s;
    char err[256];
    amp_buf v;
    amp_buf_init(&v);
    amp_encode_pair_str(&v, "name", "a");
    amp_encode_pair_str(&v, "type", "Bogus");
    amp_encode_end(&v);
    amp_pair item[2] = {{(const uint8_t *)"command", 7, (const uint8_t *)"X", 1},
                        {(const uint8_t *)"arguments", 9, v.data, v.len}};
    amp_box box = {item, 2, 0};
    cr_expect_eq(signature_from_item(&box, &s, err, sizeof err), -1);
    cr_expect(strstr(err, "unknown type 'Bogus'"), "%s", err);
    item[1].value_len = v.len - 1; /* truncated */
    cr_expect_eq(signature_from_item(&box, &s, err, sizeof err), -1);
    cr_expect(strstr(err, "malformed AmpList"), "%s", err);
    amp_buf_free(&v);
    item[1] = (amp_pair){(const uint8_t *)"errors", 6, (const uint8_t *)"\0\x03low", 5};
    cr_expect_eq(signature_from_item(&box, &s, err, sizeof err), -1);
    cr_expect(strstr(err, "bad error code"), "%s", err);
}
