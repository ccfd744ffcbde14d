/* What the three files of the session share: the session's state and the
 * helpers each part calls in the others. session.c: lifecycle, accounting,
 * output and feeding; session_requests.c: responders and incoming calls;
 * session_calls.c: outgoing calls and their results. Internal. */
#ifndef AMP_SESSION_PRIVATE_H
#define AMP_SESSION_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "alloc_internal.h"
#include "amp/session.h"
#include "amp/strmap.h"
#include "calltable.h"

struct amp_request {
    amp_session *s;
    amp_request *prev, *next;
    uint8_t *tag;            /* copy of _ask, NULL without */
    size_t tag_len;
    amp_pair command;        /* _command and a copy of its value */
    amp_allocator alloc;     /* the session's: a request outlives it */
};

struct responder {
    amp_responder_cb cb;
    void *user_data;
    amp_destroy_cb destroy;  /* runs once, when the responder goes */
};

struct amp_session {
    amp_session_config cfg;
    amp_allocator alloc;     /* a copy of cfg.allocator, or malloc's */
    amp_decoder *dec;
    amp_buf out;        /* bytes to write */
    size_t out_head;    /* bytes of `out` already consumed */
    uint64_t out_total;
    amp_buf held;       /* output held back during StartTLS */
    int tls_pending;    /* a StartTLS call is outstanding */
    int over_high_water;

    amp_calltable calls;
    uint64_t next_tag;  /* Twisted's counter: starts at 1, used by every call */

    amp_strmap responders;
    struct responder fallback;
    amp_request *requests; /* unanswered requests (doubly linked) */
    size_t nrequests;

    uint64_t late_answers;
    size_t request_bytes;     /* held by the unanswered requests */
    size_t acct_out, acct_in, acct_req; /* this session's share of cfg.usage */
    int closed;
    int depth;          /* nesting of public entry points that run callbacks */
    int free_pending;
};

/* The session's events, never NULL. */
const amp_session_events *amp__session_ev(const amp_session *s);
#define EV(s) amp__session_ev(s)

/* Entry points that may run callbacks bracket them with these, so that
 * amp_session_free() from a callback waits for the outermost to return. */
void amp__session_enter(amp_session *s);
void amp__session_leave(amp_session *s);
/* Keep this session's share of cfg.usage equal to what it holds now. */
void amp__session_account(amp_session *s);
/* Append one box, all or nothing: reserved pairs first, then the caller's. */
amp_err amp__session_write_box(amp_session *s, const amp_pair *head, size_t nh,
                               const amp_pair *args, size_t na);
/* Output appended by someone else (held-back StartTLS output). */
void amp__session_output_appended(amp_session *s, size_t before, size_t n);
/* The session ends for its own reasons: complete every call, then report. */
void amp__session_self_close(amp_session *s, int reason);
/* The peer broke the protocol. */
void amp__session_protocol_error(amp_session *s, int err);
/* Tell the owner the session closed itself. */
void amp__session_report_closed(amp_session *s, int reason);

/* session_requests.c */
void amp__session_dispatch_call(amp_session *s, const amp_box *box, const amp_message *m);
/* Detach unanswered requests (they outlive the session) and release the
 * responders, running their destroy-notify. */
void amp__session_release_serving(amp_session *s);

/* session_calls.c */
void amp__session_dispatch_result(amp_session *s, const amp_box *box, const amp_message *m);
/* Complete every outstanding call with `reason` and empty the table. */
void amp__session_complete_all(amp_session *s, int reason);

#endif
