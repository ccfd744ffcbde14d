/* The conversation layer: tags, outstanding calls, responders, errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/session.h"
#include "calltable.h"
#include "session_internal.h"
#include "strmap.h"

struct amp_request {
    amp_session *s;
    amp_request *prev, *next;
    uint8_t *tag;            /* copy of _ask, NULL without */
    size_t tag_len;
    amp_pair command;        /* _command and a copy of its value */
};

struct responder {
    amp_responder_cb cb;
    void *user_data;
};

struct amp_session {
    amp_session_config cfg;
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

static const amp_session_events no_events;

#define EV(s) ((s)->cfg.events ? (s)->cfg.events : &no_events)

amp_err amp_session_new(amp_session **out, const amp_session_config *cfg)
{
    if (!out)
        return AMP_E_INVALID;
    *out = NULL;
    amp_session *s = calloc(1, sizeof *s);
    if (!s)
        return AMP_E_NOMEM;
    if (cfg)
        s->cfg = *cfg;
    if (!s->cfg.output_high_water)
        s->cfg.output_high_water = 1u << 20;
    if (!s->cfg.output_hard_cap)
        s->cfg.output_hard_cap = 64u << 20;
    amp_buf_init(&s->out);
    amp_buf_init(&s->held);
    s->next_tag = 1;
    amp_err r = amp_decoder_new(&s->dec, &s->cfg.limits);
    if (r == AMP_OK && amp_calltable_init(&s->calls))
        r = AMP_E_NOMEM;
    if (r == AMP_OK) {
        int e = amp_strmap_init(&s->responders);
        r = e == -2 ? AMP_E_IO : e ? AMP_E_NOMEM : AMP_OK;
    }
    if (r != AMP_OK) {
        amp_decoder_free(s->dec);
        amp_calltable_free(&s->calls);
        amp_strmap_free(&s->responders);
        free(s);
        return r;
    }
    *out = s;
    return AMP_OK;
}

static size_t request_size(const amp_request *r)
{
    return sizeof *r + r->tag_len + r->command.value_len;
}

static void account(amp_session *s);

static void request_unlink(amp_request *r)
{
    if (r->s && (r->prev || r->next || r->s->requests == r)) {
        r->s->nrequests--;
        r->s->request_bytes -= request_size(r);
        account(r->s);
    }
    if (r->prev)
        r->prev->next = r->next;
    else if (r->s)
        r->s->requests = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void request_free(amp_request *r)
{
    request_unlink(r);
    free(r->tag);
    free((void *)r->command.value);
    free(r);
}

static void really_free(amp_session *s)
{
    /* unanswered requests outlive the session: answering them later fails
     * with AMP_E_CLOSED and frees them */
    while (s->requests) {
        amp_request *r = s->requests;
        s->requests = r->next;
        r->s = NULL;
        r->prev = r->next = NULL;
    }
    amp_calltable_free(&s->calls);
    amp_strmap_free(&s->responders);
    amp_decoder_free(s->dec);
    amp_buf_free(&s->out);
    amp_buf_free(&s->held);
    free(s);
}

/* Keep this session's share of the shared accounting equal to what it
 * holds now. Called after every change of the output, the held-back output
 * or the decoder's partial box. */
static void account(amp_session *s)
{
    amp_usage *u = s->cfg.usage;
    if (!u)
        return;
    size_t out = 0, in = 0, req = 0;
    if (!s->free_pending) {
        out = s->out.len - s->out_head + s->held.len;
        in = amp_session_input_pending(s);
        req = s->request_bytes;
    }
    u->output_bytes = u->output_bytes - s->acct_out + out;
    u->input_bytes = u->input_bytes - s->acct_in + in;
    u->request_bytes = u->request_bytes - s->acct_req + req;
    s->acct_out = out;
    s->acct_in = in;
    s->acct_req = req;
}

size_t amp_session_request_bytes(const amp_session *s)
{
    return s ? s->request_bytes : 0;
}

size_t amp_session_input_pending(const amp_session *s)
{
    return s && !s->closed ? amp_decoder_pending(s->dec) : 0;
}

/* Entry points that may run callbacks bracket them with enter()/leave(). */
static void enter(amp_session *s)
{
    s->depth++;
}

static void leave(amp_session *s)
{
    if (--s->depth == 0 && s->free_pending)
        really_free(s);
}

void amp_session_free(amp_session *s)
{
    if (!s || s->free_pending)
        return;
    enter(s);
    amp_session_close(s, AMP_E_CLOSED);
    s->free_pending = 1;
    account(s); /* gone for its owner: nothing is counted from here on */
    leave(s);
}

/* ---- output ----------------------------------------------------------- */

static void output_grew(amp_session *s, size_t before)
{
    if (before == 0 && EV(s)->output_ready)
        EV(s)->output_ready(s, s->cfg.user_data);
}

static void check_high_water(amp_session *s)
{
    size_t pending = s->out.len - s->out_head;
    if (!s->over_high_water && pending > s->cfg.output_high_water) {
        s->over_high_water = 1;
        if (EV(s)->backpressure)
            EV(s)->backpressure(s, 1, s->cfg.user_data);
    } else if (s->over_high_water && pending <= s->cfg.output_high_water / 2) {
        s->over_high_water = 0;
        if (EV(s)->backpressure)
            EV(s)->backpressure(s, 0, s->cfg.user_data);
    }
}

/* Append one box: reserved pairs first, then the caller's. All or nothing:
 * every pair is checked and the room reserved before a byte is written, so
 * an error leaves the output (and the count of queued bytes, which marks
 * where StartTLS begins) exactly as it was. */
static amp_err write_box(amp_session *s, const amp_pair *head, size_t nh, const amp_pair *args,
                         size_t na)
{
    amp_buf *b = s->tls_pending ? &s->held : &s->out;
    size_t hsize, asize = 2;
    amp_err r = amp_box_measure(head, nh, &hsize);
    if (r == AMP_OK && na)
        r = amp_box_measure(args, na, &asize);
    if (r != AMP_OK)
        return r;
    size_t size = hsize + asize - 2; /* one terminator */
    if (s->out.len - s->out_head + s->held.len + size > s->cfg.output_hard_cap)
        return AMP_E_BACKPRESSURE;
    /* compact consumed bytes before growing */
    if (b == &s->out && s->out_head && s->out.len + size > s->out.cap) {
        memmove(s->out.data, s->out.data + s->out_head, s->out.len - s->out_head);
        s->out.len -= s->out_head;
        s->out_head = 0;
    }
    r = amp_buf_reserve(b, size);
    if (r != AMP_OK)
        return r;
    size_t before = s->out.len - s->out_head, mark = b->len;
    for (size_t i = 0; r == AMP_OK && i < nh; i++)
        r = amp_encode_pair(b, head[i].key, head[i].key_len, head[i].value, head[i].value_len);
    for (size_t i = 0; r == AMP_OK && i < na; i++)
        r = amp_encode_pair(b, args[i].key, args[i].key_len, args[i].value, args[i].value_len);
    if (r == AMP_OK)
        r = amp_encode_end(b);
    if (r == AMP_OK && b->len - mark != size)
        r = AMP_E_INVALID; /* cannot happen: the pairs were measured */
    if (r != AMP_OK) {
        b->len = mark;
        return r;
    }
    account(s);
    if (b == &s->out) {
        s->out_total += size;
        check_high_water(s);
        output_grew(s, before);
    }
    return AMP_OK;
}

void amp_session_output(const amp_session *s, const uint8_t **p, size_t *n)
{
    static const uint8_t nothing[1];
    *p = s->out.data ? s->out.data + s->out_head : nothing;
    *n = s->out.len - s->out_head;
}

void amp_session_consume(amp_session *s, size_t n)
{
    size_t pending = s->out.len - s->out_head;
    if (n > pending)
        n = pending;
    s->out_head += n;
    if (s->out_head == s->out.len)
        s->out.len = s->out_head = 0;
    account(s);
    if (s->over_high_water)
        check_high_water(s);
}

uint64_t amp_session_output_total(const amp_session *s)
{
    return s->out_total;
}

/* ---- closing ----------------------------------------------------------- */

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

void amp_session_close(amp_session *s, int reason)
{
    if (!s || s->closed)
        return;
    enter(s);
    s->closed = 1;
    s->tls_pending = 0;
    amp_buf_free(&s->held);
    account(s);
    /* no call can be added from here on, so the slab does not move */
    amp_result r = {reason, NULL, NULL, NULL};
    uint32_t cursor = 0;
    struct amp_call *c;
    while ((c = amp_calltable_next_live(&s->calls, &cursor)))
        complete(s, c, &r);
    amp_calltable_clear(&s->calls);
    /* unanswered requests stay valid; answering them now fails */
    leave(s);
}

int amp_session_is_closed(const amp_session *s)
{
    return s->closed;
}

/* Tell the owner that the session closed itself (not when the owner has
 * already let go of it). */
static void report_closed(amp_session *s, int reason)
{
    if (!s->free_pending && EV(s)->closed)
        EV(s)->closed(s, reason, s->cfg.user_data);
}

/* The session ends for its own reasons: complete every call, then report. */
static void self_close(amp_session *s, int reason)
{
    if (s->closed)
        return;
    enter(s);
    amp_session_close(s, AMP_E_CLOSED);
    report_closed(s, reason);
    leave(s);
}

static void protocol_error(amp_session *s, int err)
{
    uint64_t off = amp_decoder_error_offset(s->dec);
    enter(s);
    amp_session_close(s, AMP_E_CLOSED);
    if (EV(s)->protocol_error)
        EV(s)->protocol_error(s, err, off, s->cfg.user_data);
    report_closed(s, err);
    leave(s);
}

/* ---- serving ----------------------------------------------------------- */

amp_err amp_session_serve(amp_session *s, const uint8_t *command, size_t n, amp_responder_cb cb,
                          void *user_data)
{
    if (!s || !command || !n || !cb)
        return AMP_E_INVALID;
    struct responder *r = malloc(sizeof *r);
    if (!r)
        return AMP_E_NOMEM;
    r->cb = cb;
    r->user_data = user_data;
    int e = amp_strmap_put(&s->responders, command, n, r);
    if (e) {
        free(r);
        return e > 0 ? AMP_E_DUPLICATE : AMP_E_NOMEM;
    }
    return AMP_OK;
}

amp_err amp_session_serve_str(amp_session *s, const char *command, amp_responder_cb cb,
                              void *user_data)
{
    if (!command)
        return AMP_E_INVALID;
    return amp_session_serve(s, (const uint8_t *)command, strlen(command), cb, user_data);
}

amp_err amp_session_unserve_str(amp_session *s, const char *command)
{
    if (!s || !command)
        return AMP_E_INVALID;
    void *r = amp_strmap_remove(&s->responders, (const uint8_t *)command, strlen(command));
    if (!r)
        return AMP_E_INVALID;
    free(r);
    return AMP_OK;
}

void amp_session_serve_fallback(amp_session *s, amp_responder_cb cb, void *user_data)
{
    s->fallback.cb = cb;
    s->fallback.user_data = user_data;
}

static amp_pair request_tag_pair(const amp_request *req, const char *key)
{
    amp_pair p = {(const uint8_t *)key, strlen(key), req->tag, req->tag_len};
    return p;
}

static void fatal_close(amp_session *s)
{
    enter(s);
    if (EV(s)->close_after_flush)
        EV(s)->close_after_flush(s, s->cfg.user_data);
    amp_session_close(s, AMP_E_CLOSED);
    report_closed(s, AMP_E_CLOSED);
    leave(s);
}

static amp_err send_error_bytes(amp_session *s, const uint8_t *tag, size_t tag_len,
                                const uint8_t *code, size_t code_len, const uint8_t *desc,
                                size_t desc_len)
{
    amp_pair head[3] = {
        {(const uint8_t *)"_error", 6, tag, tag_len},
        {(const uint8_t *)"_error_code", 11, code, code_len},
        {(const uint8_t *)"_error_description", 18, desc, desc_len},
    };
    return write_box(s, head, 3, NULL, 0);
}

static amp_err send_error(amp_session *s, const uint8_t *tag, size_t tag_len, const char *code,
                          const uint8_t *desc, size_t desc_len)
{
    return send_error_bytes(s, tag, tag_len, (const uint8_t *)code, strlen(code), desc, desc_len);
}

/* Append `p` cut to at most `max` bytes: whole when it fits, else a prefix
 * (not splitting a UTF-8 sequence) and "... (N bytes)". */
static amp_err append_bounded(amp_buf *out, const uint8_t *p, size_t n, size_t max)
{
    if (n <= max)
        return amp_buf_append(out, p, n);
    char marker[48];
    int mn = snprintf(marker, sizeof marker, "... (%zu bytes)", n);
    size_t keep = max - (size_t)mn;
    for (int i = 0; i < 3 && keep && (p[keep] & 0xc0) == 0x80; i++)
        keep--;
    amp_err r = amp_buf_reserve(out, keep + (size_t)mn);
    if (r == AMP_OK) {
        amp_buf_append(out, p, keep);
        amp_buf_append(out, (const uint8_t *)marker, (size_t)mn);
    }
    return r;
}

amp_err amp_unhandled_description(amp_buf *out, const uint8_t *name, size_t n)
{
    if (!out || (!name && n))
        return AMP_E_INVALID;
    size_t len = out->len;
    amp_err r = amp_buf_append(out, (const uint8_t *)"Unhandled Command: ", 19);
    if (r == AMP_OK)
        r = amp_bytes_repr(out, name, n <= AMP_UNHANDLED_NAME_MAX ? n : AMP_UNHANDLED_NAME_MAX);
    if (r == AMP_OK && n > AMP_UNHANDLED_NAME_MAX) {
        char marker[48];
        int mn = snprintf(marker, sizeof marker, "... (%zu bytes)", n);
        r = amp_buf_append(out, (const uint8_t *)marker, (size_t)mn);
    }
    if (r != AMP_OK)
        out->len = len;
    return r;
}

/* An error box that always fits: a code that cannot be sent becomes
 * Twisted's UNKNOWN, a description over the value limit is cut. */
static amp_err send_bounded_error(amp_session *s, const uint8_t *tag, size_t tag_len,
                                  const uint8_t *code, size_t code_len, const uint8_t *desc,
                                  size_t desc_len)
{
    if (!code_len || code_len > AMP_MAX_VALUE_LEN) {
        code = (const uint8_t *)"UNKNOWN";
        code_len = 7;
        desc = (const uint8_t *)"Unknown Error";
        desc_len = 13;
    }
    if (desc_len <= AMP_MAX_VALUE_LEN)
        return send_error_bytes(s, tag, tag_len, code, code_len, desc, desc_len);
    amp_buf cut;
    amp_buf_init(&cut);
    amp_err r = append_bounded(&cut, desc, desc_len, AMP_MAX_VALUE_LEN);
    if (r == AMP_OK)
        r = send_error_bytes(s, tag, tag_len, code, code_len, cut.data, cut.len);
    amp_buf_free(&cut);
    return r;
}

static int reserved_key(const amp_pair *p)
{
    return p->key_len && p->key[0] == '_' &&
           ((p->key_len == 4 && !memcmp(p->key, "_ask", 4)) ||
            (p->key_len == 7 && !memcmp(p->key, "_answer", 7)) ||
            (p->key_len == 6 && !memcmp(p->key, "_error", 6)) ||
            (p->key_len == 8 && !memcmp(p->key, "_command", 8)) ||
            (p->key_len == 11 && !memcmp(p->key, "_error_code", 11)) ||
            (p->key_len == 18 && !memcmp(p->key, "_error_description", 18)));
}

amp_err amp_request_answer(amp_request *req, const amp_pair *pairs, size_t n)
{
    if (!req || (!pairs && n))
        return AMP_E_INVALID;
    amp_session *s = req->s;
    amp_err r = AMP_OK;
    if (!s || s->closed) {
        r = AMP_E_CLOSED;
    } else if (req->tag) {
        for (size_t i = 0; i < n; i++)
            if (reserved_key(&pairs[i]))
                r = AMP_E_INVALID;
        amp_pair head = request_tag_pair(req, "_answer");
        if (r == AMP_OK)
            r = write_box(s, &head, 1, pairs, n);
        amp_err sent = r;
        if (r != AMP_OK && r != AMP_E_BACKPRESSURE) /* Twisted's answer to a bad answer */
            sent = send_error(s, req->tag, req->tag_len, "UNKNOWN",
                              (const uint8_t *)"Unknown Error", 13);
        if (sent != AMP_OK) { /* the call would go unanswered: the conversation is over */
            request_free(req);
            /* over the hard cap: the peer does not read what it asked for */
            self_close(s, sent);
            return r;
        }
    }
    request_free(req);
    return r;
}

amp_err amp_request_error(amp_request *req, const char *code, const char *description,
                          int fatal)
{
    if (!req || !code || !description || !*code)
        return AMP_E_INVALID;
    return amp_request_error_bytes(req, (const uint8_t *)code, strlen(code),
                                   (const uint8_t *)description, strlen(description), fatal);
}

amp_err amp_request_error_bytes(amp_request *req, const uint8_t *code, size_t code_len,
                                const uint8_t *description, size_t description_len, int fatal)
{
    if (!req || !code || !code_len || (!description && description_len))
        return AMP_E_INVALID;
    amp_session *s = req->s;
    amp_err r = AMP_OK, sent = AMP_OK;
    if (!s || s->closed) {
        r = sent = AMP_E_CLOSED;
    } else if (req->tag) {
        if (!description)
            description = (const uint8_t *)"";
        r = sent = send_error_bytes(s, req->tag, req->tag_len, code, code_len, description,
                                    description_len);
        if (r != AMP_OK && r != AMP_E_BACKPRESSURE && r != AMP_E_NOMEM)
            sent = send_bounded_error(s, req->tag, req->tag_len, code, code_len, description,
                                      description_len);
    }
    request_free(req);
    if (s && !s->closed && sent != AMP_OK)
        self_close(s, sent); /* the call would go unanswered */
    else if (s && !s->closed && fatal)
        fatal_close(s);
    return r;
}

int amp_request_wants_answer(const amp_request *req)
{
    return req && req->tag != NULL;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

static void dispatch_call(amp_session *s, const amp_box *box, const amp_message *m)
{
    if (m->tag && m->tag->value_len > AMP_MAX_TAG_LEN) {
        protocol_error(s, AMP_E_TAG_TOO_LONG);
        return;
    }
    struct responder *resp = amp_strmap_get(&s->responders, m->command->value,
                                            m->command->value_len);
    if (!resp && s->fallback.cb)
        resp = &s->fallback;
    if (!resp) {
        if (!m->tag) { /* Twisted drops the connection */
            protocol_error(s, AMP_E_UNHANDLED_NO_ASK);
            return;
        }
        amp_buf desc;
        amp_buf_init(&desc);
        amp_err r = amp_unhandled_description(&desc, m->command->value, m->command->value_len);
        if (r == AMP_OK)
            r = send_error(s, m->tag->value, m->tag->value_len, "UNHANDLED", desc.data,
                           desc.len);
        amp_buf_free(&desc);
        if (r != AMP_OK)
            self_close(s, r);
        return;
    }
    amp_request *req = calloc(1, sizeof *req);
    if (req) {
        req->command.key = (const uint8_t *)"_command";
        req->command.key_len = 8;
        req->command.value = dup_bytes(m->command->value, m->command->value_len);
        req->command.value_len = m->command->value_len;
        if (m->tag) {
            req->tag = dup_bytes(m->tag->value, m->tag->value_len);
            req->tag_len = m->tag->value_len;
        }
    }
    if (!req || !req->command.value || (m->tag && !req->tag)) {
        if (req)
            request_free(req);
        if (m->tag && send_error(s, m->tag->value, m->tag->value_len, "UNKNOWN",
                                 (const uint8_t *)"Unknown Error", 13) != AMP_OK)
            self_close(s, AMP_E_NOMEM); /* the call would go unanswered */
        return;
    }
    req->s = s;
    req->next = s->requests;
    if (s->requests)
        s->requests->prev = req;
    s->requests = req;
    s->nrequests++;
    s->request_bytes += request_size(req);
    account(s);
    resp->cb(s, req, box, resp->user_data);
}

const amp_pair *amp_request_command(const amp_request *req)
{
    return req ? &req->command : NULL;
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

static void release_held(amp_session *s)
{
    s->tls_pending = 0;
    if (s->held.len) {
        size_t n = s->held.len;
        size_t before = s->out.len - s->out_head;
        int moved = amp_buf_append(&s->out, s->held.data, n) == AMP_OK;
        s->held.len = 0;
        account(s);
        if (!moved) { /* dropping calls silently would break the one-completion rule */
            self_close(s, AMP_E_NOMEM);
            return;
        }
        s->out_total += n;
        check_high_water(s);
        output_grew(s, before);
    }
}

static void dispatch_result(amp_session *s, const amp_box *box, const amp_message *m)
{
    uint64_t id;
    if (parse_tag(m->tag, &id)) {
        protocol_error(s, AMP_E_UNKNOWN_TAG);
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
            protocol_error(s, AMP_E_UNKNOWN_TAG);
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

amp_err amp_session_feed(amp_session *s, const uint8_t *p, size_t n)
{
    if (!s || (!p && n))
        return AMP_E_INVALID;
    if (s->closed)
        return AMP_E_CLOSED;
    enter(s);
    amp_err result = AMP_OK;
    amp_decoder_feed(s->dec, p, n);
    while (!s->closed) {
        amp_box box;
        amp_err r = amp_decoder_next(s->dec, &box);
        account(s);
        if (r == AMP_AGAIN)
            break;
        if (r != AMP_OK) {
            result = r;
            protocol_error(s, r);
            break;
        }
        amp_message m;
        r = amp_box_classify(&box, &m);
        if (r != AMP_OK) {
            result = r;
            protocol_error(s, r);
            break;
        }
        if (m.kind == AMP_KIND_CALL)
            dispatch_call(s, &box, &m);
        else
            dispatch_result(s, &box, &m);
    }
    if (s->closed && result == AMP_OK)
        result = AMP_E_CLOSED;
    leave(s);
    return result;
}

/* ---- calling ------------------------------------------------------------ */

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
        if (reserved_key(&args[i]))
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
    amp_err r = write_box(s, no_answer ? head + 1 : head, no_answer ? 1 : 2, args, n);
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
        self_close(s, status);
}

amp_err amp_session_cancel(amp_session *s, uint64_t call_id)
{
    if (!s)
        return AMP_E_INVALID;
    struct amp_call *c = amp_calltable_find(&s->calls, call_id);
    if (!c)
        return AMP_E_INVALID;
    enter(s);
    kill_call(s, c, AMP_E_CANCELLED);
    trim_calls(s);
    leave(s);
    return AMP_OK;
}

void amp_session_expire(amp_session *s, uint64_t now)
{
    if (!s)
        return;
    enter(s);
    struct amp_call *c;
    while (!s->closed && (c = amp_calltable_due(&s->calls, now)))
        kill_call(s, c, AMP_E_TIMEOUT);
    trim_calls(s);
    leave(s);
}

int amp_session_next_deadline(const amp_session *s, uint64_t *deadline)
{
    return amp_calltable_next_deadline(&s->calls, deadline);
}

size_t amp_session_pending_requests(const amp_session *s)
{
    return s ? s->nrequests : 0;
}

amp_err amp_session_set_limits(amp_session *s, const amp_limits *limits)
{
    return s ? amp_decoder_set_limits(s->dec, limits) : AMP_E_INVALID;
}

uint64_t amp_session_late_answers(const amp_session *s)
{
    return s->late_answers;
}

size_t amp_session_outstanding(const amp_session *s)
{
    return amp_calltable_live(&s->calls);
}
