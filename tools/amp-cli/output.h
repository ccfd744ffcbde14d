/* Output for people vs machines. JSON lines when stdout is not a terminal or
 * with --json; readable text when it is a tty. Errors never go through here:
 * they go to stderr with the exit statuses of cli.h.
 *
 * Everything writes to the FILE given and keeps no state beyond the structs
 * the caller owns. */
#ifndef AMP_CLI_OUTPUT_H
#define AMP_CLI_OUTPUT_H

#include <stdio.h>

#include "amp/amp.h"
#include "signature.h"

typedef enum output_mode { OUTPUT_JSON, OUTPUT_TEXT } output_mode;

/* OUTPUT_JSON when json_flag is set or stdout is not a terminal. */
output_mode output_pick(int json_flag);

/* An answer box without _answer (and other '_' keys): as one typed JSON
 * line (with a signature, by its response types), or readable as one
 * "key = value" line per key (nothing for an empty answer), keys and values
 * escaped for a terminal (term_text.h). sig may be NULL. */
void output_answer(FILE *out, output_mode mode, const amp_box *box, const signature *sig);

/* A call or event box (with its _command) on one line: JSON mode, the box as
 * json_text.h writes it; text mode "NAME  key=value key=value", '_' keys
 * left out, name, keys and values as typed_json_write_text shows them
 * (escaped for a terminal). */
void output_box_line(FILE *out, output_mode mode, const amp_box *box);

/* A table of text cells printed with aligned columns (two spaces between
 * columns, the last one not padded). Cells are kept escaped for a terminal
 * (term_text.h, TERM_CELL: controls, bytes that are not UTF-8 and code
 * points of unknown width as visible escapes); widths are the escaped
 * text's display columns (a CJK character takes 2, a combining mark 0). */
enum { OUT_TABLE_MAX_COLS = 16 };
typedef struct out_table {
    size_t ncols, nrows, cap;
    char **cells; /* nrows * ncols, owned */
} out_table;

void out_table_init(out_table *t, size_t ncols);
/* Append a row of ncols cells (copied; NULL is an empty cell). 0, or -1 out
 * of memory. */
int out_table_add(out_table *t, const char *const *cells);
/* The same with cells as byte strings (any bytes, NUL included). */
int out_table_add_bytes(out_table *t, const uint8_t *const *cells, const size_t *lens);
void out_table_print(const out_table *t, FILE *out);
void out_table_free(out_table *t);

#endif
