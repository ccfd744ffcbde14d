/* amp-cli serve --exec: a call as the child's input, its output as the
 * call's answer (see serve_exec.h). */
#include "serve_exec.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_text.h"
#include "typed_json.h"

/* "_answer" and a tag of up to 255 bytes, each with its length header */
#define ANSWER_TAG_ROOM (2 + 7 + 2 + AMP_MAX_TAG_LEN)
#define MAX_ERROR_CODE 64

char *serve_exec_input(const signature *sig, const amp_box *args, size_t *len)
{
    /* the arguments without the protocol's keys (_ask, _command) */
    amp_pair *keep = malloc((args->count + 1) * sizeof *keep);
    if (!keep)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < args->count; i++)
        if (!amp_pair_is_reserved(&args->pairs[i]))
            keep[k++] = args->pairs[i];
    amp_box shown = {keep, k, 0};
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (f) {
        fputs("{\"command\":", f);
        json_write_bytes(f, (const uint8_t *)sig->command, strlen(sig->command));
        fputs(",\"arguments\":", f);
        typed_json_write_box(f, &shown, sig->args, sig->nargs);
        fputs("}\n", f);
        if (fclose(f)) {
            free(text);
            text = NULL;
        }
    }
    free(keep);
    return text;
}

static amp_err bad_output(amp_request *req, const char *fmt, const char *a, const char *b)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a, b);
    return amp_request_error(req, "EXEC_BAD_OUTPUT", msg, 0);
}

/* The reason an answer box is not acceptable, or NULL: reserved keys, a
 * declared response field missing, more than an AMP box holds. */
static const char *answer_problem(const typed_box *b, const signature *sig, char *msg,
                                  size_t len)
{
    for (size_t i = 0; i < b->count; i++)
        if (b->pairs[i].key[0] == '_') {
            snprintf(msg, len, "the answer's key '%.64s' is not allowed: keys starting with "
                               "'_' belong to the protocol", b->keys[i]);
            return msg;
        }
    for (size_t f = 0; f < sig->nresponse; f++) {
        size_t i = 0, n = strlen(sig->response[f].name);
        while (i < b->count &&
               !(b->pairs[i].key_len == n && !memcmp(b->pairs[i].key, sig->response[f].name, n)))
            i++;
        if (i == b->count) {
            char *type = sig_type_string(sig->response[f].type);
            snprintf(msg, len, "the answer has no '%s' (%s), which %s's response declares",
                     sig->response[f].name, type ? type : "?", sig->command);
            free(type);
            return msg;
        }
    }
    /* what a peer (the broker) accepts, with room for the _answer tag: a
     * box it refuses would cost the whole connection, and every call on it */
    if (b->count > AMP_DEFAULT_MAX_KEYS - 1) {
        snprintf(msg, len, "the answer has %zu keys: an AMP box holds at most %u with its "
                           "_answer", b->count, (unsigned)AMP_DEFAULT_MAX_KEYS - 1);
        return msg;
    }
    size_t size = 0;
    amp_err e = b->count ? amp_box_measure(b->pairs, b->count, &size) : AMP_OK;
    if (e != AMP_OK) {
        snprintf(msg, len, "the answer does not fit in an AMP box: %s", amp_strerror(e));
        return msg;
    }
    if (size > AMP_DEFAULT_MAX_BOX_BYTES - ANSWER_TAG_ROOM) {
        snprintf(msg, len, "the answer takes %zu bytes: an AMP box holds at most %u with its "
                           "_answer", size, (unsigned)(AMP_DEFAULT_MAX_BOX_BYTES -
                                                       ANSWER_TAG_ROOM));
        return msg;
    }
    return NULL;
}

static amp_err answer_object(amp_request *req, json_t *obj, const signature *sig)
{
    typed_box b;
    char err[400], msg[512];
    amp_err r;
    if (typed_json_to_box(obj, sig->response, sig->nresponse, &b, err, sizeof err))
        r = bad_output(req, "the answer's %s%s", err, "");
    else if (answer_problem(&b, sig, msg, sizeof msg))
        r = amp_request_error(req, "EXEC_BAD_OUTPUT", msg, 0);
    else
        r = amp_request_answer(req, b.pairs, b.count);
    typed_box_free(&b);
    return r;
}

/* jansson keeps integers in 64 bits; an Integer may be any size. Integer
 * literals too long for that (outside strings) are quoted, which the
 * Integer encoder and undeclared keys (a number as its text) both take as
 * the same digits. Appends the line to out. */
static int quote_big_integers(const char *p, size_t n, amp_buf *out)
{
    int in_string = 0;
    for (size_t i = 0; i < n;) {
        char c = p[i];
        if (in_string || !(c == '-' || (c >= '0' && c <= '9'))) {
            if (in_string && c == '\\' && i + 1 < n) {
                if (amp_buf_append(out, (const uint8_t *)p + i, 2) != AMP_OK)
                    return -1;
                i += 2;
                continue;
            }
            if (c == '"')
                in_string = !in_string;
            if (amp_buf_append(out, (const uint8_t *)p + i, 1) != AMP_OK)
                return -1;
            i++;
            continue;
        }
        size_t end = i + 1, digits = c != '-', plain = 1;
        while (end < n && strchr("0123456789.eE+-", p[end])) {
            plain &= p[end] >= '0' && p[end] <= '9';
            digits++;
            end++;
        }
        int quote = plain && digits > 18;
        if ((quote && amp_buf_append(out, (const uint8_t *)"\"", 1) != AMP_OK) ||
            amp_buf_append(out, (const uint8_t *)p + i, end - i) != AMP_OK ||
            (quote && amp_buf_append(out, (const uint8_t *)"\"", 1) != AMP_OK))
            return -1;
        i = end;
    }
    return 0;
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
    amp_buf line;
    amp_buf_init(&line);
    json_t *j = NULL;
    if (quote_big_integers(res->out, len, &line))
        snprintf(je.text, sizeof je.text, "out of memory");
    else
        j = json_loadb((const char *)line.data, line.len, JSON_ALLOW_NUL, &je);
    amp_buf_free(&line);
    if (!j) {
        snprintf(msg, msg_len, "the first line of its stdout is not one JSON object: %s",
                 je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        snprintf(msg, msg_len, "the first line of its stdout is JSON but not an object");
        json_decref(j);
        return NULL;
    }
    return j;
}

/* An error code a caller can print and match: 1..64 bytes of printable
 * ASCII, no spaces (no NUL, newline or escape sequence from a child). */
static int code_ok(const char *p, size_t n)
{
    if (n == 0 || n > MAX_ERROR_CODE)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] <= ' ' || p[i] > '~')
            return 0;
    return 1;
}

/* A description: text without control characters but tab and newline,
 * and what one AMP value holds. */
static int description_ok(const char *p, size_t n)
{
    if (n > AMP_MAX_VALUE_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < ' ' && c != '\t' && c != '\n') || c == 0x7f)
            return 0;
    }
    return 1;
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
    if (!code_ok(json_string_value(code), json_string_length(code))) {
        *r = bad_output(req, "the error object's \"error\" is not a code: 1..64 printable "
                             "ASCII characters without spaces%s%s", "", "");
        return -1;
    }
    if (desc && !description_ok(json_string_value(desc), json_string_length(desc))) {
        *r = bad_output(req, "the error object's \"description\" has control characters "
                             "(other than tab and newline) or is over 65535 bytes%s%s", "", "");
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

amp_err serve_exec_answer(amp_request *req, const exec_result *res, const signature *sig,
                          const serve_exec_limits *lim)
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
    r = answer_object(req, obj, sig);
    json_decref(obj);
    return r;
}
