/* Signature type strings: parse, print, free; the name rules. */
#include "sig_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
    "Integer", "String",   "Unicode",    "Path",       "Float",  "Boolean",
    "Decimal", "DateTime", "Descriptor", "Structured", "ListOf", "AmpList",
};

const char *sig_kind_name(sig_kind k)
{
    return kind_names[k];
}

int sig_fail(sig_cursor *c, const char *fmt, ...)
{
    if (!c->failed && c->err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->err_len, fmt, ap);
        va_end(ap);
    }
    c->failed = 1;
    return -1;
}

void sig_skip_ws(sig_cursor *c)
{
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' ||
                           c->s[c->i] == '\r'))
        c->i++;
}

int sig_eat(sig_cursor *c, char ch)
{
    sig_skip_ws(c);
    if (c->i < c->n && c->s[c->i] == ch) {
        c->i++;
        return 1;
    }
    return 0;
}

static int name_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
}

int sig_name_ok(const char *s, size_t n)
{
    if (n < 1 || n > SIG_MAX_NAME_LEN || s[0] == '_')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return 0;
    return 1;
}

int sig_error_code_ok(const char *s, size_t n)
{
    if (n < 1 || n > SIG_MAX_NAME_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* The run of name characters at the cursor (after whitespace). */
size_t sig_word(sig_cursor *c, const char **start)
{
    sig_skip_ws(c);
    *start = c->s + c->i;
    size_t b = c->i;
    while (c->i < c->n && name_char(c->s[c->i]))
        c->i++;
    return c->i - b;
}

sig_type *sig_type_new(sig_kind kind)
{
    sig_type *t = calloc(1, sizeof *t);
    if (t)
        t->kind = kind;
    return t;
}

void sig_fields_free(sig_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].name);
        sig_type_free(f[i].type);
    }
    free(f);
}

void sig_type_free(sig_type *t)
{
    if (!t)
        return;
    sig_type_free(t->elem);
    sig_fields_free(t->fields, t->nfields);
    free(t);
}

int sig_add_field(sig_cursor *c, sig_field **fields, size_t *n, size_t max, const char *what,
                  const char *name, size_t name_len)
{
    if (!sig_name_ok(name, name_len))
        return sig_fail(c, "bad %s name '%.*s' (1..64 of A-Z a-z 0-9 _ . -, not starting "
                           "with '_')", what, (int)name_len, name);
    for (size_t i = 0; i < *n; i++)
        if (strlen((*fields)[i].name) == name_len && !memcmp((*fields)[i].name, name, name_len))
            return sig_fail(c, "%s '%.*s' declared twice", what, (int)name_len, name);
    if (*n >= max)
        return sig_fail(c, "more than %zu %ss", max, what);
    sig_field *v = realloc(*fields, (*n + 1) * sizeof *v);
    if (!v)
        return sig_fail(c, "out of memory");
    *fields = v;
    memset(&v[*n], 0, sizeof v[*n]);
    v[*n].name = strndup(name, name_len);
    if (!v[*n].name)
        return sig_fail(c, "out of memory");
    (*n)++;
    return 0;
}

/* "name: T" items up to ')' (the '(' is eaten); depth is the container's. */
static int parse_amplist_fields(sig_cursor *c, sig_type *t, int depth)
{
    if (sig_eat(c, ')'))
        return sig_fail(c, "an AmpList needs at least one field");
    do {
        const char *name;
        size_t len = sig_word(c, &name);
        if (sig_add_field(c, &t->fields, &t->nfields, SIG_MAX_ARGS, "AmpList field", name,
                          len))
            return -1;
        if (!sig_eat(c, ':'))
            return sig_fail(c, "expected ':' after AmpList field '%.*s'", (int)len, name);
        if (!(t->fields[t->nfields - 1].type = sig_parse_type_at(c, depth)))
            return -1;
    } while (sig_eat(c, ','));
    if (!sig_eat(c, ')'))
        return sig_fail(c, "expected ',' or ')' in AmpList(...) at byte %zu", c->i);
    return 0;
}

