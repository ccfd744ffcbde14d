#include "json_text.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (strict, as amp_utf8_check), or 0. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                                 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    return amp_utf8_check(p, len) == AMP_OK ? len : 0;
}

void json_write_bytes(FILE *out, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    putc('"', out);
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t len = utf8_len(p + i, n - i);
        if (len == 0) {
            fprintf(out, "\\udc%c%c", hex[c >> 4], hex[c & 15]);
            i++;
            continue;
        }
        if (len == 2 && c == 0xC2 && p[i + 1] < 0xA0) {
            /* a C1 control (U+0080..U+009F): valid raw in JSON, but a
             * terminal showing --json output may act on it */
            fprintf(out, "\\u00%c%c", hex[p[i + 1] >> 4], hex[p[i + 1] & 15]);
            i += len;
            continue;
        }
        if (len > 1) {
            fwrite(p + i, 1, len, out);
            i += len;
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(out, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
            else
                putc(c, out);
        }
        i++;
    }
    putc('"', out);
}

void json_write_box(FILE *out, const amp_box *box)
{
    putc('{', out);
    for (size_t i = 0; i < box->count; i++) {
        if (i)
            putc(',', out);
        json_write_bytes(out, box->pairs[i].key, box->pairs[i].key_len);
        putc(':', out);
        json_write_bytes(out, box->pairs[i].value, box->pairs[i].value_len);
    }
    putc('}', out);
}

void json_box_free(json_box *b)
{
    free(b->pairs);
    free(b->store);
    memset(b, 0, sizeof *b);
}

struct parser {
    const char *s;
    size_t n, i;
    const char *why;
    json_box *box;
};

static int fail(struct parser *ps, const char *why)
{
    if (!ps->why)
        ps->why = why;
    return -1;
}

static void skip_ws(struct parser *ps)
{
    while (ps->i < ps->n && (ps->s[ps->i] == ' ' || ps->s[ps->i] == '\t' ||
                             ps->s[ps->i] == '\r' || ps->s[ps->i] == '\n'))
        ps->i++;
}

static int store_byte(struct parser *ps, uint8_t c)
{
    json_box *b = ps->box;
    if (b->store_len == b->store_cap) {
        size_t cap = b->store_cap ? b->store_cap * 2 : 256;
        uint8_t *p = realloc(b->store, cap);
        if (!p)
            return fail(ps, "out of memory");
        b->store = p;
        b->store_cap = cap;
    }
    b->store[b->store_len++] = c;
    return 0;
}

static int store_cp(struct parser *ps, uint32_t cp)
{
    if (cp < 0x80)
        return store_byte(ps, (uint8_t)cp);
    if (cp < 0x800)
        return store_byte(ps, (uint8_t)(0xC0 | cp >> 6)) | store_byte(ps, (uint8_t)(0x80 | (cp & 0x3F)));
    if (cp < 0x10000)
        return store_byte(ps, (uint8_t)(0xE0 | cp >> 12)) |
               store_byte(ps, (uint8_t)(0x80 | ((cp >> 6) & 0x3F))) |
               store_byte(ps, (uint8_t)(0x80 | (cp & 0x3F)));
    return store_byte(ps, (uint8_t)(0xF0 | cp >> 18)) |
           store_byte(ps, (uint8_t)(0x80 | ((cp >> 12) & 0x3F))) |
           store_byte(ps, (uint8_t)(0x80 | ((cp >> 6) & 0x3F))) |
           store_byte(ps, (uint8_t)(0x80 | (cp & 0x3F)));
}

static int hex4(struct parser *ps, uint32_t *out)
{
    if (ps->n - ps->i < 4)
        return fail(ps, "truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        char c = ps->s[ps->i++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return fail(ps, "bad hex digit in \\u escape");
    }
    *out = v;
    return 0;
}

