/* The conversation layer, part three: calling. Tags, outstanding calls,
 * their deadlines, StartTLS, and the answers and errors that complete them.
 * The caller's clock: deadlines and "now" are the caller's monotonic values
 * in whatever unit it chooses; nothing here reads a clock. */
#include <string.h>

#include "session_internal.h"
#include "reserved_keys.h"
#include "session_private.h"

/* Give back call table memory after a burst (never while closing, which
 * walks the table). */
static void trim_calls(amp_session *s)
{
    if (!s->closed)
        amp_calltable_trim(&s->calls);
}

size_t amp__session_calltable_memory(const amp_session *s)
{
    return amp_calltable_memory(&s->calls);
}

static void complete(amp_session *s, struct amp_call *c, const amp_result *r)
{
    amp_result_cb cb = c->cb;
    void *ud = c->user_data;
    uint64_t id = c->id;
    amp_calltable_remove(&s->calls, c);
    if (cb)
        cb(s, id, r, ud);
}

void amp__session_complete_all(amp_session *s, int reason)
{
    /* the session is closed: no call can be added, so the slab does not move */
    amp_result r = {reason, NULL, NULL, NULL};
    uint32_t cursor = 0;
    struct amp_call *c;
    while ((c = amp_calltable_next_live(&s->calls, &cursor)))
        complete(s, c, &r);
    amp_calltable_clear(&s->calls);
}

/* Our tags are the lowercase hex of the call id, without leading zeros. */
static int parse_tag(const amp_pair *tag, uint64_t *id)
{
    const uint8_t *p = tag->value;
    size_t n = tag->value_len;
    if (n == 0 || n > 16 || p[0] == '0')
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = (p[i] >= '0' && p[i] <= '9') ? p[i] - '0'
                : (p[i] >= 'a' && p[i] <= 'f') ? p[i] - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *id = v;
    return 0;
}

static size_t format_tag(uint64_t id, char *out)
{
    char rev[16];
    size_t n = 0;
    do {
        rev[n++] = "0123456789abcdef"[id & 15];
        id >>= 4;
    } while (id);
    for (size_t i = 0; i < n; i++)
        out[i] = rev[n - 1 - i];
    return n;
}

static void release_held(amp_session *s)
{
    s->tls_pending = 0;
    if (s->held.len) {
        size_t n = s->held.len;
        size_t before = s->out.len - s->out_head;
        int moved = amp_buf_append(&s->out, s->held.data, n) == AMP_OK;
        s->held.len = 0;
        amp__session_account(s);
        if (!moved) { /* dropping calls silently would break the one-completion rule */
            amp__session_self_close(s, AMP_E_NOMEM);
            return;
        }
        amp__session_output_appended(s, before, n);
    }
}

void amp__session_dispatch_result(amp_session *s, const amp_box *box, const amp_message *m)
{
    uint64_t id;
    if (parse_tag(m->tag, &id)) {
        amp__session_protocol_error(s, AMP_E_UNKNOWN_TAG);
        return;
    }
    struct amp_call *c = amp_calltable_find(&s->calls, id);
    if (!c) {
        /* Tags are a counter and the table holds only calls in flight, so
         * a tag below the counter that is not there belongs to a call that
         * already ended (timed out, cancelled, or sent without _ask): a late
         * answer, dropped. A tag never issued is a protocol error. */
        if (id < s->next_tag)
            s->late_answers++;
        else
            amp__session_protocol_error(s, AMP_E_UNKNOWN_TAG);
        return;
    }
    amp_result r = {AMP_OK, box, NULL, NULL};
    if (m->kind == AMP_KIND_ERROR) {
        r.status = AMP_E_REMOTE;
        r.error_code = m->error_code;
        r.error_description = m->error_description;
    }
    if (c->starttls) {
        if (r.status == AMP_OK && EV(s)->start_tls)
            EV(s)->start_tls(s, s->cfg.user_data);
        if (!s->closed)
            release_held(s);
        /* calls made from the event may have moved the table; closing
         * completed this call too */
        c = s->closed ? NULL : amp_calltable_find(&s->calls, id);
        if (!c)
            return;
    }
    complete(s, c, &r);
    trim_calls(s);
}

