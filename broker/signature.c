/* Command signatures: checking and canonical re-encoding (spec/amp.md 6b.7). */
#include "signature.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where a failure is described. */
struct why {
    char *buf;
    size_t len;
};

static enum sig_status fail(struct why *w, enum sig_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum sig_status fail(struct why *w, enum sig_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->buf, w->len, fmt, ap);
    va_end(ap);
    return st;
}

/* Peer bytes quoted in a description: printable ASCII as is, the rest as
 * \xNN, cut after SHOW_MAX bytes, so a description stays short and ASCII. */
#define SHOW_MAX 40
#define SHOW_BUF (4 * SHOW_MAX + 4)

static const char *show(char out[SHOW_BUF], const uint8_t *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < SHOW_MAX; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '\'')
            out[o++] = (char)p[i];
        else
            o += (size_t)snprintf(out + o, 5, "\\x%02x", p[i]);
    }
    if (n > SHOW_MAX)
        o += (size_t)snprintf(out + o, 4, "...");
    out[o] = 0;
    return out;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* ---- names, codes and type strings ---------------------------------------- */

static int is_name_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

/* A name (argument, response field, AmpList field): what is wrong, or NULL. */
static const char *name_problem(const uint8_t *p, size_t n)
{
    if (n == 0)
        return "an empty name";
    if (n > SIG_MAX_NAME)
        return "a name longer than 64 bytes";
    for (size_t i = 0; i < n; i++)
        if (!is_name_char(p[i]))
            return "not a name (A-Z a-z 0-9 _ . - only)";
    if (p[0] == '_')
        return "a name starting with '_' (reserved for the protocol's keys)";
    return NULL;
}

static const char *code_problem(const uint8_t *p, size_t n)
{
    if (n == 0)
        return "an empty error code";
    if (n > SIG_MAX_NAME)
        return "an error code longer than 64 bytes";
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
            return "not an error code (A-Z 0-9 _ only)";
    return NULL;
}

/* A view of peer bytes. */
struct span {
    const uint8_t *p;
    size_t n;
};

static int span_in(const struct span *v, size_t n, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].n == len && !memcmp(v[i].p, p, len))
            return 1;
    return 0;
}

static const char *const simple_types[] = {"Integer", "String",  "Unicode",  "Path",
                                           "Float",   "Boolean", "Decimal",  "DateTime",
                                           "Descriptor", "Structured"};

/* A type string being parsed; its canonical form goes to `out`. */
struct tparse {
    const uint8_t *p;
    size_t n, pos;
    amp_buf *out;
    const char *ctx; /* "arguments[2].type" */
    struct why *w;
};

/* Fields of one AmpList in 256 bytes: "a:Path," takes 7, so at most 37. */
#define TYPE_MAX_FIELDS 40

static int at(const struct tparse *t, char c)
{
    return t->pos < t->n && t->p[t->pos] == c;
}

static void skip_spaces(struct tparse *t)
{
    while (at(t, ' '))
        t->pos++;
}

static enum sig_status expected(struct tparse *t, const char *what)
{
    char s[SHOW_BUF];
    if (t->pos >= t->n)
        return fail(t->w, SIG_BAD, "%s: ends where %s should be", t->ctx, what);
    return fail(t->w, SIG_BAD, "%s: expected %s at byte %zu, not '%s'", t->ctx, what, t->pos,
                show(s, t->p + t->pos, 1));
}

/* The canonical form only grows by what the caller checks afterwards:
 * running out of the fixed buffer is the type string's cap. */
static enum sig_status emit(struct tparse *t, const void *p, size_t n)
{
    if (amp_buf_append(t->out, p, n) != AMP_OK)
        return fail(t->w, SIG_LIMIT, "%s: over %d bytes in canonical form (the limit of a type "
                    "string)", t->ctx, SIG_MAX_TYPE);
    return SIG_OK;
}

static enum sig_status parse_type(struct tparse *t, int depth);

