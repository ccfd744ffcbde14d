/* "name:type=value" command-line arguments, encoded as libamp encodes them. */
#include "typed_args.h"

#include <fcntl.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char typed_args_help[] =
    "  name=value               String (the bytes as given)\n"
    "  name:string=value        String\n"
    "  name:hex=0a0b            String given in hex\n"
    "  name:unicode=text        Unicode (checked UTF-8)\n"
    "  name:int=123             Integer, any size\n"
    "  name:float=1.5           Float (written as Python's repr: 1.5, 1e+16, nan)\n"
    "  name:bool=true           Boolean (true/false, True/False)\n"
    "  name:decimal=1.10        Decimal (written as Python's str)\n"
    "  name:datetime=2024-05-01T12:00:00.000000+02:00   DateTime\n"
    "  name:list<T>=[...]       ListOf(T) from a JSON array; T is any type here\n"
    "                           but amplist, list<T> included: list<list<int>>\n"
    "  name:amplist=[{...}]     AmpList from a JSON array of objects of strings\n"
    "  name:msgpack=JSON        Structured: the JSON value as MessagePack\n"
    "  name:fd=PATH             Descriptor: PATH opened read-only and passed\n"
    "                           over the (UNIX socket) connection\n";

static int set_err(char *err, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_err(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

/* A JSON scalar as the text of a scalar value. */
static int json_scalar_text(json_t *e, char *buf, size_t bn, const char **s, size_t *sn)
{
    if (json_is_string(e)) {
        *s = json_string_value(e);
        *sn = json_string_length(e);
    } else if (json_is_integer(e)) {
        *sn = (size_t)snprintf(buf, bn, "%lld", (long long)json_integer_value(e));
        *s = buf;
    } else if (json_is_real(e)) {
        *sn = amp_float_format(json_real_value(e), buf);
        *s = buf;
    } else if (json_is_boolean(e)) {
        *s = json_is_true(e) ? "True" : "False";
        *sn = strlen(*s);
    } else {
        return -1;
    }
    return 0;
}

static void pack_json(msgpack_packer *pk, json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            msgpack_pack_str(pk, strlen(k));
            msgpack_pack_str_body(pk, k, strlen(k));
            pack_json(pk, v);
        }
        break;
    }
    case JSON_ARRAY: {
        msgpack_pack_array(pk, json_array_size(j));
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
            pack_json(pk, v);
        break;
    }
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(j));
        msgpack_pack_str_body(pk, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(j));
        break;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(j));
        break;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        break;
    case JSON_NULL:
        msgpack_pack_nil(pk);
        break;
    }
}

static int encode_structured(json_t *j, amp_buf *out, char *err, size_t n)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_json(&pk, j);
    size_t start = out->len;
    amp_buf_append(out, (const uint8_t *)sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    if (amp_structured_check(out->data + start, out->len - start))
        return set_err(err, n, "not a valid Structured value");
    return 0;
}

static int encode_hex(const char *v, size_t vn, amp_buf *out, char *err, size_t n)
{
    if (vn % 2)
        return set_err(err, n, "hex value '%s' has an odd length", v);
    for (size_t i = 0; i < vn; i += 2) {
        unsigned byte;
        char two[3] = {v[i], v[i + 1], 0};
        if (strspn(two, "0123456789abcdefABCDEF") != 2 || sscanf(two, "%2x", &byte) != 1)
            return set_err(err, n, "bad hex value '%s'", v);
        uint8_t b = (uint8_t)byte;
        amp_buf_append(out, &b, 1);
    }
    return 0;
}

