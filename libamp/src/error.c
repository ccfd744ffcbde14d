/* Names and descriptions of result codes. */
#include <stddef.h>

#include "amp/error.h"

struct errinfo {
    int code;
    const char *name;
    const char *text;
};

static const struct errinfo errors[] = {
    {AMP_OK, "ok", "success"},
    {AMP_AGAIN, "again", "need more input"},
    {AMP_E_INVALID, "invalid", "invalid argument"},
    {AMP_E_NOMEM, "nomem", "out of memory"},
    {AMP_E_NOSPACE, "nospace", "output buffer too small"},
    {AMP_E_PROTOCOL, "protocol", "protocol error"},
    {AMP_E_EMPTY_BOX, "empty-box", "empty box (a zero key length where a box begins)"},
    {AMP_E_KEY_TOO_LONG, "key-too-long", "key longer than 255 bytes"},
    {AMP_E_TRUNCATED, "truncated", "input ends inside a box or list element"},
    {AMP_E_NO_ROLE, "no-role", "box has none of _answer, _error, _command"},
    {AMP_E_BAD_ERROR_BOX, "bad-error-box", "error box without _error_code or _error_description"},
    {AMP_E_EMPTY_KEY, "empty-key", "empty key"},
    {AMP_E_VALUE_TOO_LONG, "value-too-long", "value longer than 65535 bytes"},
    {AMP_E_UNKNOWN_TAG, "unknown-tag", "answer or error for a call that was never made"},
    {AMP_E_UNHANDLED_NO_ASK, "unhandled-no-ask", "call without _ask for a command nobody serves"},
    {AMP_E_TAG_TOO_LONG, "tag-too-long", "_ask longer than 255 bytes"},
    {AMP_E_LIMIT, "limit", "limit exceeded"},
    {AMP_E_TOO_MANY_KEYS, "too-many-keys", "more keys in a box than the configured limit"},
    {AMP_E_BOX_TOO_LARGE, "box-too-large", "box larger than the configured limit"},
    {AMP_E_TOO_DEEP, "too-deep", "nesting deeper than allowed"},
    {AMP_E_BAD_VALUE, "bad-value", "value does not parse as its type"},
    {AMP_E_RANGE, "range", "value out of range"},
    {AMP_E_UTF8, "utf8", "invalid UTF-8"},
    {AMP_E_REMOTE, "remote", "the peer answered with an error"},
    {AMP_E_TIMEOUT, "timeout", "the call timed out"},
    {AMP_E_CANCELLED, "cancelled", "the call was cancelled"},
    {AMP_E_CLOSED, "closed", "connection closed"},
    {AMP_E_BACKPRESSURE, "backpressure", "output buffer over its hard cap"},
    {AMP_E_DUPLICATE, "duplicate", "already registered"},
    {AMP_E_IO, "io", "socket error"},
    {AMP_E_TLS, "tls", "TLS error"},
    {AMP_E_ENDPOINT, "endpoint", "malformed endpoint"},
    {AMP_E_CONNECT, "connect", "connection failed"},
    {AMP_E_RESOLVE, "resolve", "host name does not resolve"},
};

static const struct errinfo *find(int err)
{
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].code == err)
            return &errors[i];
    return NULL;
}

const char *amp_strerror(int err)
{
    const struct errinfo *e = find(err);
    return e ? e->text : "unknown error";
}

const char *amp_errname(int err)
{
    const struct errinfo *e = find(err);
    return e ? e->name : "unknown";
}

int amp_err_is_protocol(int err)
{
    return err <= -100 && err > -200;
}

int amp_err_is_limit(int err)
{
    return err <= -200 && err > -300;
}