/* AmpList( name: T, ... ), after the '(' */
static enum sig_status parse_fields(struct tparse *t, int depth)
{
    struct span seen[TYPE_MAX_FIELDS];
    size_t nseen = 0;
    enum sig_status st;
    if (at(t, ')'))
        return fail(t->w, SIG_BAD, "%s: AmpList() without fields at byte %zu", t->ctx, t->pos);
    for (;;) {
        size_t start = t->pos;
        while (t->pos < t->n && is_name_char(t->p[t->pos]))
            t->pos++;
        const uint8_t *name = t->p + start;
        size_t len = t->pos - start;
        if (len == 0)
            return expected(t, "a field name");
        const char *bad = name_problem(name, len);
        char s[SHOW_BUF];
        if (bad)
            return fail(t->w, SIG_BAD, "%s: AmpList field '%s' at byte %zu is %s", t->ctx,
                        show(s, name, len), start, bad);
        if (span_in(seen, nseen, name, len))
            return fail(t->w, SIG_BAD, "%s: AmpList field '%s' twice", t->ctx,
                        show(s, name, len));
        if (nseen == TYPE_MAX_FIELDS) /* cannot happen within SIG_MAX_TYPE bytes */
            return fail(t->w, SIG_LIMIT, "%s: more than %d AmpList fields", t->ctx,
                        TYPE_MAX_FIELDS);
        seen[nseen++] = (struct span){name, len};
        if (!at(t, ':'))
            return expected(t, "':'");
        t->pos++;
        skip_spaces(t);
        if ((st = emit(t, name, len)) || (st = emit(t, ": ", 2)) ||
            (st = parse_type(t, depth)))
            return st;
        if (at(t, ')'))
            return SIG_OK;
        if (!at(t, ','))
            return expected(t, "',' or ')'");
        t->pos++;
        skip_spaces(t);
        if ((st = emit(t, ", ", 2)))
            return st;
    }
}

/* One type at t->pos, inside `depth` ListOf/AmpList. */
static enum sig_status parse_type(struct tparse *t, int depth)
{
    size_t start = t->pos;
    while (t->pos < t->n && (is_name_char(t->p[t->pos]) && t->p[t->pos] != '.' &&
                             t->p[t->pos] != '-'))
        t->pos++;
    const uint8_t *id = t->p + start;
    size_t len = t->pos - start;
    if (len == 0)
        return expected(t, "a type");
    int list = len == 6 && !memcmp(id, "ListOf", 6);
    int amplist = len == 7 && !memcmp(id, "AmpList", 7);
    if (!list && !amplist) {
        for (size_t i = 0; i < sizeof simple_types / sizeof simple_types[0]; i++)
            if (strlen(simple_types[i]) == len && !memcmp(simple_types[i], id, len))
                return emit(t, id, len);
        char s[SHOW_BUF];
        return fail(t->w, SIG_BAD, "%s: unknown type '%s'", t->ctx, show(s, id, len));
    }
    if (!at(t, '('))
        return expected(t, "'('");
    if (depth == SIG_MAX_DEPTH)
        return fail(t->w, SIG_BAD, "%s: ListOf/AmpList nested deeper than %d at byte %zu",
                    t->ctx, SIG_MAX_DEPTH, start);
    t->pos++;
    enum sig_status st;
    if ((st = emit(t, id, len)) || (st = emit(t, "(", 1)))
        return st;
    st = list ? parse_type(t, depth + 1) : parse_fields(t, depth + 1);
    if (st)
        return st;
    if (!at(t, ')'))
        return expected(t, "')'");
    t->pos++;
    return emit(t, ")", 1);
}

/* The canonical form of a whole type string, appended to `out`. */
static enum sig_status canon_type(const uint8_t *p, size_t n, const char *ctx, amp_buf *out,
                                  struct why *w)
{
    if (n > SIG_MAX_TYPE)
        return fail(w, SIG_LIMIT, "%s: %zu bytes, over the limit of %d for a type string", ctx,
                    n, SIG_MAX_TYPE);
    uint8_t mem[SIG_MAX_TYPE];
    amp_buf b;
    amp_buf_init_fixed(&b, mem, sizeof mem);
    struct tparse t = {p, n, 0, &b, ctx, w};
    enum sig_status st = parse_type(&t, 0);
    if (st)
        return st;
    if (t.pos < n)
        return expected(&t, "the end");
    return amp_buf_append(out, b.data, b.len) == AMP_OK ? SIG_OK : SIG_LIMIT;
}

/* ---- AmpList and ListOf values --------------------------------------------- */

/* The framing of an AmpList value: boxes of `u16 keylen, key, u16 vallen,
 * value` ended by a zero keylen. Counts the items; SIG_LIMIT past `max`. */