/* Scalar kinds from their text. */
static int encode_scalar(sig_kind kind, const char *v, size_t vn, amp_buf *out, char *err,
                         size_t n)
{
    const uint8_t *p = (const uint8_t *)v;
    char tmp[64];
    switch (kind) {
    case SIG_STRING:
    case SIG_PATH:
        amp_buf_append(out, p, vn);
        return 0;
    case SIG_UNICODE:
        if (amp_utf8_check(p, vn))
            return set_err(err, n, "'%.*s' is not valid UTF-8", (int)vn, v);
        amp_buf_append(out, p, vn);
        return 0;
    case SIG_INTEGER:
    case SIG_DESCRIPTOR: /* the ordinal */
        if (amp_bigint_check(p, vn))
            return set_err(err, n, "'%.*s' is not an integer (digits, optional '-', no "
                                   "leading zeros)", (int)vn, v);
        amp_buf_append(out, p, vn);
        return 0;
    case SIG_FLOAT: {
        double d;
        if (amp_float_parse(p, vn, &d))
            return set_err(err, n, "'%.*s' is not a float", (int)vn, v);
        amp_buf_append(out, (uint8_t *)tmp, amp_float_format(d, tmp));
        return 0;
    }
    case SIG_BOOLEAN: {
        int b;
        if (vn == 4 && !strncmp(v, "true", 4))
            b = 1;
        else if (vn == 5 && !strncmp(v, "false", 5))
            b = 0;
        else if (amp_bool_parse(p, vn, &b))
            return set_err(err, n, "'%.*s' is not a boolean (true or false)", (int)vn, v);
        const char *s = amp_bool_format(b);
        amp_buf_append(out, (const uint8_t *)s, strlen(s));
        return 0;
    }
    case SIG_DECIMAL: {
        char *scratch = malloc(vn + 1);
        amp_decimal d;
        int bad = !scratch || amp_decimal_parse(p, vn, &d, scratch, vn) != AMP_OK ||
                  amp_decimal_format(&d, out) != AMP_OK;
        free(scratch);
        if (bad)
            return set_err(err, n, "'%.*s' is not a decimal", (int)vn, v);
        return 0;
    }
    case SIG_DATETIME: {
        amp_datetime t;
        if (amp_datetime_parse(p, vn, &t) || amp_datetime_format(&t, tmp))
            return set_err(err, n, "'%.*s' is not a DateTime like "
                                   "2024-05-01T12:00:00.000000+02:00", (int)vn, v);
        amp_buf_append(out, (uint8_t *)tmp, AMP_DATETIME_LEN);
        return 0;
    }
    default:
        return set_err(err, n, "%s needs a JSON value", sig_kind_name(kind));
    }
}

static int encode_amplist(const sig_type *t, json_t *arr, amp_buf *out, char *err, size_t n)
{
    if (!json_is_array(arr))
        return set_err(err, n, "an AmpList needs a JSON array of objects");
    size_t i;
    json_t *obj;
    json_array_foreach(arr, i, obj) {
        if (!json_is_object(obj))
            return set_err(err, n, "AmpList elements must be JSON objects");
        const char *k;
        json_t *v;
        json_object_foreach(obj, k, v) {
            const sig_type *ft = NULL;
            for (size_t f = 0; f < t->nfields; f++)
                if (!strcmp(t->fields[f].name, k))
                    ft = t->fields[f].type;
            amp_buf val;
            amp_buf_init(&val);
            char msg[200];
            int r;
            if (ft)
                r = typed_args_encode_json(ft, v, &val, msg, sizeof msg);
            else if (json_is_string(v))
                r = amp_buf_append(&val, (const uint8_t *)json_string_value(v),
                                   json_string_length(v)) == AMP_OK ? 0 : -1;
            else
                r = set_err(msg, sizeof msg, "must be a string");
            if (r == 0 && amp_encode_pair(out, (const uint8_t *)k, strlen(k),
                                          val.data ? val.data : (const uint8_t *)"", val.len))
                r = set_err(msg, sizeof msg, "cannot be encoded (too long?)");
            amp_buf_free(&val);
            if (r)
                return set_err(err, n, "AmpList field '%s': %s", k, msg);
        }
        amp_encode_end(out);
    }
    return 0;
}

int typed_args_encode_json(const sig_type *t, json_t *j, amp_buf *out, char *err, size_t n)
{
    switch (t->kind) {
    case SIG_STRUCTURED:
        return encode_structured(j, out, err, n);
    case SIG_AMPLIST:
        return encode_amplist(t, j, out, err, n);
    case SIG_LISTOF: {
        if (!json_is_array(j))
            return set_err(err, n, "ListOf needs a JSON array");
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e) {
            amp_buf elem;
            amp_buf_init(&elem);
            int r = typed_args_encode_json(t->elem, e, &elem, err, n);
            if (r == 0 && amp_list_append(out, elem.data ? elem.data : (const uint8_t *)"",
                                          elem.len) != AMP_OK)
                r = set_err(err, n, "a list element is over 65535 bytes");
            amp_buf_free(&elem);
            if (r)
                return r;
        }
        return 0;
    }
    default: {
        char buf[64];
        const char *s;
        size_t sn;
        if ((t->kind == SIG_INTEGER || t->kind == SIG_DESCRIPTOR) && json_is_real(j))
            return set_err(err, n, "%g is not an integer", json_real_value(j));
        if (json_scalar_text(j, buf, sizeof buf, &s, &sn))
            return set_err(err, n, "a %s must be a JSON string or number",
                           sig_kind_name(t->kind));
        return encode_scalar(t->kind, s, sn, out, err, n);
    }
    }
}

