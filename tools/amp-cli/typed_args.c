/* "name:type=value" command-line arguments, encoded as libamp encodes them. */
#include "typed_args.h"

#include <fcntl.h>
#include <jansson.h>
#include <msgpack.h>
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

static int set_err(char *err, size_t n, const char *fmt, const char *a, const char *b)
{
    snprintf(err, n, fmt, a, b);
    return -1;
}

static int encode_scalar(const char *type, const char *v, size_t vn, amp_buf *out, char *err,
                         size_t n);

/* A JSON element of a list as the text of a scalar. */
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

static int encode_list(const char *type, json_t *arr, amp_buf *out, char *err, size_t n)
{
    if (!json_is_array(arr))
        return set_err(err, n, "%s%s needs a JSON array", type, "");
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        amp_buf elem;
        amp_buf_init(&elem);
        int r;
        if (!strncmp(type, "list<", 5)) {
            char inner[64];
            size_t len = strlen(type);
            if (len < 7 || type[len - 1] != '>' || len - 6 >= sizeof inner)
                return set_err(err, n, "bad list type '%s'%s", type, "");
            memcpy(inner, type + 5, len - 6);
            inner[len - 6] = 0;
            r = encode_list(inner, e, &elem, err, n);
        } else {
            char buf[64];
            const char *s;
            size_t sn;
            if (json_scalar_text(e, buf, sizeof buf, &s, &sn)) {
                amp_buf_free(&elem);
                return set_err(err, n, "a %s list element must be a string or number%s", type,
                               "");
            }
            r = encode_scalar(type, s, sn, &elem, err, n);
        }
        if (r == 0 && amp_list_append(out, elem.data, elem.len) != AMP_OK)
            r = set_err(err, n, "a list element is over 65535 bytes%s%s", "", "");
        amp_buf_free(&elem);
        if (r)
            return r;
    }
    return 0;
}

