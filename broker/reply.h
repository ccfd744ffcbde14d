/* The broker's own answers and errors, counted: every error the broker
 * answers with goes through here, so amp.Stats counts it by code, and every
 * answer whose queuing failed is counted as answers_failed.
 *
 * Called by every room with the request it is handling; each function
 * answers `req` exactly once (the session releases it). Loop thread only. */
#ifndef AMP_BROKER_REPLY_H
#define AMP_BROKER_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "amp/amp.h"

typedef struct router router;

/* The outcome of an answer or error the broker sent: the caller may be
 * gone (nothing to do), or its output full (the session closes it). */
void reply_sent(router *r, amp_err e);
/* An empty answer. */
void reply_ok(router *r, amp_request *req);
/* Error `code` (one of the broker's, stats.c) with a description. */
void reply_error(router *r, amp_request *req, const char *code, const char *desc);
/* UNHANDLED, described the way Twisted does. */
void reply_unhandled(router *r, amp_request *req);
/* LIMIT_EXCEEDED with a description saying which limit; *counter counted. */
void reply_limit(router *r, amp_request *req, uint64_t *counter, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A name or pattern over max_command_name is refused before anything is
 * stored or matched: 1 if refused (and answered, *counter counted). */
int reply_too_long(router *r, amp_request *req, const amp_pair *name, uint64_t *counter);

#endif
