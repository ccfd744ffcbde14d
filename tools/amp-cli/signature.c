/* Command signatures: the notation and the wire form (see signature.h). */
#include "sig_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void signature_free(signature *s)
{
    if (!s)
        return;
    free(s->command);
    sig_fields_free(s->args, s->nargs);
    sig_fields_free(s->response, s->nresponse);
    for (size_t i = 0; i < s->nerrors; i++)
        free(s->errors[i]);
    free(s->errors);
    memset(s, 0, sizeof *s);
}

static int end_of_name(const sig_cursor *c)
{
    char ch = c->s[c->i];
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '(' || ch == ')' ||
           ch == ',' || ch == '!' || (ch == '-' && c->i + 1 < c->n && c->s[c->i + 1] == '>');
}

/* "name: T" items (arguments: T may be followed by '?') up to ')'. */
static int parse_fields(sig_cursor *c, sig_field **fields, size_t *n, size_t max,
                        const char *what, int optional_ok)
{
    if (sig_eat(c, ')'))
        return 0;
    do {
        const char *name;
        size_t len = sig_word(c, &name);
        if (sig_add_field(c, fields, n, max, what, name, len))
            return -1;
        if (!sig_eat(c, ':'))
            return sig_fail(c, "expected ':' after %s '%.*s'", what, (int)len, name);
        sig_field *f = &(*fields)[*n - 1];
        if (!(f->type = sig_parse_type_at(c, 0)) || sig_check_type_len(c, f->type))
            return -1;
        if (sig_eat(c, '?')) {
            if (!optional_ok)
                return sig_fail(c, "a %s cannot be optional ('?')", what);
            f->optional = 1;
        }
    } while (sig_eat(c, ','));
    if (!sig_eat(c, ')'))
        return sig_fail(c, "expected ',' or ')' after %s '%s'", what, (*fields)[*n - 1].name);
    return 0;
}

static int parse_errors(sig_cursor *c, signature *s)
{
    do {
        const char *code;
        size_t len = sig_word(c, &code);
        if (!sig_error_code_ok(code, len))
            return sig_fail(c, "bad error code '%.*s' (1..64 of A-Z 0-9 _)", (int)len, code);
        for (size_t i = 0; i < s->nerrors; i++)
            if (strlen(s->errors[i]) == len && !memcmp(s->errors[i], code, len))
                return sig_fail(c, "error code '%.*s' declared twice", (int)len, code);
        if (s->nerrors >= SIG_MAX_ERRORS)
            return sig_fail(c, "more than %d error codes", SIG_MAX_ERRORS);
        char **v = realloc(s->errors, (s->nerrors + 1) * sizeof *v);
        if (!v || !(v[s->nerrors] = strndup(code, len))) {
            if (v)
                s->errors = v;
            return sig_fail(c, "out of memory");
        }
        s->errors = v;
        s->nerrors++;
    } while (sig_eat(c, ','));
    return 0;
}

static int parse_notation(sig_cursor *c, signature *s)
{
    sig_skip_ws(c);
    size_t b = c->i;
    while (c->i < c->n && !end_of_name(c))
        c->i++;
    if (c->i == b)
        return sig_fail(c, "expected a command name");
    if (!(s->command = strndup(c->s + b, c->i - b)))
        return sig_fail(c, "out of memory");
    if (sig_eat(c, '(')) {
        s->has_signature = 1;
        if (parse_fields(c, &s->args, &s->nargs, SIG_MAX_ARGS, "argument", 1))
            return -1;
    }
    sig_skip_ws(c);
    if (c->i + 1 < c->n && c->s[c->i] == '-' && c->s[c->i + 1] == '>') {
        c->i += 2;
        s->has_signature = 1;
        if (!sig_eat(c, '('))
            return sig_fail(c, "expected '(' after '->'");
        if (parse_fields(c, &s->response, &s->nresponse, SIG_MAX_RESPONSE, "response key", 0))
            return -1;
    }
    if (sig_eat(c, '!')) {
        s->has_signature = 1;
        if (parse_errors(c, s))
            return -1;
    }
    sig_skip_ws(c);
    if (c->i != c->n)
        return sig_fail(c, "unexpected '%.*s' at byte %zu", (int)(c->n - c->i), c->s + c->i,
                        c->i);
    return 0;
}

