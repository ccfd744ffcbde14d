/* AMP values as JSON by declared type (see typed_json.h). */
#include "typed_json.h"

#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "json_text.h"
#include "term_text.h"
#include "typed_args.h"

/* Every writer below runs twice: with out == NULL it only checks that the
 * value decodes, so a bad value is never half-written before the fallback. */
static int emit(FILE *out, const sig_type *t, const uint8_t *p, size_t n);

static void put(FILE *out, const char *s)
{
    if (out)
        fputs(s, out);
}

static void put_bytes(FILE *out, const uint8_t *p, size_t n)
{
    if (out)
        json_write_bytes(out, p, n);
}

static void put_double(FILE *out, double d)
{
    if (!out)
        return;
    if (isnan(d)) {
        fputs("\"nan\"", out);
    } else if (isinf(d)) {
        fputs(d > 0 ? "\"inf\"" : "\"-inf\"", out);
    } else {
        char tmp[AMP_FLOAT_MAX_LEN + 1];
        size_t len = amp_float_format(d, tmp);
        fwrite(tmp, 1, len, out);
    }
}

static int emit_msgpack(FILE *out, const msgpack_object *o);

static int emit_msgpack_key(FILE *out, const msgpack_object *k)
{
    if (k->type == MSGPACK_OBJECT_STR) {
        put_bytes(out, (const uint8_t *)k->via.str.ptr, k->via.str.size);
        return 0;
    }
    if (!out) /* any other key: its JSON text as the key */
        return emit_msgpack(NULL, k);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m)
        return -1;
    emit_msgpack(m, k);
    fclose(m);
    json_write_bytes(out, (const uint8_t *)text, len);
    free(text);
    return 0;
}

static int emit_msgpack(FILE *out, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: put(out, "null"); return 0;
    case MSGPACK_OBJECT_BOOLEAN: put(out, o->via.boolean ? "true" : "false"); return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (out)
            fprintf(out, "%llu", (unsigned long long)o->via.u64);
        return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        if (out)
            fprintf(out, "%lld", (long long)o->via.i64);
        return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: put_double(out, o->via.f64); return 0;
    case MSGPACK_OBJECT_STR:
        put_bytes(out, (const uint8_t *)o->via.str.ptr, o->via.str.size);
        return 0;
    case MSGPACK_OBJECT_BIN:
        put_bytes(out, (const uint8_t *)o->via.bin.ptr, o->via.bin.size);
        return 0;
    case MSGPACK_OBJECT_ARRAY:
        put(out, "[");
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                put(out, ",");
            if (emit_msgpack(out, &o->via.array.ptr[i]))
                return -1;
        }
        put(out, "]");
        return 0;
    case MSGPACK_OBJECT_MAP:
        put(out, "{");
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (i)
                put(out, ",");
            if (emit_msgpack_key(out, &o->via.map.ptr[i].key))
                return -1;
            put(out, ":");
            if (emit_msgpack(out, &o->via.map.ptr[i].val))
                return -1;
        }
        put(out, "}");
        return 0;
    default:
        return -1; /* ext types: not JSON */
    }
}

static int emit_structured(FILE *out, const uint8_t *p, size_t n)
{
    if (amp_structured_check(p, n) != AMP_OK)
        return -1;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int r = msgpack_unpack_next(&u, (const char *)p, n, &off) == MSGPACK_UNPACK_SUCCESS &&
                    off == n
                ? emit_msgpack(out, &u.data)
                : -1;
    msgpack_unpacked_destroy(&u);
    return r;
}

static int emit_list(FILE *out, const sig_type *elem, const uint8_t *p, size_t n)
{
    size_t pos = 0;
    const uint8_t *e;
    size_t len;
    amp_err r;
    put(out, "[");
    for (int first = 1; (r = amp_list_next(p, n, &pos, &e, &len)) == AMP_OK; first = 0) {
        if (!first)
            put(out, ",");
        if (emit(out, elem, e, len))
            return -1;
    }
    put(out, "]");
    return r == AMP_AGAIN ? 0 : -1;
}

