/* amp-cli shell: a line split into words the way a POSIX shell splits a
 * simple command: blanks separate words; '...' keeps everything literally;
 * "..." keeps everything but lets a backslash escape '"' and '\'; outside
 * quotes a backslash takes the next character literally. No expansion of
 * any kind ($, ~, globs): the words go to the bus as typed. */
#ifndef AMP_CLI_SHELL_WORDS_H
#define AMP_CLI_SHELL_WORDS_H

#include <stddef.h>

/* Caps on what one line may hold (a line comes from a person or a script,
 * but a pasted or piped line can be anything). */
#define SHELL_LINE_MAX 65536
#define SHELL_WORDS_MAX 1024

typedef struct shell_words {
    char **argv;  /* count words, then NULL; each in `store` */
    int count;
    char *store;  /* the words' bytes, each NUL-terminated */
    /* For completion (a partial line): the cursor is inside the last word
     * (the line does not end with an unquoted blank), and that word's
     * offset in the line. */
    int last_open;
    size_t last_start;
} shell_words;

/* Split `line` (n bytes). With `partial`, an unterminated quote or a
 * trailing backslash is accepted (the line is being typed). Returns 0, or
 * -1 with a message in err (unterminated quote, too long, too many words). */
int shell_words_split(const char *line, size_t n, int partial, shell_words *out, char *err,
                      size_t err_len);
void shell_words_free(shell_words *w);

#endif
