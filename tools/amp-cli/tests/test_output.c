/* Readable output: answers as key = value lines, boxes on one line, tables. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

static char *text;
static size_t len;

static FILE *mem(void)
{
    free(text);
    text = NULL;
    return open_memstream(&text, &len);
}

Test(output, answers)
{
    signature s;
    char err[128];
    cr_assert_eq(signature_parse("S() -> (total: Integer)", &s, err, sizeof err), 0);
    amp_pair p[3] = {{(const uint8_t *)"_answer", 7, (const uint8_t *)"1", 1},
                     {(const uint8_t *)"total", 5, (const uint8_t *)"3", 1},
                     {(const uint8_t *)"who", 3, (const uint8_t *)"me", 2}};
    amp_box box = {p, 3, 0};
    FILE *m = mem();
    output_answer(m, OUTPUT_TEXT, &box, &s);
    fclose(m);
    cr_expect_str_eq(text, "total = 3\nwho = me\n");
    m = mem();
    output_answer(m, OUTPUT_JSON, &box, &s);
    fclose(m);
    cr_expect_str_eq(text, "{\"total\":3,\"who\":\"me\"}\n");
    m = mem();
    output_answer(m, OUTPUT_JSON, &box, NULL);
    fclose(m);
    cr_expect_str_eq(text, "{\"total\":\"3\",\"who\":\"me\"}\n");
    signature_free(&s);
    free(text);
    text = NULL;
}

Test(output, box_lines)
{
    amp_pair p[3] = {{(const uint8_t *)"_command", 8, (const uint8_t *)"chat.room", 9},
                     {(const uint8_t *)"text", 4, (const uint8_t *)"hi there", 8},
                     {(const uint8_t *)"n", 1, (const uint8_t *)"2", 1}};
    amp_box box = {p, 3, 0};
    FILE *m = mem();
    output_box_line(m, OUTPUT_TEXT, &box);
    fclose(m);
    cr_expect_str_eq(text, "chat.room  text=hi there n=2\n");
    m = mem();
    output_box_line(m, OUTPUT_JSON, &box);
    fclose(m);
    cr_expect_str_eq(text, "{\"_command\":\"chat.room\",\"text\":\"hi there\",\"n\":\"2\"}\n");
    free(text);
    text = NULL;
}

Test(output, tables_align_by_characters)
{
    out_table t;
    out_table_init(&t, 3);
    const char *r1[] = {"command", "policy", "signature"};
    const char *r2[] = {"S\xc3\xa9", NULL, "x"};
    const char *r3[] = {"Longer", "first", "y"};
    cr_assert_eq(out_table_add(&t, r1), 0);
    cr_assert_eq(out_table_add(&t, r2), 0);
    cr_assert_eq(out_table_add(&t, r3), 0);
    FILE *m = mem();
    out_table_print(&t, m);
    fclose(m);
    cr_expect_str_eq(text, "command  policy  signature\n"
                           "S\xc3\xa9       "  "        x\n"
                           "Longer   first   y\n");
    out_table_free(&t);
    free(text);
    text = NULL;
}