struct amplist_ctx {
    FILE *out;
    const sig_type *t;
    int first;
};

static int emit_fields(FILE *out, const amp_box *box, const sig_field *fields, size_t nfields)
{
    put(out, "{");
    for (size_t i = 0; i < box->count; i++) {
        const amp_pair *pr = &box->pairs[i];
        if (i)
            put(out, ",");
        put_bytes(out, pr->key, pr->key_len);
        put(out, ":");
        const sig_type *ft = typed_json_field_type(fields, nfields, pr->key, pr->key_len);
        if (!ft)
            put_bytes(out, pr->value, pr->value_len);
        else if (emit(out, ft, pr->value, pr->value_len))
            return -1;
    }
    put(out, "}");
    return 0;
}

static int emit_amplist_elem(const amp_box *elem, void *ud)
{
    struct amplist_ctx *c = ud;
    if (!c->first)
        put(c->out, ",");
    c->first = 0;
    return emit_fields(c->out, elem, c->t->fields, c->t->nfields);
}

static int emit(FILE *out, const sig_type *t, const uint8_t *p, size_t n)
{
    double d;
    int b;
    int64_t i64;
    switch (t ? t->kind : SIG_STRING) {
    case SIG_STRING:
    case SIG_UNICODE:
    case SIG_PATH: put_bytes(out, p, n); return 0;
    case SIG_INTEGER:
        if (amp_bigint_check(p, n) != AMP_OK)
            return -1;
        if (out)
            fwrite(p, 1, n, out);
        return 0;
    case SIG_DESCRIPTOR:
        if (amp_descriptor_parse(p, n, &i64) != AMP_OK)
            return -1;
        if (out)
            fprintf(out, "%lld", (long long)i64);
        return 0;
    case SIG_FLOAT:
        if (amp_float_parse(p, n, &d) != AMP_OK)
            return -1;
        put_double(out, d);
        return 0;
    case SIG_BOOLEAN:
        if (amp_bool_parse(p, n, &b) != AMP_OK)
            return -1;
        put(out, b ? "true" : "false");
        return 0;
    case SIG_DECIMAL: {
        char *scratch = malloc(n + 1);
        amp_decimal dec;
        int bad = !scratch || amp_decimal_parse(p, n, &dec, scratch, n) != AMP_OK;
        free(scratch);
        if (bad)
            return -1;
        put_bytes(out, p, n);
        return 0;
    }
    case SIG_DATETIME: {
        amp_datetime dt;
        if (amp_datetime_parse(p, n, &dt) != AMP_OK)
            return -1;
        put_bytes(out, p, n);
        return 0;
    }
    case SIG_STRUCTURED: return emit_structured(out, p, n);
    case SIG_LISTOF: return emit_list(out, t->elem, p, n);
    case SIG_AMPLIST: {
        struct amplist_ctx c = {out, t, 1};
        char err[1];
        put(out, "[");
        if (amplist_foreach(p, n, emit_amplist_elem, &c, err, sizeof err))
            return -1;
        put(out, "]");
        return 0;
    }
    }
    return -1;
}

int typed_json_check(const sig_type *t, const uint8_t *p, size_t n)
{
    return emit(NULL, t, p, n);
}

void typed_json_write_value(FILE *out, const sig_type *t, const uint8_t *p, size_t n)
{
    if (emit(NULL, t, p, n) == 0)
        emit(out, t, p, n);
    else
        json_write_bytes(out, p, n);
}