static enum sig_status count_items(const amp_pair *v, const char *what, size_t max,
                                   size_t *count, struct why *w)
{
    const uint8_t *p = v->value;
    size_t n = v->value_len, pos = 0;
    *count = 0;
    while (pos < n) {
        if (*count == max)
            return fail(w, SIG_LIMIT, "%s: more than %zu items (the broker's limit)", what, max);
        for (;;) {
            if (n - pos < 2)
                return fail(w, SIG_BAD, "%s[%zu]: malformed AmpList: the value ends inside "
                            "an item", what, *count);
            size_t klen = be16(p + pos);
            pos += 2;
            if (klen == 0)
                break;
            if (klen > AMP_MAX_KEY_LEN)
                return fail(w, SIG_BAD, "%s[%zu]: malformed AmpList: a key of %zu bytes",
                            what, *count, klen);
            if (n - pos < klen + 2 || n - pos - klen - 2 < be16(p + pos + klen))
                return fail(w, SIG_BAD, "%s[%zu]: malformed AmpList: the value ends inside "
                            "an item", what, *count);
            pos += klen + 2 + be16(p + pos + klen);
        }
        (*count)++;
    }
    return SIG_OK;
}

/* The known fields of an item, found in its box (framing checked). */
struct item {
    const amp_pair *name, *type, *optional;
    amp_pair f[3];
};

static enum sig_status read_item(const uint8_t *p, size_t *pos, int with_optional,
                                 const char *ctx, struct item *it, struct why *w)
{
    memset(it, 0, sizeof *it);
    static const char *const keys[] = {"name", "type", "optional"};
    for (;;) {
        size_t klen = be16(p + *pos);
        *pos += 2;
        if (klen == 0)
            break;
        const uint8_t *key = p + *pos;
        size_t vlen = be16(p + *pos + klen);
        const uint8_t *val = key + klen + 2;
        *pos += klen + 2 + vlen;
        int k = -1;
        for (int i = 0; i < 2 + with_optional; i++)
            if (strlen(keys[i]) == klen && !memcmp(keys[i], key, klen))
                k = i;
        char s[SHOW_BUF];
        if (k < 0)
            return fail(w, SIG_BAD, "%s: unknown key '%s'", ctx, show(s, key, klen));
        if (it->f[k].key)
            return fail(w, SIG_BAD, "%s: key '%s' twice", ctx, keys[k]);
        it->f[k] = (amp_pair){key, klen, val, vlen};
    }
    it->name = it->f[0].key ? &it->f[0] : NULL;
    it->type = it->f[1].key ? &it->f[1] : NULL;
    it->optional = it->f[2].key ? &it->f[2] : NULL;
    if (!it->name)
        return fail(w, SIG_BAD, "%s: no name", ctx);
    if (!it->type)
        return fail(w, SIG_BAD, "%s: no type", ctx);
    return SIG_OK;
}

/* `arguments` or `response`, framing already checked, re-encoded to out. */
static enum sig_status canon_fields(const amp_pair *v, const char *what, int with_optional,
                                    amp_buf *out, struct why *w)
{
    struct span seen[SIG_MAX_ARGUMENTS > SIG_MAX_RESPONSE ? SIG_MAX_ARGUMENTS
                                                          : SIG_MAX_RESPONSE];
    size_t nseen = 0, pos = 0;
    enum sig_status st;
    while (pos < v->value_len) {
        char ctx[48], tctx[56], s[SHOW_BUF];
        snprintf(ctx, sizeof ctx, "%s[%zu]", what, nseen);
        snprintf(tctx, sizeof tctx, "%s.type", ctx);
        struct item it;
        if ((st = read_item(v->value, &pos, with_optional, ctx, &it, w)))
            return st;
        const char *bad = name_problem(it.name->value, it.name->value_len);
        if (bad)
            return fail(w, SIG_BAD, "%s.name: '%s' is %s", ctx,
                        show(s, it.name->value, it.name->value_len), bad);
        if (span_in(seen, nseen, it.name->value, it.name->value_len))
            return fail(w, SIG_BAD, "%s.name: '%s' twice in %s", ctx,
                        show(s, it.name->value, it.name->value_len), what);
        seen[nseen++] = (struct span){it.name->value, it.name->value_len};
        int optional = 0;
        if (it.optional && amp_bool_parse(it.optional->value, it.optional->value_len, &optional))
            return fail(w, SIG_BAD, "%s.optional: '%s' is not True or False", ctx,
                        show(s, it.optional->value, it.optional->value_len));
        /* the item: name, type, optional only when true */
        uint8_t tmem[SIG_MAX_TYPE];
        amp_buf type;
        amp_buf_init_fixed(&type, tmem, sizeof tmem);
        if ((st = canon_type(it.type->value, it.type->value_len, tctx, &type, w)))
            return st;
        if (amp_encode_pair(out, (const uint8_t *)"name", 4, it.name->value,
                            it.name->value_len) ||
            amp_encode_pair(out, (const uint8_t *)"type", 4, type.data, type.len) ||
            (optional && amp_encode_pair_str(out, "optional", "True")) || amp_encode_end(out))
            return SIG_LIMIT;
    }
    return SIG_OK;
}

