/* The broker's own answers and errors, counted by code. */
#include "reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "router_internal.h"

void reply_sent(router *r, amp_err e)
{
    if (e != AMP_OK && e != AMP_E_CLOSED)
        r->stats.answers_failed++;
}

void reply_ok(router *r, amp_request *req)
{
    reply_sent(r, amp_request_answer(req, NULL, 0));
}

void reply_error(router *r, amp_request *req, const char *code, const char *desc)
{
    stats_error(r, (const uint8_t *)code, strlen(code));
    reply_sent(r, amp_request_error(req, code, desc, 0));
}

/* Twisted's "Unhandled Command: b'NAME'", with NAME cut (libamp's rule) so
 * the description always fits in a value: an error box without
 * _error_description is malformed. */
void reply_unhandled(router *r, amp_request *req)
{
    const amp_pair *cmd = amp_request_command(req);
    uint8_t mem[64 + 4 * AMP_UNHANDLED_NAME_MAX]; /* the most it can need */
    amp_buf d;
    amp_buf_init_fixed(&d, mem, sizeof mem);
    if (amp_unhandled_description(&d, cmd->value, cmd->value_len) != AMP_OK)
        d.len = 0;
    stats_error(r, (const uint8_t *)"UNHANDLED", 9);
    reply_sent(r, amp_request_error_bytes(req, (const uint8_t *)"UNHANDLED", 9, d.data, d.len, 0));
}

void reply_limit(router *r, amp_request *req, uint64_t *counter, const char *fmt, ...)
{
    (*counter)++;
    char d[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d, sizeof d, fmt, ap);
    va_end(ap);
    reply_error(r, req, "LIMIT_EXCEEDED", d);
}

int reply_too_long(router *r, amp_request *req, const amp_pair *name, uint64_t *counter)
{
    if (name->value_len <= r->cfg.max_command_name)
        return 0;
    reply_limit(r, req, counter, "%zu bytes is over the broker's limit of %zu (max_command_name)",
                name->value_len, r->cfg.max_command_name);
    return 1;
}