int signature_parse(const char *text, signature *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    size_t n = strlen(text);
    sig_cursor c = {text, n, 0, err, err_len, 0};
    if (n > 4 * SIG_MAX_WIRE_LEN)
        return sig_fail(&c, "a signature over %d bytes", 4 * SIG_MAX_WIRE_LEN);
    if (parse_notation(&c, out)) {
        signature_free(out);
        return -1;
    }
    return 0;
}

static void put(amp_buf *b, const char *s)
{
    amp_buf_append(b, (const uint8_t *)s, strlen(s));
}

static void format_fields(amp_buf *b, const sig_field *f, size_t n)
{
    put(b, "(");
    for (size_t i = 0; i < n; i++) {
        if (i)
            put(b, ", ");
        put(b, f[i].name);
        put(b, ": ");
        sig_type_format(f[i].type, b);
        if (f[i].optional)
            put(b, "?");
    }
    put(b, ")");
}

static char *take_string(amp_buf *b)
{
    char *s = strndup(b->data ? (const char *)b->data : "", b->len);
    amp_buf_free(b);
    return s;
}

char *signature_format_tail(const signature *s)
{
    amp_buf b;
    amp_buf_init(&b);
    if (s->has_signature) {
        format_fields(&b, s->args, s->nargs);
        if (s->nresponse) {
            put(&b, " -> ");
            format_fields(&b, s->response, s->nresponse);
        }
        for (size_t i = 0; i < s->nerrors; i++) {
            put(&b, i ? ", " : " ! ");
            put(&b, s->errors[i]);
        }
    }
    return take_string(&b);
}

char *signature_format(const signature *s)
{
    char *tail = signature_format_tail(s);
    if (!tail)
        return NULL;
    amp_buf b;
    amp_buf_init(&b);
    put(&b, s->command ? s->command : "");
    put(&b, tail);
    free(tail);
    return take_string(&b);
}

static const sig_field *find(const sig_field *f, size_t nf, const char *name, size_t n)
{
    for (size_t i = 0; i < nf; i++)
        if (strlen(f[i].name) == n && !memcmp(f[i].name, name, n))
            return &f[i];
    return NULL;
}

const sig_field *signature_find_arg(const signature *s, const char *name, size_t n)
{
    return find(s->args, s->nargs, name, n);
}

const sig_field *signature_find_response(const signature *s, const char *name, size_t n)
{
    return find(s->response, s->nresponse, name, n);
}

/* ---- the wire form ----------------------------------------------------- */

static void encode_fields(amp_buf *b, const sig_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *type = sig_type_string(f[i].type);
        amp_encode_pair_str(b, "name", f[i].name);
        amp_encode_pair_str(b, "type", type ? type : "");
        if (f[i].optional)
            amp_encode_pair_str(b, "optional", "True");
        amp_encode_end(b);
        free(type);
    }
}

void sig_wire_free(sig_wire *w)
{
    amp_buf_free(&w->arguments);
    amp_buf_free(&w->response);
    amp_buf_free(&w->errors);
    memset(w, 0, sizeof *w);
}

int signature_to_wire(const signature *s, sig_wire *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (!s->has_signature)
        return 0;
    encode_fields(&out->arguments, s->args, s->nargs);
    encode_fields(&out->response, s->response, s->nresponse);
    for (size_t i = 0; i < s->nerrors; i++)
        amp_list_append(&out->errors, (const uint8_t *)s->errors[i], strlen(s->errors[i]));
    if (out->arguments.len + out->response.len + out->errors.len > SIG_MAX_WIRE_LEN) {
        snprintf(err, err_len, "the signature's encoding is over %d bytes", SIG_MAX_WIRE_LEN);
        sig_wire_free(out);
        return -1;
    }
    static const char *const keys[] = {"arguments", "response", "errors"};
    amp_buf *vals[] = {&out->arguments, &out->response, &out->errors};
    for (size_t i = 0; i < 3; i++)
        out->pairs[i] = (amp_pair){(const uint8_t *)keys[i], strlen(keys[i]),
                                   vals[i]->data ? vals[i]->data : (const uint8_t *)"",
                                   vals[i]->len};
    out->count = 3;
    return 0;
}

