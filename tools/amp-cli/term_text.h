/* Peer bytes made safe for a person's terminal.
 *
 * Everything amp-cli prints in readable form (stdout on a terminal, and every
 * stderr message that quotes bytes a peer chose: error codes and
 * descriptions, command and event names, keys, values, signatures) goes
 * through term_escape_next, so a peer cannot move the cursor, set the window
 * title, clear the screen or recolour the terminal. Shown as visible escapes:
 *   - C0 controls: \n, \r, \t, others \xNN (\x1b); DEL: \x7f
 *   - bytes that are not strict UTF-8 (lone 0x80..0xff included): \xNN
 *   - C1 controls written as UTF-8 (U+0080..U+009F): \u0080..\u009f
 *   - bidirectional overrides/isolates/marks (U+061C, U+200E, U+200F,
 *     U+202A..U+202E, U+2066..U+2069) and the line/paragraph separators
 *     U+2028, U+2029, which reorder or break what the reader sees: \uNNNN
 *   - in TERM_CELL mode (table cells, completion menus) also every code point
 *     the terminal may draw with an unknown width (wcwidth < 0): \uNNNN or
 *     \UNNNNNNNN, so columns stay aligned.
 * Printable UTF-8 (backslash included) passes unchanged, so the escaped text
 * is itself printable UTF-8 and escaping it again changes nothing.
 * JSON output does not come here: json_text.h escapes for JSON. */
#ifndef AMP_CLI_TERM_TEXT_H
#define AMP_CLI_TERM_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "amp/amp.h"

enum { TERM_LINE = 0, TERM_CELL = 1 };

/* The one escaping step: the code point (or invalid byte) at p[0..n), n > 0,
 * as text in out (NUL-terminated, at most 11 bytes); returns how many input
 * bytes it stands for (>= 1). */
size_t term_escape_next(const uint8_t *p, size_t n, unsigned flags, char out[12]);

/* Does p..n pass unchanged (nothing to escape)? 1 yes, 0 no. */
int term_is_plain(const uint8_t *p, size_t n, unsigned flags);
/* p..n escaped onto out. */
void term_write(FILE *out, const uint8_t *p, size_t n, unsigned flags);
/* p..n escaped in a new NUL-terminated string (free it), NULL out of memory. */
char *term_dup(const uint8_t *p, size_t n, unsigned flags);
/* A message formatted as printf does, escaped whole (a last '\n' kept as a
 * line end): for stderr lines that quote peer bytes or text built from them. */
void term_printf(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "PREFIX" "CODE: DESCRIPTION" and a newline, all escaped: how a peer's
 * error answer (its _error_code, _error_description) is told. */
void term_error_line(FILE *out, const char *prefix, const amp_pair *code, const amp_pair *desc);
/* Columns the escaped (printable UTF-8) text s takes on a terminal. */
size_t term_width(const char *s);

#endif
