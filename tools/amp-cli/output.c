/* Output for people vs machines (see output.h). */
#include "output.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json_text.h"
#include "term_text.h"
#include "typed_json.h"

output_mode output_pick(int json_flag)
{
    return json_flag || !isatty(STDOUT_FILENO) ? OUTPUT_JSON : OUTPUT_TEXT;
}

static int reserved(const amp_pair *p)
{
    return p->key_len > 0 && p->key[0] == '_';
}

void output_answer(FILE *out, output_mode mode, const amp_box *box, const signature *sig)
{
    const sig_field *fields = sig && sig->has_signature ? sig->response : NULL;
    size_t nfields = fields ? sig->nresponse : 0;
    amp_pair *keep = malloc((box->count + 1) * sizeof *keep);
    if (!keep)
        return;
    size_t k = 0;
    for (size_t i = 0; i < box->count; i++)
        if (!reserved(&box->pairs[i]))
            keep[k++] = box->pairs[i];
    amp_box shown = {keep, k, 0};
    if (mode == OUTPUT_JSON) {
        typed_json_write_box(out, &shown, fields, nfields);
        putc('\n', out);
    } else {
        for (size_t i = 0; i < k; i++) {
            term_write(out, keep[i].key, keep[i].key_len, TERM_LINE);
            fputs(" = ", out);
            typed_json_write_text(out,
                                  typed_json_field_type(fields, nfields, keep[i].key,
                                                        keep[i].key_len),
                                  keep[i].value, keep[i].value_len);
            putc('\n', out);
        }
    }
    free(keep);
    fflush(out);
}

void output_box_line(FILE *out, output_mode mode, const amp_box *box)
{
    if (mode == OUTPUT_JSON) {
        json_write_box(out, box);
    } else {
        const amp_pair *cmd = amp_box_find_str(box, "_command");
        if (cmd)
            typed_json_write_text(out, NULL, cmd->value, cmd->value_len);
        const char *sep = "  ";
        for (size_t i = 0; i < box->count; i++) {
            if (reserved(&box->pairs[i]))
                continue;
            fputs(sep, out);
            sep = " ";
            typed_json_write_text(out, NULL, box->pairs[i].key, box->pairs[i].key_len);
            putc('=', out);
            typed_json_write_text(out, NULL, box->pairs[i].value, box->pairs[i].value_len);
        }
    }
    putc('\n', out);
    fflush(out);
}

void out_table_init(out_table *t, size_t ncols)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
}

int out_table_add(out_table *t, const char *const *cells)
{
    const uint8_t *bytes[OUT_TABLE_MAX_COLS];
    size_t lens[OUT_TABLE_MAX_COLS];
    if (t->ncols > OUT_TABLE_MAX_COLS)
        return -1;
    for (size_t c = 0; c < t->ncols; c++) {
        bytes[c] = (const uint8_t *)(cells[c] ? cells[c] : "");
        lens[c] = strlen((const char *)bytes[c]);
    }
    return out_table_add_bytes(t, bytes, lens);
}

int out_table_add_bytes(out_table *t, const uint8_t *const *cells, const size_t *lens)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **v = realloc(t->cells, cap * t->ncols * sizeof *v);
        if (!v)
            return -1;
        t->cells = v;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t c = 0; c < t->ncols; c++)
        if (!(row[c] = term_dup(cells[c], lens[c], TERM_CELL))) {
            while (c--)
                free(row[c]);
            return -1;
        }
    t->nrows++;
    return 0;
}

void out_table_print(const out_table *t, FILE *out)
{
    size_t *w = calloc(t->ncols + 1, sizeof *w);
    if (!w)
        return;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t cw = term_width(t->cells[r * t->ncols + c]);
            if (cw > w[c])
                w[c] = cw;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            fputs(cell, out);
            if (c + 1 < t->ncols)
                fprintf(out, "%*s", (int)(w[c] - term_width(cell) + 2), "");
        }
        putc('\n', out);
    }
    free(w);
    fflush(out);
}

void out_table_free(out_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}