static amp_err do_call(amp_session *s, const uint8_t *command, size_t command_len,
                       const amp_pair *args, size_t n, const amp_call_opts *opts,
                       amp_result_cb cb, void *user_data, uint64_t *call_id, int starttls)
{
    if (call_id)
        *call_id = 0;
    if (!s || !command || !command_len || (!args && n))
        return AMP_E_INVALID;
    if (s->closed)
        return AMP_E_CLOSED;
    for (size_t i = 0; i < n; i++)
        if (amp__key_reserved(args[i].key, args[i].key_len))
            return AMP_E_INVALID;
    int no_answer = opts && opts->no_answer;
    uint64_t id = s->next_tag;
    char tag[16];
    size_t tn = format_tag(id, tag);
    amp_pair head[2] = {
        {(const uint8_t *)"_ask", 4, (const uint8_t *)tag, tn},
        {(const uint8_t *)"_command", 8, command, command_len},
    };
    struct amp_call *c = NULL;
    if (!no_answer) {
        c = amp_calltable_add(&s->calls, id);
        if (!c)
            return AMP_E_NOMEM;
        /* set before writing: the events write_box fires may close the
         * session, which must then complete this call like any other */
        c->cb = cb;
        c->user_data = user_data;
        c->starttls = starttls;
    }
    s->next_tag++; /* the counter advances for every call, as in Twisted; a
                      call made from write_box's events takes the next tag */
    amp_err r = amp__session_write_box(s, no_answer ? head + 1 : head, no_answer ? 1 : 2, args,
                                       n);
    if (r != AMP_OK) { /* no event ran: nothing else took a tag or moved the table */
        s->next_tag--;
        if (c)
            amp_calltable_remove(&s->calls, c);
        return r;
    }
    if (c && call_id)
        *call_id = id;
    if (c && opts && opts->has_deadline && (c = amp_calltable_find(&s->calls, id)))
        amp_calltable_set_deadline(&s->calls, c, opts->deadline); /* events may move it */
    return AMP_OK;
}

amp_err amp_session_call(amp_session *s, const uint8_t *command, size_t command_len,
                         const amp_pair *args, size_t n, const amp_call_opts *opts,
                         amp_result_cb cb, void *user_data, uint64_t *call_id)
{
    return do_call(s, command, command_len, args, n, opts, cb, user_data, call_id, 0);
}

amp_err amp_session_call_str(amp_session *s, const char *command, const amp_pair *args, size_t n,
                             const amp_call_opts *opts, amp_result_cb cb, void *user_data,
                             uint64_t *call_id)
{
    if (!command)
        return AMP_E_INVALID;
    return do_call(s, (const uint8_t *)command, strlen(command), args, n, opts, cb, user_data,
                   call_id, 0);
}

amp_err amp_session_start_tls(amp_session *s, amp_result_cb cb, void *user_data)
{
    if (!s)
        return AMP_E_INVALID;
    if (s->tls_pending)
        return AMP_E_INVALID;
    amp_err r = do_call(s, (const uint8_t *)"StartTLS", 8, NULL, 0, NULL, cb, user_data, NULL, 1);
    if (r == AMP_OK)
        s->tls_pending = 1;
    return r;
}

/* Complete a call locally (cancel, timeout). Its entry goes at once: a late
 * answer is recognised by its tag (below next_tag, not in the table). */
static void kill_call(amp_session *s, struct amp_call *c, int status)
{
    int starttls = c->starttls;
    amp_result r = {status, NULL, NULL, NULL};
    complete(s, c, &r);
    /* whether the peer is now speaking TLS is unknown: the connection is over */
    if (starttls)
        amp__session_self_close(s, status);
}

amp_err amp_session_cancel(amp_session *s, uint64_t call_id)
{
    if (!s)
        return AMP_E_INVALID;
    struct amp_call *c = amp_calltable_find(&s->calls, call_id);
    if (!c)
        return AMP_E_INVALID;
    amp__session_enter(s);
    kill_call(s, c, AMP_E_CANCELLED);
    trim_calls(s);
    amp__session_leave(s);
    return AMP_OK;
}

void amp_session_expire(amp_session *s, uint64_t now)
{
    if (!s)
        return;
    amp__session_enter(s);
    struct amp_call *c;
    while (!s->closed && (c = amp_calltable_due(&s->calls, now)))
        kill_call(s, c, AMP_E_TIMEOUT);
    trim_calls(s);
    amp__session_leave(s);
}

int amp_session_next_deadline(const amp_session *s, uint64_t *deadline)
{
    return amp_calltable_next_deadline(&s->calls, deadline);
}

uint64_t amp_session_late_answers(const amp_session *s)
{
    return s->late_answers;
}

size_t amp_session_outstanding(const amp_session *s)
{
    return amp_calltable_live(&s->calls);
}