static int encode_amplist(json_t *arr, amp_buf *out, char *err, size_t n)
{
    if (!json_is_array(arr))
        return set_err(err, n, "amplist needs a JSON array of objects%s%s", "", "");
    size_t i;
    json_t *obj;
    json_array_foreach(arr, i, obj) {
        if (!json_is_object(obj))
            return set_err(err, n, "amplist elements must be JSON objects%s%s", "", "");
        const char *k;
        json_t *v;
        json_object_foreach(obj, k, v) {
            if (!json_is_string(v))
                return set_err(err, n, "amplist field '%s' must be a string%s", k, "");
            if (amp_encode_pair(out, (const uint8_t *)k, strlen(k),
                                (const uint8_t *)json_string_value(v), json_string_length(v)))
                return set_err(err, n, "amplist field '%s' cannot be encoded%s", k, "");
        }
        amp_encode_end(out);
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

static int encode_scalar(const char *type, const char *v, size_t vn, amp_buf *out, char *err,
                         size_t n)
{
    const uint8_t *p = (const uint8_t *)v;
    char tmp[64];
    if (!strcmp(type, "string")) {
        amp_buf_append(out, p, vn);
    } else if (!strcmp(type, "hex")) {
        if (vn % 2)
            return set_err(err, n, "hex value '%s' has an odd length%s", v, "");
        for (size_t i = 0; i < vn; i += 2) {
            unsigned byte;
            char two[3] = {v[i], v[i + 1], 0};
            if (sscanf(two, "%2x", &byte) != 1 || strspn(two, "0123456789abcdefABCDEF") != 2)
                return set_err(err, n, "bad hex value '%s'%s", v, "");
            uint8_t b = (uint8_t)byte;
            amp_buf_append(out, &b, 1);
        }
    } else if (!strcmp(type, "unicode")) {
        if (amp_utf8_check(p, vn))
            return set_err(err, n, "'%s' is not valid UTF-8%s", v, "");
        amp_buf_append(out, p, vn);
    } else if (!strcmp(type, "int") || !strcmp(type, "integer")) {
        if (amp_bigint_check(p, vn))
            return set_err(err, n, "'%s' is not an integer (digits, optional '-', no leading "
                                   "zeros)%s", v, "");
        amp_buf_append(out, p, vn);
    } else if (!strcmp(type, "float")) {
        double d;
        if (amp_float_parse(p, vn, &d))
            return set_err(err, n, "'%s' is not a float%s", v, "");
        amp_buf_append(out, (uint8_t *)tmp, amp_float_format(d, tmp));
    } else if (!strcmp(type, "bool") || !strcmp(type, "boolean")) {
        int b;
        if (vn == 4 && !strncmp(v, "true", 4))
            b = 1;
        else if (vn == 5 && !strncmp(v, "false", 5))
            b = 0;
        else if (amp_bool_parse(p, vn, &b))
            return set_err(err, n, "'%s' is not a boolean (true or false)%s", v, "");
        const char *s = amp_bool_format(b);
        amp_buf_append(out, (const uint8_t *)s, strlen(s));
    } else if (!strcmp(type, "decimal")) {
        char *scratch = malloc(vn + 1);
        amp_decimal d;
        int bad = amp_decimal_parse(p, vn, &d, scratch, vn) != AMP_OK ||
                  amp_decimal_format(&d, out) != AMP_OK;
        free(scratch);
        if (bad)
            return set_err(err, n, "'%s' is not a decimal%s", v, "");
    } else if (!strcmp(type, "datetime")) {
        amp_datetime t;
        if (amp_datetime_parse(p, vn, &t) || amp_datetime_format(&t, tmp))
            return set_err(err, n, "'%s' is not a DateTime like "
                                   "2024-05-01T12:00:00.000000+02:00%s", v, "");
        amp_buf_append(out, (uint8_t *)tmp, AMP_DATETIME_LEN);
    } else {
        return set_err(err, n, "unknown type '%s'%s", type, "");
    }
    return 0;
}

int typed_args_parse(typed_args *out, int argc, char **argv, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    out->pairs = calloc((size_t)argc + 1, sizeof *out->pairs);
    out->values = calloc((size_t)argc + 1, sizeof *out->values);
    out->fd_paths = calloc((size_t)argc + 1, sizeof *out->fd_paths);
    out->cap = (size_t)argc;
    for (int i = 0; i < argc; i++) {
        char *arg = argv[i];
        char *eq = strchr(arg, '=');
        if (!eq || eq == arg)
            return set_err(err, err_len, "argument '%s' is not name=value or name:type=value%s",
                           arg, "");
        char *colon = memchr(arg, ':', (size_t)(eq - arg));
        size_t name_len = (size_t)((colon ? colon : eq) - arg);
        char type[64] = "string";
        if (colon) {
            size_t tl = (size_t)(eq - colon - 1);
            if (tl == 0 || tl >= sizeof type)
                return set_err(err, err_len, "argument '%s': bad type%s", arg, "");
            memcpy(type, colon + 1, tl);
            type[tl] = 0;
        }
        const char *v = eq + 1;
        amp_buf *val = &out->values[i];
        amp_buf_init(val);
        char msg[256];
        int r = 0;
        if (!strncmp(type, "list<", 5) || !strcmp(type, "amplist") || !strcmp(type, "msgpack")) {
            json_error_t je;
            json_t *j = json_loads(v, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
            if (!j)
                return set_err(err, err_len, "argument '%s': bad JSON: %s", arg, je.text);
            if (!strcmp(type, "amplist")) {
                r = encode_amplist(j, val, msg, sizeof msg);
            } else if (!strcmp(type, "msgpack")) {
                msgpack_sbuffer sb;
                msgpack_sbuffer_init(&sb);
                msgpack_packer pk;
                msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
                pack_json(&pk, j);
                amp_buf_append(val, (const uint8_t *)sb.data, sb.size);
                msgpack_sbuffer_destroy(&sb);
                if (amp_structured_check(val->data, val->len))
                    r = set_err(msg, sizeof msg, "not a valid Structured value%s%s", "", "");
            } else {
                char inner[64];
                size_t len = strlen(type);
                if (type[len - 1] != '>' || len < 7) {
                    json_decref(j);
                    return set_err(err, err_len, "argument '%s': bad list type%s", arg, "");
                }
                memcpy(inner, type + 5, len - 6);
                inner[len - 6] = 0;
                r = encode_list(inner, j, val, msg, sizeof msg);
            }
            json_decref(j);
        } else if (!strcmp(type, "fd")) {
            out->fd_paths[i] = strdup(v);
            amp_buf_append(val, (const uint8_t *)"0", 1); /* set when sent */
        } else {
            r = encode_scalar(type, v, strlen(v), val, msg, sizeof msg);
        }
        if (r)
            return set_err(err, err_len, "argument '%s': %s", arg, msg);
        if (val->len > AMP_MAX_VALUE_LEN)
            return set_err(err, err_len, "argument '%s': value over 65535 bytes%s", arg, "");
        out->pairs[i].key = (const uint8_t *)arg;
        out->pairs[i].key_len = name_len;
        out->pairs[i].value = val->data ? val->data : (const uint8_t *)"";
        out->pairs[i].value_len = val->len;
        out->count++;
    }
    return 0;
}

int typed_args_send_fds(typed_args *a, amp_conn *conn, char *err, size_t err_len)
{
    for (size_t i = 0; i < a->count; i++) {
        if (!a->fd_paths[i])
            continue;
        int fd = open(a->fd_paths[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return set_err(err, err_len, "cannot open %s: %s", a->fd_paths[i], "no such file");
        int64_t ord;
        amp_err r = amp_conn_send_fd(conn, fd, &ord);
        close(fd);
        if (r != AMP_OK)
            return set_err(err, err_len, "cannot pass %s: %s", a->fd_paths[i],
                           "descriptors need a unix: endpoint");
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