/* `errors`: a ListOf(Unicode) of codes, re-encoded to out. */
static enum sig_status canon_errors(const amp_pair *v, amp_buf *out, struct why *w)
{
    struct span seen[SIG_MAX_ERRORS];
    size_t nseen = 0, pos = 0;
    const uint8_t *e;
    size_t n;
    amp_err r;
    while ((r = amp_list_next(v->value, v->value_len, &pos, &e, &n)) == AMP_OK) {
        char s[SHOW_BUF];
        if (nseen == SIG_MAX_ERRORS)
            return fail(w, SIG_LIMIT, "errors: more than %d codes (the broker's limit)",
                        SIG_MAX_ERRORS);
        const char *bad = code_problem(e, n);
        if (bad)
            return fail(w, SIG_BAD, "errors[%zu]: '%s' is %s", nseen, show(s, e, n), bad);
        if (span_in(seen, nseen, e, n))
            return fail(w, SIG_BAD, "errors[%zu]: '%s' twice", nseen, show(s, e, n));
        seen[nseen++] = (struct span){e, n};
        if (amp_list_append(out, e, n))
            return SIG_LIMIT;
    }
    if (r != AMP_AGAIN)
        return fail(w, SIG_BAD, "errors[%zu]: malformed ListOf: the value ends inside an "
                    "element", nseen);
    return SIG_OK;
}

enum sig_status sig_parse(const amp_pair *arguments, const amp_pair *response,
                          const amp_pair *errors, struct sig_canon *out, char *why,
                          size_t why_len)
{
    struct why w = {why, why_len};
    if (why_len)
        why[0] = 0;
    if (!arguments && !response && !errors)
        return SIG_NONE;
    static const amp_pair none = {(const uint8_t *)"", 0, (const uint8_t *)"", 0};
    const amp_pair *a = arguments ? arguments : &none, *r = response ? response : &none,
                   *e = errors ? errors : &none;
    size_t total = a->value_len + r->value_len + e->value_len, n;
    if (total > SIG_MAX_BYTES)
        return fail(&w, SIG_LIMIT, "arguments, response and errors take %zu bytes, over the "
                    "limit of %d", total, SIG_MAX_BYTES);
    enum sig_status st;
    /* framing and counts first: a cap is a cap whatever the items say */
    if ((st = count_items(a, "arguments", SIG_MAX_ARGUMENTS, &n, &w)) ||
        (st = count_items(r, "response", SIG_MAX_RESPONSE, &n, &w)))
        return st;
    amp_buf b;
    amp_buf_init_fixed(&b, out->bytes, sizeof out->bytes);
    if ((st = canon_fields(a, "arguments", 1, &b, &w)))
        goto done;
    out->len.args = b.len;
    if ((st = canon_fields(r, "response", 0, &b, &w)))
        goto done;
    out->len.resp = b.len - out->len.args;
    if ((st = canon_errors(e, &b, &w)))
        goto done;
    out->len.errs = b.len - out->len.args - out->len.resp;
    return SIG_OK;
done:
    if (st == SIG_LIMIT && !why[0]) /* the fixed buffer ran out */
        fail(&w, SIG_LIMIT, "arguments, response and errors take over %d bytes in canonical "
             "form (the limit)", SIG_MAX_BYTES);
    return st;
}

static size_t lens_total(const struct sig_lens *l)
{
    return l->args + l->resp + l->errs;
}

struct signature *sig_new(const struct sig_canon *c)
{
    size_t n = lens_total(&c->len);
    struct signature *s = malloc(sizeof *s + n);
    if (!s)
        return NULL;
    s->len = c->len;
    memcpy(s->bytes, c->bytes, n);
    return s;
}

int sig_matches(const struct signature *s, const struct sig_canon *c)
{
    return s->len.args == c->len.args && s->len.resp == c->len.resp &&
           s->len.errs == c->len.errs && !memcmp(s->bytes, c->bytes, lens_total(&c->len));
}

void sig_values(const struct signature *s, amp_pair *arguments, amp_pair *response,
                amp_pair *errors)
{
    *arguments = (amp_pair){(const uint8_t *)"arguments", 9, s->bytes, s->len.args};
    *response = (amp_pair){(const uint8_t *)"response", 8, s->bytes + s->len.args, s->len.resp};
    *errors = (amp_pair){(const uint8_t *)"errors", 6, s->bytes + s->len.args + s->len.resp,
                         s->len.errs};
}

size_t sig_size(const struct signature *s)
{
    return sizeof *s + lens_total(&s->len);
}