int typed_args_encode_text(const sig_type *t, const char *v, size_t vn, amp_buf *out, char *err,
                           size_t n)
{
    if (t->kind != SIG_LISTOF && t->kind != SIG_AMPLIST && t->kind != SIG_STRUCTURED)
        return encode_scalar(t->kind, v, vn, out, err, n);
    json_error_t je;
    json_t *j = json_loadb(v, vn, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        return set_err(err, n, "bad JSON: %s", je.text);
    int r = typed_args_encode_json(t, j, out, err, n);
    json_decref(j);
    return r;
}

/* The type of an explicit "name:TYPE=": the short names of --help, or a
 * Twisted type string (ListOf(Integer)). NULL after a message. */
static sig_type *explicit_type(const char *type, int *hex, char *err, size_t n)
{
    static const struct {
        const char *name;
        sig_kind kind;
    } names[] = {
        {"string", SIG_STRING},     {"hex", SIG_STRING},      {"unicode", SIG_UNICODE},
        {"int", SIG_INTEGER},       {"integer", SIG_INTEGER}, {"float", SIG_FLOAT},
        {"bool", SIG_BOOLEAN},      {"boolean", SIG_BOOLEAN}, {"decimal", SIG_DECIMAL},
        {"datetime", SIG_DATETIME}, {"amplist", SIG_AMPLIST}, {"msgpack", SIG_STRUCTURED},
        {"fd", SIG_DESCRIPTOR},
    };
    *hex = !strcmp(type, "hex");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(type, names[i].name))
            return sig_type_new(names[i].kind);
    size_t len = strlen(type);
    if (!strncmp(type, "list<", 5) && len > 6 && type[len - 1] == '>') {
        char inner[SIG_MAX_TYPE_LEN];
        if (len - 6 >= sizeof inner) {
            set_err(err, n, "bad list type '%s'", type);
            return NULL;
        }
        memcpy(inner, type + 5, len - 6);
        inner[len - 6] = 0;
        int inner_hex;
        sig_type *e = explicit_type(inner, &inner_hex, err, n);
        sig_type *t = e && !inner_hex && e->kind != SIG_AMPLIST ? sig_type_new(SIG_LISTOF) : NULL;
        if (!t) {
            if (e)
                set_err(err, n, "bad list type '%s'", type);
            sig_type_free(e);
            return NULL;
        }
        t->elem = e;
        return t;
    }
    sig_type *t;
    char msg[200];
    if (sig_type_parse(type, len, &t, msg, sizeof msg)) {
        set_err(err, n, "unknown type '%s'", type);
        return NULL;
    }
    return t;
}

/* One argument into slot i; `declared` is its declared type or NULL. */
static int parse_one(typed_args *out, size_t i, char *arg, const sig_type *declared, char *err,
                     size_t err_len)
{
    char *eq = strchr(arg, '=');
    char *colon = memchr(arg, ':', (size_t)(eq - arg));
    size_t name_len = (size_t)((colon ? colon : eq) - arg);
    sig_type *own = NULL;
    int hex = 0;
    if (colon) {
        size_t tl = (size_t)(eq - colon - 1);
        char type[SIG_MAX_TYPE_LEN + 1];
        if (tl == 0 || tl >= sizeof type)
            return set_err(err, err_len, "argument '%s': bad type", arg);
        memcpy(type, colon + 1, tl);
        type[tl] = 0;
        char msg[256];
        if (!(own = explicit_type(type, &hex, msg, sizeof msg)))
            return set_err(err, err_len, "argument '%s': %s", arg, msg);
    }
    const sig_type *t = own ? own : declared;
    const char *v = eq + 1;
    amp_buf *val = &out->values[i];
    amp_buf_init(val);
    char msg[256];
    int r = 0;
    if (!t)
        amp_buf_append(val, (const uint8_t *)v, strlen(v)); /* a String */
    else if (hex)
        r = encode_hex(v, strlen(v), val, msg, sizeof msg);
    else if (t->kind == SIG_DESCRIPTOR && !own) {
        /* Only the user opens a file for a peer: a signature (the peer's
         * word) never turns a plain value into an open descriptor. */
        r = -1;
        snprintf(msg, sizeof msg, "declared Descriptor: to pass a file, give it as %.*s:fd=PATH",
                 (int)name_len, arg);
    } else if (t->kind == SIG_DESCRIPTOR) {
        out->fd_paths[i] = strdup(v);
        amp_buf_append(val, (const uint8_t *)"0", 1); /* set when sent */
    } else
        r = typed_args_encode_text(t, v, strlen(v), val, msg, sizeof msg);
    sig_type_free(own);
    if (r)
        return set_err(err, err_len, "argument '%s': %s", arg, msg);
    if (val->len > AMP_MAX_VALUE_LEN)
        return set_err(err, err_len, "argument '%s': value over 65535 bytes", arg);
    out->pairs[i].key = (const uint8_t *)arg;
    out->pairs[i].key_len = name_len;
    out->pairs[i].value = val->data ? val->data : (const uint8_t *)"";
    out->pairs[i].value_len = val->len;
    out->count++;
    return 0;
}

