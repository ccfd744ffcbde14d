/* Internal to the signature parser (sig_type.c, signature.c): a cursor over
 * the text and the helpers both parts use. */
#ifndef AMP_CLI_SIG_PARSE_H
#define AMP_CLI_SIG_PARSE_H

#include "signature.h"

typedef struct sig_cursor {
    const char *s;
    size_t n, i;
    char *err;
    size_t err_len;
    int failed; /* the first message is kept */
} sig_cursor;

int sig_fail(sig_cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sig_skip_ws(sig_cursor *c);
/* Skip whitespace; eat `ch` if it is next (1), else 0. */
int sig_eat(sig_cursor *c, char ch);
/* Skip whitespace; the run of name characters [A-Za-z0-9_.-] that follows. */
size_t sig_word(sig_cursor *c, const char **start);
/* A type at the cursor, inside `depth` containers; NULL after sig_fail. */
sig_type *sig_parse_type_at(sig_cursor *c, int depth);
int sig_check_type_len(sig_cursor *c, const sig_type *t);
/* Append a field named name[0..len) (checked: valid, unique, at most max). */
int sig_add_field(sig_cursor *c, sig_field **fields, size_t *n, size_t max, const char *what,
                  const char *name, size_t name_len);
void sig_fields_free(sig_field *f, size_t n);

#endif