/* Parse a string literal; its bytes are appended to the store. */
static int string(struct parser *ps, size_t *start, size_t *len)
{
    if (ps->i >= ps->n || ps->s[ps->i] != '"')
        return fail(ps, "expected a string");
    ps->i++;
    *start = ps->box->store_len;
    for (;;) {
        if (ps->i >= ps->n)
            return fail(ps, "unterminated string");
        uint8_t c = (uint8_t)ps->s[ps->i];
        if (c == '"') {
            ps->i++;
            break;
        }
        if (c < 0x20)
            return fail(ps, "control character in string");
        if (c != '\\') {
            size_t l = utf8_len((const uint8_t *)ps->s + ps->i, ps->n - ps->i);
            if (l == 0)
                return fail(ps, "invalid UTF-8 in the JSON text");
            for (size_t k = 0; k < l; k++)
                if (store_byte(ps, (uint8_t)ps->s[ps->i + k]))
                    return -1;
            ps->i += l;
            continue;
        }
        ps->i++;
        if (ps->i >= ps->n)
            return fail(ps, "unterminated escape");
        char e = ps->s[ps->i++];
        int r = 0;
        switch (e) {
        case '"': r = store_byte(ps, '"'); break;
        case '\\': r = store_byte(ps, '\\'); break;
        case '/': r = store_byte(ps, '/'); break;
        case 'b': r = store_byte(ps, '\b'); break;
        case 'f': r = store_byte(ps, '\f'); break;
        case 'n': r = store_byte(ps, '\n'); break;
        case 'r': r = store_byte(ps, '\r'); break;
        case 't': r = store_byte(ps, '\t'); break;
        case 'u': {
            uint32_t cp;
            if (hex4(ps, &cp))
                return -1;
            if (cp >= 0xDC80 && cp <= 0xDCFF) { /* an escaped raw byte */
                r = store_byte(ps, (uint8_t)(cp - 0xDC00));
            } else if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (ps->n - ps->i < 2 || ps->s[ps->i] != '\\' || ps->s[ps->i + 1] != 'u')
                    return fail(ps, "lone high surrogate");
                ps->i += 2;
                if (hex4(ps, &lo))
                    return -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail(ps, "high surrogate without a low one");
                r = store_cp(ps, 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00));
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return fail(ps, "lone low surrogate outside \\udc80-\\udcff");
            } else {
                r = store_cp(ps, cp);
            }
            break;
        }
        default:
            return fail(ps, "unknown escape");
        }
        if (r)
            return -1;
    }
    *len = ps->box->store_len - *start;
    return 0;
}

static int add_pair(struct parser *ps, size_t ks, size_t kl, size_t vs, size_t vl)
{
    json_box *b = ps->box;
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        amp_pair *p = realloc(b->pairs, cap * sizeof *p);
        if (!p)
            return fail(ps, "out of memory");
        b->pairs = p;
        b->cap = cap;
    }
    /* offsets for now: the store may still move */
    b->pairs[b->count].key = (const uint8_t *)(uintptr_t)ks;
    b->pairs[b->count].key_len = kl;
    b->pairs[b->count].value = (const uint8_t *)(uintptr_t)vs;
    b->pairs[b->count].value_len = vl;
    b->count++;
    return 0;
}

int json_parse_box(const char *line, size_t n, json_box *out, const char **why, size_t *col)
{
    out->count = 0;
    out->store_len = 0;
    if (!out->store && !(out->store = malloc(out->store_cap = 256))) {
        out->store_cap = 0;
        *why = "out of memory";
        *col = 0;
        return -1;
    }
    struct parser ps = {line, n, 0, NULL, out};
    skip_ws(&ps);
    if (ps.i >= n || line[ps.i] != '{') {
        fail(&ps, "expected a JSON object");
        goto bad;
    }
    ps.i++;
    skip_ws(&ps);
    if (ps.i < n && line[ps.i] == '}') {
        ps.i++;
    } else {
        for (;;) {
            size_t ks, kl, vs, vl;
            skip_ws(&ps);
            if (string(&ps, &ks, &kl))
                goto bad;
            skip_ws(&ps);
            if (ps.i >= n || line[ps.i] != ':') {
                fail(&ps, "expected ':'");
                goto bad;
            }
            ps.i++;
            skip_ws(&ps);
            if (string(&ps, &vs, &vl)) {
                if (ps.why && strcmp(ps.why, "expected a string") == 0)
                    ps.why = "values must be JSON strings";
                goto bad;
            }
            if (add_pair(&ps, ks, kl, vs, vl))
                goto bad;
            skip_ws(&ps);
            if (ps.i < n && line[ps.i] == ',') {
                ps.i++;
                continue;
            }
            if (ps.i < n && line[ps.i] == '}') {
                ps.i++;
                break;
            }
            fail(&ps, "expected ',' or '}'");
            goto bad;
        }
    }
    skip_ws(&ps);
    if (ps.i != n) {
        fail(&ps, "trailing characters after the object");
        goto bad;
    }
    for (size_t k = 0; k < out->count; k++) {
        out->pairs[k].key = out->store + (uintptr_t)out->pairs[k].key;
        out->pairs[k].value = out->store + (uintptr_t)out->pairs[k].value;
    }
    return 0;
bad:
    *why = ps.why;
    *col = ps.i;
    return -1;
}
