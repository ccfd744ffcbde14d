/* amp-cli shell: splitting a line into words (quotes and backslashes). */
#include "shell_words.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int fail(char *err, size_t len, const char *why)
{
    snprintf(err, len, "%s", why);
    return -1;
}

int shell_words_split(const char *line, size_t n, int partial, shell_words *out, char *err,
                      size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (n > SHELL_LINE_MAX)
        return fail(err, err_len, "line too long (at most 65536 bytes)");
    /* the words never need more bytes than the line, plus one NUL each */
    out->store = malloc(2 * n + 1);
    out->argv = malloc((SHELL_WORDS_MAX + 1) * sizeof *out->argv);
    if (!out->store || !out->argv) {
        shell_words_free(out);
        return fail(err, err_len, "out of memory");
    }
    char *w = out->store;
    size_t i = 0;
    for (;;) {
        while (i < n && is_blank(line[i]))
            i++;
        if (i == n)
            break;
        if (out->count == SHELL_WORDS_MAX) {
            shell_words_free(out);
            return fail(err, err_len, "too many words (at most 1024)");
        }
        out->argv[out->count++] = w;
        out->last_start = i;
        char quote = 0;
        while (i < n && (quote || !is_blank(line[i]))) {
            char c = line[i++];
            if (quote == '\'') {
                if (c == '\'')
                    quote = 0;
                else
                    *w++ = c;
            } else if (c == '\\' && (quote != '"' || (i < n && (line[i] == '"' ||
                                                                  line[i] == '\\')))) {
                if (i < n)
                    *w++ = line[i++];
                else if (!partial) {
                    shell_words_free(out);
                    return fail(err, err_len, "a backslash at the end of the line");
                }
            } else if (quote == '"') {
                if (c == '"')
                    quote = 0;
                else
                    *w++ = c;
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else {
                *w++ = c;
            }
        }
        *w++ = 0;
        if (quote && !partial) {
            shell_words_free(out);
            return fail(err, err_len, quote == '"' ? "unterminated \"" : "unterminated '");
        }
        out->last_open = i == n;
    }
    out->argv[out->count] = NULL;
    return 0;
}

void shell_words_free(shell_words *w)
{
    free(w->argv);
    free(w->store);
    memset(w, 0, sizeof *w);
}
