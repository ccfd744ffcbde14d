/* The shell's word splitting: quotes, backslashes, caps, partial lines. */
#include <criterion/criterion.h>
#include <string.h>

#include "shell_words.h"

static shell_words split(const char *line, int partial)
{
    shell_words w;
    char err[128];
    cr_assert_eq(shell_words_split(line, strlen(line), partial, &w, err, sizeof err), 0, "%s",
                 err);
    return w;
}

static void fails(const char *line, const char *why)
{
    shell_words w;
    char err[128];
    cr_assert_eq(shell_words_split(line, strlen(line), 0, &w, err, sizeof err), -1, "%s", line);
    cr_expect_str_eq(err, why);
}

Test(shell_words, blanks_separate_words)
{
    shell_words w = split("  Sum\ta=1   b=2 ", 0);
    cr_assert_eq(w.count, 3);
    cr_expect_str_eq(w.argv[0], "Sum");
    cr_expect_str_eq(w.argv[1], "a=1");
    cr_expect_str_eq(w.argv[2], "b=2");
    cr_expect_null(w.argv[3]);
    shell_words_free(&w);
    w = split("", 0);
    cr_expect_eq(w.count, 0);
    cr_expect_null(w.argv[0]);
    shell_words_free(&w);
}

Test(shell_words, quotes_and_backslashes)
{
    shell_words w = split("pub x 'a=one two' \"b=say \\\"hi\\\" \\\\ \\n\" c=it\\'s d='' e=$HOME", 0);
    cr_assert_eq(w.count, 7);
    cr_expect_str_eq(w.argv[2], "a=one two");
    /* in "...", a backslash escapes only '"' and '\' */
    cr_expect_str_eq(w.argv[3], "b=say \"hi\" \\ \\n");
    cr_expect_str_eq(w.argv[4], "c=it's");
    cr_expect_str_eq(w.argv[5], "d=");
    cr_expect_str_eq(w.argv[6], "e=$HOME"); /* no expansion */
    shell_words_free(&w);
    w = split("'' x", 0); /* an empty quoted word is a word */
    cr_assert_eq(w.count, 2);
    cr_expect_str_eq(w.argv[0], "");
    shell_words_free(&w);
}

Test(shell_words, malformed_lines)
{
    fails("Sum 'a=1", "unterminated '");
    fails("Sum \"a=1", "unterminated \"");
    fails("Sum a=1\\", "a backslash at the end of the line");
}

Test(shell_words, caps)
{
    static char line[SHELL_LINE_MAX + 2];
    memset(line, 'x', SHELL_LINE_MAX + 1);
    shell_words w;
    char err[128];
    cr_expect_eq(shell_words_split(line, SHELL_LINE_MAX + 1, 0, &w, err, sizeof err), -1);
    cr_expect_str_eq(err, "line too long (at most 65536 bytes)");
    /* 1025 one-letter words */
    for (int i = 0; i <= SHELL_WORDS_MAX; i++) {
        line[2 * i] = 'w';
        line[2 * i + 1] = ' ';
    }
    size_t n = 2 * (SHELL_WORDS_MAX + 1);
    cr_expect_eq(shell_words_split(line, n, 0, &w, err, sizeof err), -1);
    cr_expect_str_eq(err, "too many words (at most 1024)");
    cr_expect_eq(shell_words_split(line, n - 2, 0, &w, err, sizeof err), 0);
    cr_expect_eq(w.count, SHELL_WORDS_MAX);
    shell_words_free(&w);
}

Test(shell_words, partial_lines_for_completion)
{
    shell_words w = split("Sum ta", 1);
    cr_expect_eq(w.count, 2);
    cr_expect(w.last_open);
    cr_expect_eq(w.last_start, 4);
    shell_words_free(&w);
    w = split("Sum a=1 ", 1);
    cr_expect_eq(w.count, 2);
    cr_expect_not(w.last_open);
    shell_words_free(&w);
    w = split("pub x 'a=b c", 1); /* inside a quote: still the last word */
    cr_expect_eq(w.count, 3);
    cr_expect(w.last_open);
    cr_expect_str_eq(w.argv[2], "a=b c");
    shell_words_free(&w);
    w = split("x\\", 1);
    cr_expect_eq(w.count, 1);
    cr_expect_str_eq(w.argv[0], "x");
    shell_words_free(&w);
}