void typed_json_write_text(FILE *out, const sig_type *t, const uint8_t *p, size_t n)
{
    sig_kind k = t ? t->kind : SIG_STRING;
    int textual = k == SIG_STRING || k == SIG_UNICODE || k == SIG_PATH || k == SIG_DECIMAL ||
                  k == SIG_DATETIME || typed_json_check(t, p, n) != 0;
    if (textual) {
        term_write(out, p, n, TERM_LINE);
        return;
    }
    /* the typed JSON, through the terminal escaping too (strings inside a
     * list or a Structured value may hold anything JSON lets through) */
    char *json = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&json, &len);
    if (m) {
        typed_json_write_value(m, t, p, n);
        if (fclose(m) == 0)
            term_write(out, (const uint8_t *)json, len, TERM_LINE);
    }
    free(json);
}

const sig_type *typed_json_field_type(const sig_field *fields, size_t nfields,
                                      const uint8_t *key, size_t key_len)
{
    for (size_t i = 0; i < nfields; i++)
        if (strlen(fields[i].name) == key_len && !memcmp(fields[i].name, key, key_len))
            return fields[i].type;
    return NULL;
}

void typed_json_write_box(FILE *out, const amp_box *box, const sig_field *fields,
                          size_t nfields)
{
    putc('{', out);
    for (size_t i = 0; i < box->count; i++) {
        const amp_pair *pr = &box->pairs[i];
        if (i)
            putc(',', out);
        json_write_bytes(out, pr->key, pr->key_len);
        putc(':', out);
        typed_json_write_value(out, typed_json_field_type(fields, nfields, pr->key, pr->key_len),
                               pr->value, pr->value_len);
    }
    putc('}', out);
}

void typed_box_free(typed_box *b)
{
    for (size_t i = 0; i < b->count; i++) {
        amp_buf_free(&b->values[i]);
        free(b->keys[i]);
    }
    free(b->pairs);
    free(b->values);
    free(b->keys);
    memset(b, 0, sizeof *b);
}

/* An undeclared member: a string as its bytes, a number or boolean as text. */
static int encode_untyped(json_t *v, amp_buf *val, char *err, size_t err_len)
{
    static sig_type string_type = {SIG_STRING, NULL, NULL, 0};
    if (json_is_string(v) || json_is_number(v) || json_is_boolean(v))
        return typed_args_encode_json(&string_type, v, val, err, err_len);
    snprintf(err, err_len, "an undeclared key needs a string, number or boolean");
    return -1;
}

int typed_json_to_box(json_t *obj, const sig_field *fields, size_t nfields, typed_box *out,
                      char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(obj)) {
        snprintf(err, err_len, "expected a JSON object");
        return -1;
    }
    size_t n = json_object_size(obj);
    out->pairs = calloc(n + 1, sizeof *out->pairs);
    out->values = calloc(n + 1, sizeof *out->values);
    out->keys = calloc(n + 1, sizeof *out->keys);
    if (!out->pairs || !out->values || !out->keys) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        size_t kl = strlen(k), i = out->count;
        if (kl < 1 || kl > AMP_MAX_KEY_LEN) {
            snprintf(err, err_len, "key '%.40s': keys are 1..255 bytes", k);
            return -1;
        }
        out->keys[i] = strdup(k);
        out->count++;
        amp_buf_init(&out->values[i]);
        const sig_type *t = typed_json_field_type(fields, nfields, (const uint8_t *)k, kl);
        char msg[256];
        int r = t ? typed_args_encode_json(t, v, &out->values[i], msg, sizeof msg)
                  : encode_untyped(v, &out->values[i], msg, sizeof msg);
        if (r == 0 && out->values[i].len > AMP_MAX_VALUE_LEN)
            r = -1, snprintf(msg, sizeof msg, "value over 65535 bytes");
        if (r || !out->keys[i]) {
            snprintf(err, err_len, "key '%s': %s", k, r ? msg : "out of memory");
            return -1;
        }
        out->pairs[i] = (amp_pair){(const uint8_t *)out->keys[i], kl,
                                   out->values[i].data ? out->values[i].data
                                                       : (const uint8_t *)"",
                                   out->values[i].len};
    }
    return 0;
}
