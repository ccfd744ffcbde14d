/* amp-cli serve --exec: a call as the child's input, its output as the
 * call's answer (see serve_exec.h). */
#include "serve_exec.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_text.h"

char *serve_exec_input(const char *command, const amp_box *args, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        return NULL;
    fputs("{\"command\":", f);
    json_write_bytes(f, (const uint8_t *)command, strlen(command));
    fputs(",\"arguments\":{", f);
    int first = 1;
    for (size_t i = 0; i < args->count; i++) {
        const amp_pair *p = &args->pairs[i];
        if (amp_pair_is_reserved(p))
            continue;
        if (!first)
            putc(',', f);
        first = 0;
        json_write_bytes(f, p->key, p->key_len);
        putc(':', f);
        json_write_bytes(f, p->value, p->value_len);
    }
    fputs("}}\n", f);
    if (fclose(f)) {
        free(text);
        return NULL;
    }
    return text;
}

/* The answer's values: the JSON text of each (numbers, booleans) kept
 * alive until the answer is sent. */
typedef struct answer_build {
    amp_pair *pairs;
    size_t n;
    char (*text)[AMP_FLOAT_MAX_LEN + AMP_INT_MAX_LEN];
} answer_build;

static amp_err bad_output(amp_request *req, const char *fmt, const char *a, const char *b)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a, b);
    return amp_request_error(req, "EXEC_BAD_OUTPUT", msg, 0);
}

/* One value without a signature: strings as they are, numbers as their
 * text, booleans as AMP writes them (True/False). 0, or -1 with *why. */
static int plain_value(json_t *v, char *buf, const char **s, size_t *n, const char **why)
{
    if (json_is_string(v)) {
        *s = json_string_value(v);
        *n = json_string_length(v);
    } else if (json_is_integer(v)) {
        *n = (size_t)snprintf(buf, AMP_INT_MAX_LEN + 1, "%lld", (long long)json_integer_value(v));
        *s = buf;
    } else if (json_is_real(v)) {
        *n = amp_float_format(json_real_value(v), buf);
        *s = buf;
    } else if (json_is_boolean(v)) {
        *s = json_is_true(v) ? "True" : "False";
        *n = strlen(*s);
    } else {
        *why = json_is_null(v) ? "null" : json_is_array(v) ? "an array" : "an object";
        return -1;
    }
    return 0;
}

static amp_err answer_object(amp_request *req, json_t *obj)
{
    size_t n = json_object_size(obj), i = 0;
    answer_build b = {calloc(n + 1, sizeof *b.pairs), n, calloc(n + 1, sizeof *b.text)};
    if (!b.pairs || !b.text) {
        free(b.pairs);
        free(b.text);
        return amp_request_error(req, "EXEC_FAILED", "out of memory", 0);
    }
    amp_err r = AMP_OK;
    const char *key;
    size_t key_len;
    json_t *v;
    int bad = 0;
    json_object_keylen_foreach(obj, key, key_len, v) {
        const char *s, *why = "";
        size_t sn;
        if (key_len == 0 || key_len > AMP_MAX_KEY_LEN || *key == '_') {
            r = bad_output(req, "the answer's key '%.64s' is not allowed (1 to 255 bytes, not "
                                "starting with '_')%s", key, "");
            bad = 1;
            break;
        }
        if (plain_value(v, b.text[i], &s, &sn, &why)) {
            r = bad_output(req, "the answer's '%.64s' is %s: without a signature, values are "
                                "strings, numbers or booleans", key, why);
            bad = 1;
            break;
        }
        b.pairs[i] = (amp_pair){(const uint8_t *)key, key_len, (const uint8_t *)s, sn};
        i++;
    }
    size_t size;
    if (!bad && i && amp_box_measure(b.pairs, i, &size) != AMP_OK) {
        r = bad_output(req, "the answer does not fit in an AMP box (a value over 65535 "
                            "bytes)%s%s", "", "");
        bad = 1;
    }
    if (!bad)
        r = amp_request_answer(req, b.pairs, i);
    free(b.pairs);
    free(b.text);
    return r;
}