int amplist_foreach(const uint8_t *p, size_t n, amplist_fn fn, void *ud, char *err,
                    size_t err_len)
{
    if (n == 0)
        return 0;
    amp_limits lim;
    amp_limits_default(&lim);
    lim.allow_empty_box = 1;
    amp_decoder *d;
    if (amp_decoder_new(&d, &lim) != AMP_OK) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    int r = 0;
    amp_err e = amp_decoder_feed(d, p, n);
    amp_box box;
    while (e == AMP_OK && (e = amp_decoder_next(d, &box)) == AMP_OK)
        if ((r = fn(&box, ud)) != 0)
            break;
    if (r == 0 && (e != AMP_AGAIN || (e = amp_decoder_finish(d)) != AMP_OK)) {
        snprintf(err, err_len, "malformed AmpList: %s", amp_strerror(e));
        r = -1;
    }
    amp_decoder_free(d);
    return r;
}

struct read_fields {
    sig_field **fields;
    size_t *n, max;
    const char *what;
    sig_cursor *c;
};

static int read_field(const amp_box *elem, void *ud)
{
    struct read_fields *rf = ud;
    const amp_pair *name = amp_box_find_str(elem, "name");
    const amp_pair *type = amp_box_find_str(elem, "type");
    const amp_pair *opt = amp_box_find_str(elem, "optional");
    if (!name || !type)
        return sig_fail(rf->c, "a %s without name or type", rf->what);
    if (sig_add_field(rf->c, rf->fields, rf->n, rf->max, rf->what, (const char *)name->value,
                      name->value_len))
        return -1;
    sig_field *f = &(*rf->fields)[*rf->n - 1];
    if (sig_type_parse((const char *)type->value, type->value_len, &f->type, rf->c->err,
                       rf->c->err_len)) {
        rf->c->failed = 1;
        return -1;
    }
    int b = 0;
    if (opt && amp_bool_parse(opt->value, opt->value_len, &b) != AMP_OK)
        return sig_fail(rf->c, "%s '%s': optional is not a Boolean", rf->what, f->name);
    f->optional = b;
    return 0;
}

static int read_list(sig_cursor *c, const amp_pair *v, sig_field **fields, size_t *n, size_t max,
                     const char *what)
{
    struct read_fields rf = {fields, n, max, what, c};
    char msg[160];
    int r = amplist_foreach(v->value, v->value_len, read_field, &rf, msg, sizeof msg);
    if (r && !c->failed)
        sig_fail(c, "%ss: %s", what, msg);
    return r ? -1 : 0;
}

static int read_errors(sig_cursor *c, const amp_pair *v, signature *s)
{
    size_t pos = 0;
    const uint8_t *e;
    size_t len;
    amp_err r;
    while ((r = amp_list_next(v->value, v->value_len, &pos, &e, &len)) == AMP_OK) {
        if (!sig_error_code_ok((const char *)e, len))
            return sig_fail(c, "bad error code in errors");
        if (s->nerrors >= SIG_MAX_ERRORS)
            return sig_fail(c, "more than %d error codes", SIG_MAX_ERRORS);
        char **nv = realloc(s->errors, (s->nerrors + 1) * sizeof *nv);
        if (!nv)
            return sig_fail(c, "out of memory");
        s->errors = nv;
        if (!(nv[s->nerrors] = strndup((const char *)e, len)))
            return sig_fail(c, "out of memory");
        s->nerrors++;
    }
    return r == AMP_AGAIN ? 0 : sig_fail(c, "malformed errors list");
}

int signature_from_item(const amp_box *item, signature *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    sig_cursor c = {"", 0, 0, err, err_len, 0};
    const amp_pair *cmd = amp_box_find_str(item, "command");
    const amp_pair *args = amp_box_find_str(item, "arguments");
    const amp_pair *resp = amp_box_find_str(item, "response");
    const amp_pair *errs = amp_box_find_str(item, "errors");
    if (!(out->command = strndup(cmd ? (const char *)cmd->value : "", cmd ? cmd->value_len : 0)))
        return sig_fail(&c, "out of memory");
    out->has_signature = args || resp || errs;
    if ((args && read_list(&c, args, &out->args, &out->nargs, SIG_MAX_ARGS, "argument")) ||
        (resp &&
         read_list(&c, resp, &out->response, &out->nresponse, SIG_MAX_RESPONSE, "response key")) ||
        (errs && read_errors(&c, errs, out))) {
        signature_free(out);
        return -1;
    }
    return 0;
}
