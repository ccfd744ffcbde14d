/* Peer bytes made safe for a person's terminal (see term_text.h). */
#include "term_text.h"

#include <locale.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>


/* The strict UTF-8 sequence at p as a code point: its length, or 0 when p[0]
 * does not start one (as amp_utf8_check decides). */
static size_t decode(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t c = p[0];
    size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                                 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (len == 0 || len > n || amp_utf8_check(p, len) != AMP_OK)
        return 0;
    static const uint8_t lead_mask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t v = c & lead_mask[len];
    for (size_t i = 1; i < len; i++)
        v = v << 6 | (p[i] & 0x3F);
    *cp = v;
    return len;
}

/* The display width of cp by Unicode's tables, whatever the user's locale:
 * wcwidth under C.UTF-8 (glibc has it built in). The locale object is made
 * once and kept (process-wide, never changes). -2 when there is no such
 * locale: the caller then assumes 1 column. */
static int cp_width(uint32_t cp)
{
    static locale_t utf8;
    static int tried;
    if (!tried) {
        tried = 1;
        utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    }
    if (!utf8)
        return -2;
    locale_t old = uselocale(utf8);
    int w = wcwidth((wchar_t)cp);
    uselocale(old);
    return w;
}

/* Code points that reorder or break the line the reader sees. */
static int reorders(uint32_t cp)
{
    return cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x2028 && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

size_t term_escape_next(const uint8_t *p, size_t n, unsigned flags, char out[12])
{
    uint32_t cp;
    size_t len = decode(p, n, &cp);
    if (len == 0) {
        snprintf(out, 12, "\\x%02x", p[0]);
        return 1;
    }
    if (cp < 0x20 || cp == 0x7F) {
        if (cp == '\n' || cp == '\r' || cp == '\t')
            snprintf(out, 12, "\\%c", cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't');
        else
            snprintf(out, 12, "\\x%02x", (unsigned)cp);
        return 1;
    }
    int escape = (cp >= 0x80 && cp <= 0x9F) || reorders(cp) ||
                 ((flags & TERM_CELL) && cp >= 0x80 && cp_width(cp) == -1);
    if (escape)
        snprintf(out, 12, cp > 0xFFFF ? "\\U%08x" : "\\u%04x", (unsigned)cp);
    else {
        memcpy(out, p, len);
        out[len] = 0;
    }
    return len;
}

int term_is_plain(const uint8_t *p, size_t n, unsigned flags)
{
    char piece[12];
    for (size_t i = 0; i < n;) {
        size_t used = term_escape_next(p + i, n - i, flags, piece);
        if (strlen(piece) != used || memcmp(piece, p + i, used))
            return 0;
        i += used;
    }
    return 1;
}

/* In chunks: stderr is unbuffered, and a write per character would also
 * let other output cut into the line. */
void term_write(FILE *out, const uint8_t *p, size_t n, unsigned flags)
{
    char buf[4096], piece[12];
    size_t used = 0;
    for (size_t i = 0; i < n;) {
        i += term_escape_next(p + i, n - i, flags, piece);
        size_t len = strlen(piece);
        if (used + len > sizeof buf) {
            fwrite(buf, 1, used, out);
            used = 0;
        }
        memcpy(buf + used, piece, len);
        used += len;
    }
    fwrite(buf, 1, used, out);
}

char *term_dup(const uint8_t *p, size_t n, unsigned flags)
{
    char *s = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&s, &len);
    if (!m)
        return NULL;
    term_write(m, p, n, flags);
    if (fclose(m)) {
        free(s);
        return NULL;
    }
    return s;
}

void term_printf(FILE *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n;
    int eol = len && msg[len - 1] == '\n';
    char *safe = term_dup((const uint8_t *)msg, len - eol, TERM_LINE);
    if (safe) /* one write for the whole line */
        fprintf(out, "%s%s", safe, eol ? "\n" : "");
    free(safe);
    free(msg);
}

size_t term_width(const char *s)
{
    size_t w = 0, n = strlen(s);
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = decode(p + i, n - i, &cp);
        if (len == 0) { /* not escaped text: count the byte */
            w++;
            i++;
            continue;
        }
        int cw = cp < 0x80 ? 1 : cp_width(cp);
        w += cw < 0 ? 1 : (size_t)cw;
        i += len;
    }
    return w;
}

void term_error_line(FILE *out, const char *prefix, const amp_pair *code, const amp_pair *desc)
{
    char *c = code ? term_dup(code->value, code->value_len, TERM_LINE) : NULL;
    char *d = desc ? term_dup(desc->value, desc->value_len, TERM_LINE) : NULL;
    term_printf(out, "%s%s: %s\n", prefix, c ? c : "", d ? d : "");
    free(c);
    free(d);
}