int typed_args_parse_sig(typed_args *out, int argc, char **argv, const signature *sig, char *err,
                         size_t err_len)
{
    memset(out, 0, sizeof *out);
    out->pairs = calloc((size_t)argc + 1, sizeof *out->pairs);
    out->values = calloc((size_t)argc + 1, sizeof *out->values);
    out->fd_paths = calloc((size_t)argc + 1, sizeof *out->fd_paths);
    if (!out->pairs || !out->values || !out->fd_paths)
        return set_err(err, err_len, "out of memory");
    out->cap = (size_t)argc;
    int typed = sig && sig->has_signature;
    for (int i = 0; i < argc; i++) {
        char *arg = argv[i];
        char *eq = strchr(arg, '=');
        if (!eq || eq == arg)
            return set_err(err, err_len, "argument '%s' is not name=value or name:type=value",
                           arg);
        const sig_field *f = NULL;
        if (typed) {
            size_t name_len = strcspn(arg, ":=");
            if (!(f = signature_find_arg(sig, arg, name_len))) {
                char *decl = signature_format(sig);
                set_err(err, err_len, "unknown argument '%.*s' (declared: %s)", (int)name_len,
                        arg, decl ? decl : "?");
                free(decl);
                return -1;
            }
        }
        if (parse_one(out, (size_t)i, arg, f ? f->type : NULL, err, err_len))
            return -1;
    }
    for (size_t a = 0; typed && a < sig->nargs; a++) {
        size_t len = strlen(sig->args[a].name);
        int given = 0;
        for (size_t i = 0; i < out->count; i++)
            given |= out->pairs[i].key_len == len && !memcmp(out->pairs[i].key, sig->args[a].name, len);
        if (!given && !sig->args[a].optional) {
            char *decl = signature_format(sig);
            set_err(err, err_len, "missing argument '%s' (declared: %s)", sig->args[a].name,
                    decl ? decl : "?");
            free(decl);
            return -1;
        }
    }
    return 0;
}

int typed_args_parse(typed_args *out, int argc, char **argv, char *err, size_t err_len)
{
    return typed_args_parse_sig(out, argc, argv, NULL, err, err_len);
}

int typed_args_send_fds(typed_args *a, amp_conn *conn, char *err, size_t err_len)
{
    for (size_t i = 0; i < a->count; i++) {
        if (!a->fd_paths[i])
            continue;
        int fd = open(a->fd_paths[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return set_err(err, err_len, "cannot open %s: no such file", a->fd_paths[i]);
        int64_t ord;
        amp_err r = amp_conn_send_fd(conn, fd, &ord);
        close(fd);
        if (r != AMP_OK)
            return set_err(err, err_len, "cannot pass %s: descriptors need a unix: endpoint",
                           a->fd_paths[i]);
        char tmp[AMP_INT_MAX_LEN];
        a->values[i].len = 0;
        amp_buf_append(&a->values[i], (uint8_t *)tmp, amp_int_format(ord, tmp));
        a->pairs[i].value = a->values[i].data;
        a->pairs[i].value_len = a->values[i].len;
    }
    return 0;
}

void typed_args_free(typed_args *a)
{
    for (size_t i = 0; i < a->cap; i++) {
        amp_buf_free(&a->values[i]);
        free(a->fd_paths[i]);
    }
    free(a->pairs);
    free(a->values);
    free(a->fd_paths);
    memset(a, 0, sizeof *a);
}
