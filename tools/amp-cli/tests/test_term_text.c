/* Peer bytes made safe for a terminal: what is escaped, what passes, widths. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "json_text.h"
#include "output.h"
#include "term_text.h"

static char *esc(const char *s, size_t n, unsigned flags)
{
    char *e = term_dup((const uint8_t *)s, n, flags);
    cr_assert_not_null(e);
    return e;
}

#define EXPECT_ESC(in, flags, want)                                                            \
    do {                                                                                       \
        char *e_ = esc(in, sizeof in - 1, flags);                                              \
        cr_expect_str_eq(e_, want, "escaping %s", #in);                                        \
        free(e_);                                                                              \
    } while (0)

Test(term_text, c0_del_and_common_controls)
{
    EXPECT_ESC("a\x1b[2Jb", TERM_LINE, "a\\x1b[2Jb");
    EXPECT_ESC("\x07\n\r\t\x7f", TERM_LINE, "\\x07\\n\\r\\t\\x7f");
    EXPECT_ESC("nul\0x", TERM_LINE, "nul\\x00x");
}

Test(term_text, c1_as_bytes_and_as_utf8)
{
    /* lone 0x9b is CSI on an 8-bit terminal; U+009B the same in UTF-8 */
    EXPECT_ESC("\x9b" "31m", TERM_LINE, "\\x9b31m");
    EXPECT_ESC("\xc2\x9b" "31m", TERM_LINE, "\\u009b31m");
    EXPECT_ESC("\xc2\x80\xc2\x9f", TERM_LINE, "\\u0080\\u009f");
}

Test(term_text, invalid_utf8_byte_by_byte)
{
    EXPECT_ESC("ok\xff\xfe", TERM_LINE, "ok\\xff\\xfe");
    EXPECT_ESC("\xe2\x82", TERM_LINE, "\\xe2\\x82");         /* cut short */
    EXPECT_ESC("\xc0\xaf", TERM_LINE, "\\xc0\\xaf");         /* overlong '/' */
    EXPECT_ESC("\xed\xa0\x80", TERM_LINE, "\\xed\\xa0\\x80"); /* a surrogate */
}

Test(term_text, reordering_code_points)
{
    EXPECT_ESC("a\xe2\x80\xae" "b", TERM_LINE, "a\\u202eb"); /* RIGHT-TO-LEFT OVERRIDE */
    EXPECT_ESC("\xe2\x80\xa8", TERM_LINE, "\\u2028");        /* LINE SEPARATOR */
}

Test(term_text, printable_utf8_passes)
{
    EXPECT_ESC("S\xc3\xa9 \xe4\xb8\x80 \xf0\x9f\x98\x80 back\\slash", TERM_LINE,
               "S\xc3\xa9 \xe4\xb8\x80 \xf0\x9f\x98\x80 back\\slash");
    cr_expect(term_is_plain((const uint8_t *)"chat.room", 9, TERM_CELL));
    cr_expect(!term_is_plain((const uint8_t *)"a\tb", 3, TERM_LINE));
}

Test(term_text, cells_escape_unknown_widths)
{
    /* U+0378 is unassigned: a terminal may draw it 0, 1 or 2 wide */
    EXPECT_ESC("x\xcd\xb8", TERM_CELL, "x\\u0378");
    EXPECT_ESC("x\xcd\xb8", TERM_LINE, "x\xcd\xb8");
    EXPECT_ESC("\xf4\x8f\xbf\xbf", TERM_CELL, "\\U0010ffff"); /* a noncharacter */
}

Test(term_text, escaping_twice_changes_nothing)
{
    char *once = esc("\x1b]0;t\x07\xff\xc2\x9b", 8, TERM_CELL);
    char *twice = esc(once, strlen(once), TERM_CELL);
    cr_expect_str_eq(once, twice);
    free(once);
    free(twice);
}

Test(term_text, widths)
{
    cr_expect_eq(term_width("abc"), 3);
    cr_expect_eq(term_width("\xe4\xb8\x80\xe4\xb8\x80"), 4);   /* CJK: 2 each */
    cr_expect_eq(term_width("e\xcc\x81"), 1);                  /* combining acute */
    cr_expect_eq(term_width("\\x1b"), 4);
}

Test(term_text, printf_escapes_the_whole_message)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    term_printf(m, "amp-cli x: %s\n", "bad\x1b[31m");
    fclose(m);
    cr_expect_str_eq(text, "amp-cli x: bad\\x1b[31m\n");
    free(text);
}

Test(term_text, error_lines)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    amp_pair code = {(const uint8_t *)"_error_code", 11, (const uint8_t *)"OOPS\x1b[2J", 8};
    amp_pair desc = {(const uint8_t *)"_error_description", 18,
                     (const uint8_t *)"line\nfake\0z", 11};
    term_error_line(m, "amp-cli call: ", &code, &desc);
    fclose(m);
    cr_expect_str_eq(text, "amp-cli call: OOPS\\x1b[2J: line\\nfake\\x00z\n");
    free(text);
}

Test(term_text, tables_escape_and_align_by_display_width)
{
    out_table t;
    out_table_init(&t, 2);
    const uint8_t *r1[] = {(const uint8_t *)"NAME", (const uint8_t *)"X"};
    const uint8_t *r2[] = {(const uint8_t *)"E\x1b[2J", (const uint8_t *)"1"};
    const uint8_t *r3[] = {(const uint8_t *)"\xe4\xb8\x80", (const uint8_t *)"2"};
    size_t l1[] = {4, 1}, l2[] = {5, 1}, l3[] = {3, 1};
    cr_assert_eq(out_table_add_bytes(&t, r1, l1), 0);
    cr_assert_eq(out_table_add_bytes(&t, r2, l2), 0);
    cr_assert_eq(out_table_add_bytes(&t, r3, l3), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    out_table_print(&t, m);
    fclose(m);
    cr_expect_str_eq(text, "NAME      X\n"
                           "E\\x1b[2J  1\n"
                           "\xe4\xb8\x80        2\n"); /* U+4E00: 2 columns */
    out_table_free(&t);
    free(text);
}

/* JSON output is escaped for JSON (json_text.h), not by term_text: C1 as
 * \u0080.., C0 as \u00NN; U+2028/U+2029 are valid JSON as they are. */
Test(term_text, json_output_escapes_c1_too)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    json_write_bytes(m, (const uint8_t *)"\x1b\xc2\x9b\xe2\x80\xa8\xff", 7);
    fclose(m);
    cr_expect_str_eq(text, "\"\\u001b\\u009b\xe2\x80\xa8\\udcff\"");
    free(text);
}