/* The first line of the output as a JSON object, or NULL with a message. */
static json_t *first_object(const exec_result *res, char *msg, size_t msg_len)
{
    const char *nl = memchr(res->out, '\n', res->out_len);
    size_t len = nl ? (size_t)(nl - res->out) : res->out_len;
    if (len == 0 || (len == 1 && res->out[0] == '\r')) {
        snprintf(msg, msg_len, "the command wrote no answer: its stdout's first line must be "
                               "one JSON object");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(res->out, len, JSON_ALLOW_NUL, &je);
    if (!j) {
        snprintf(msg, msg_len, "the first line of its stdout is not one JSON object: %s "
                               "(column %d)", je.text, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        snprintf(msg, msg_len, "the first line of its stdout is JSON but not an object");
        json_decref(j);
        return NULL;
    }
    return j;
}

/* {"error": "CODE", "description": "text"}: 1 and the error sent, 0 when
 * `obj` is not an error object, -1 for a malformed one (answered). */
static int error_object(amp_request *req, json_t *obj, amp_err *r)
{
    json_t *code = json_object_get(obj, "error");
    if (!code)
        return 0;
    json_t *desc = json_object_get(obj, "description");
    if (!json_is_string(code) || json_string_length(code) == 0 ||
        (desc && !json_is_string(desc))) {
        *r = bad_output(req, "an error object needs \"error\": a non-empty string, and "
                             "\"description\": a string%s%s", "", "");
        return -1;
    }
    *r = amp_request_error_bytes(req, (const uint8_t *)json_string_value(code),
                                 json_string_length(code),
                                 (const uint8_t *)(desc ? json_string_value(desc) : ""),
                                 desc ? json_string_length(desc) : 0, 0);
    return 1;
}

static amp_err failed(amp_request *req, const exec_result *res)
{
    char msg[512];
    if (res->outcome == EXEC_SIGNALED)
        snprintf(msg, sizeof msg, "killed by signal %d", res->code);
    else if (*res->err_line)
        snprintf(msg, sizeof msg, "exit status %d: %s", res->code, res->err_line);
    else
        snprintf(msg, sizeof msg, "exit status %d", res->code);
    return amp_request_error(req, "EXEC_FAILED", msg, 0);
}

amp_err serve_exec_answer(amp_request *req, const exec_result *res, const serve_exec_limits *lim)
{
    char msg[512];
    switch (res->outcome) {
    case EXEC_TIMED_OUT:
        snprintf(msg, sizeof msg, "the command ran longer than %g s (--exec-timeout): its "
                                  "process group was killed", lim->timeout);
        return amp_request_error(req, "TIMEOUT", msg, 0);
    case EXEC_TOO_MUCH:
        snprintf(msg, sizeof msg, "the command wrote more than %zu bytes on stdout: killed",
                 lim->max_stdout);
        return amp_request_error(req, "EXEC_BAD_OUTPUT", msg, 0);
    case EXEC_SPAWN_FAILED:
        snprintf(msg, sizeof msg, "cannot start /bin/sh: %s", strerror(res->code));
        return amp_request_error(req, "EXEC_FAILED", msg, 0);
    case EXEC_CANCELLED:
        return amp_request_error(req, "SHUTTING_DOWN", "amp-cli serve is stopping", 0);
    case EXEC_SIGNALED:
    case EXEC_EXITED:
        break;
    }
    json_t *obj = first_object(res, msg, sizeof msg);
    amp_err r;
    if (obj && error_object(req, obj, &r)) {
        json_decref(obj);
        return r;
    }
    if (res->outcome == EXEC_SIGNALED || res->code != 0) {
        json_decref(obj);
        return failed(req, res);
    }
    if (!obj)
        return amp_request_error(req, "EXEC_BAD_OUTPUT", msg, 0);
    r = answer_object(req, obj);
    json_decref(obj);
    return r;
}