sig_type *sig_parse_type_at(sig_cursor *c, int depth)
{
    const char *w;
    size_t len = sig_word(c, &w);
    size_t k;
    for (k = 0; k < sizeof kind_names / sizeof kind_names[0]; k++)
        if (strlen(kind_names[k]) == len && !memcmp(kind_names[k], w, len))
            break;
    if (k == sizeof kind_names / sizeof kind_names[0]) {
        if (len)
            sig_fail(c, "unknown type '%.*s'", (int)len, w);
        else
            sig_fail(c, "expected a type at byte %zu", c->i);
        return NULL;
    }
    sig_type *t = sig_type_new((sig_kind)k);
    if (!t) {
        sig_fail(c, "out of memory");
        return NULL;
    }
    if (t->kind != SIG_LISTOF && t->kind != SIG_AMPLIST)
        return t;
    if (depth >= SIG_MAX_DEPTH) {
        sig_fail(c, "types nested deeper than %d", SIG_MAX_DEPTH);
        goto bad;
    }
    if (!sig_eat(c, '(')) {
        sig_fail(c, "expected '(' after %s", kind_names[k]);
        goto bad;
    }
    if (t->kind == SIG_LISTOF) {
        if (!(t->elem = sig_parse_type_at(c, depth + 1)))
            goto bad;
        if (!sig_eat(c, ')')) {
            sig_fail(c, "expected ')' to close ListOf(");
            goto bad;
        }
    } else if (parse_amplist_fields(c, t, depth + 1)) {
        goto bad;
    }
    return t;
bad:
    sig_type_free(t);
    return NULL;
}

/* A parsed type whose canonical form is over the limit is refused. */
int sig_check_type_len(sig_cursor *c, const sig_type *t)
{
    amp_buf b;
    amp_buf_init(&b);
    sig_type_format(t, &b);
    size_t len = b.len;
    amp_buf_free(&b);
    if (len > SIG_MAX_TYPE_LEN)
        return sig_fail(c, "a type over %d bytes", SIG_MAX_TYPE_LEN);
    return 0;
}

int sig_type_parse(const char *s, size_t n, sig_type **out, char *err, size_t err_len)
{
    sig_cursor c = {s, n, 0, err, err_len, 0};
    *out = NULL;
    if (n > 4 * SIG_MAX_TYPE_LEN) /* whitespace allowed, but not without end */
        return sig_fail(&c, "a type over %d bytes", SIG_MAX_TYPE_LEN);
    sig_type *t = sig_parse_type_at(&c, 0);
    if (!t)
        return -1;
    sig_skip_ws(&c);
    if (c.i != n || sig_check_type_len(&c, t)) {
        sig_fail(&c, "unexpected '%.*s' after the type", (int)(n - c.i), s + c.i);
        sig_type_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

static void put(amp_buf *b, const char *s)
{
    amp_buf_append(b, (const uint8_t *)s, strlen(s));
}

void sig_type_format(const sig_type *t, amp_buf *out)
{
    put(out, kind_names[t->kind]);
    if (t->kind == SIG_LISTOF) {
        put(out, "(");
        sig_type_format(t->elem, out);
        put(out, ")");
    } else if (t->kind == SIG_AMPLIST) {
        put(out, "(");
        for (size_t i = 0; i < t->nfields; i++) {
            if (i)
                put(out, ", ");
            put(out, t->fields[i].name);
            put(out, ": ");
            sig_type_format(t->fields[i].type, out);
        }
        put(out, ")");
    }
}

char *sig_type_string(const sig_type *t)
{
    amp_buf b;
    amp_buf_init(&b);
    sig_type_format(t, &b);
    char *s = strndup(b.data ? (const char *)b.data : "", b.len);
    amp_buf_free(&b);
    return s;
}
