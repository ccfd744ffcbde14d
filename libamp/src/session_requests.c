/* The conversation layer, part two: serving. Responders, the requests that
 * incoming calls become, and the answers and errors that end them. */
#include <string.h>

#include "reserved_keys.h"
#include "session_private.h"

/* ---- responders ---------------------------------------------------------- */

static void responder_release(struct responder *r)
{
    amp_destroy_cb destroy = r->destroy;
    r->destroy = NULL;
    if (destroy)
        destroy(r->user_data);
}

amp_err amp_session_serve_full(amp_session *s, const uint8_t *command, size_t n,
                               amp_responder_cb cb, void *user_data, amp_destroy_cb destroy)
{
    if (!s || !command || !n || !cb)
        return AMP_E_INVALID;
    struct responder *r = amp__alloc(&s->alloc, sizeof *r);
    if (!r)
        return AMP_E_NOMEM;
    r->cb = cb;
    r->user_data = user_data;
    r->destroy = destroy;
    amp_err e = amp_strmap_put(&s->responders, command, n, r);
    if (e != AMP_OK) {
        amp__free(&s->alloc, r);
        return e;
    }
    return AMP_OK;
}

amp_err amp_session_serve(amp_session *s, const uint8_t *command, size_t n, amp_responder_cb cb,
                          void *user_data)
{
    return amp_session_serve_full(s, command, n, cb, user_data, NULL);
}

amp_err amp_session_serve_str(amp_session *s, const char *command, amp_responder_cb cb,
                              void *user_data)
{
    if (!command)
        return AMP_E_INVALID;
    return amp_session_serve_full(s, (const uint8_t *)command, strlen(command), cb, user_data,
                                  NULL);
}

amp_err amp_session_unserve(amp_session *s, const uint8_t *command, size_t n)
{
    if (!s || !command)
        return AMP_E_INVALID;
    struct responder *r = amp_strmap_remove(&s->responders, command, n);
    if (!r)
        return AMP_E_INVALID;
    responder_release(r);
    amp__free(&s->alloc, r);
    return AMP_OK;
}

amp_err amp_session_unserve_str(amp_session *s, const char *command)
{
    if (!command)
        return AMP_E_INVALID;
    return amp_session_unserve(s, (const uint8_t *)command, strlen(command));
}

void amp_session_serve_fallback_full(amp_session *s, amp_responder_cb cb, void *user_data,
                                     amp_destroy_cb destroy)
{
    if (!s)
        return;
    struct responder old = s->fallback;
    s->fallback.cb = cb;
    s->fallback.user_data = user_data;
    s->fallback.destroy = destroy;
    responder_release(&old); /* after the switch: its destroy may serve again */
}

void amp_session_serve_fallback(amp_session *s, amp_responder_cb cb, void *user_data)
{
    amp_session_serve_fallback_full(s, cb, user_data, NULL);
}

static void release_each(const uint8_t *key, size_t n, void *value, void *ud)
{
    responder_release(value);
}

void amp__session_release_serving(amp_session *s)
{
    /* unanswered requests outlive the session: answering them later fails
     * with AMP_E_CLOSED and frees them */
    while (s->requests) {
        amp_request *r = s->requests;
        s->requests = r->next;
        r->s = NULL;
        r->prev = r->next = NULL;
    }
    amp_strmap_foreach(&s->responders, release_each, NULL);
    responder_release(&s->fallback);
}

/* ---- requests ------------------------------------------------------------ */

static size_t request_size(const amp_request *r)
{
    return sizeof *r + r->tag_len + r->command.value_len;
}

static void request_unlink(amp_request *r)
{
    if (r->s && (r->prev || r->next || r->s->requests == r)) {
        r->s->nrequests--;
        r->s->request_bytes -= request_size(r);
        amp__session_account(r->s);
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
    amp_allocator a = r->alloc;
    amp__free(&a, r->tag);
    amp__free(&a, (void *)r->command.value);
    amp__free(&a, r);
}

static amp_pair request_tag_pair(const amp_request *req, const char *key)
{
    amp_pair p = {(const uint8_t *)key, strlen(key), req->tag, req->tag_len};
    return p;
}

static void fatal_close(amp_session *s)
{
    amp__session_enter(s);
    if (EV(s)->close_after_flush)
        EV(s)->close_after_flush(s, s->cfg.user_data);
    amp_session_close(s, AMP_E_CLOSED);
    amp__session_report_closed(s, AMP_E_CLOSED);
    amp__session_leave(s);
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
    return amp__session_write_box(s, head, 3, NULL, 0);
}

static amp_err send_error(amp_session *s, const uint8_t *tag, size_t tag_len, const char *code,
                          const uint8_t *desc, size_t desc_len)
{
    return send_error_bytes(s, tag, tag_len, (const uint8_t *)code, strlen(code), desc, desc_len);
}

/* "... (N bytes)", the marker of a cut value, without printf (the core
 * links no stdio for this). Returns its length (at most 34). */
static size_t cut_marker(char *out, size_t n)
{
    char digits[24];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    size_t len = 0;
    memcpy(out, "... (", 5);
    len += 5;
    while (nd)
        out[len++] = digits[--nd];
    memcpy(out + len, " bytes)", 7);
    return len + 7;
}

/* Append `p` cut to at most `max` bytes: whole when it fits, else a prefix
 * (not splitting a UTF-8 sequence) and "... (N bytes)". */
static amp_err append_bounded(amp_buf *out, const uint8_t *p, size_t n, size_t max)
{
    if (n <= max)
        return amp_buf_append(out, p, n);
    char marker[48];
    size_t mn = cut_marker(marker, n);
    size_t keep = max - mn;
    for (int i = 0; i < 3 && keep && (p[keep] & 0xc0) == 0x80; i++)
        keep--;
    amp_err r = amp_buf_reserve(out, keep + mn);
    if (r == AMP_OK) {
        amp_buf_append(out, p, keep);
        amp_buf_append(out, (const uint8_t *)marker, mn);
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
        r = amp_buf_append(out, (const uint8_t *)marker, cut_marker(marker, n));
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
    amp_buf_init_with(&cut, &s->alloc);
    amp_err r = append_bounded(&cut, desc, desc_len, AMP_MAX_VALUE_LEN);
    if (r == AMP_OK)
        r = send_error_bytes(s, tag, tag_len, code, code_len, cut.data, cut.len);
    amp_buf_free(&cut);
    return r;
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
            if (amp__key_reserved(pairs[i].key, pairs[i].key_len))
                r = AMP_E_INVALID;
        amp_pair head = request_tag_pair(req, "_answer");
        if (r == AMP_OK)
            r = amp__session_write_box(s, &head, 1, pairs, n);
        amp_err sent = r;
        if (r != AMP_OK && r != AMP_E_BACKPRESSURE) /* Twisted's answer to a bad answer */
            sent = send_error(s, req->tag, req->tag_len, "UNKNOWN",
                              (const uint8_t *)"Unknown Error", 13);
        if (sent != AMP_OK) { /* the call would go unanswered: the conversation is over */
            request_free(req);
            /* over the hard cap: the peer does not read what it asked for */
            amp__session_self_close(s, sent);
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
        amp__session_self_close(s, sent); /* the call would go unanswered */
    else if (s && !s->closed && fatal)
        fatal_close(s);
    return r;
}

int amp_request_wants_answer(const amp_request *req)
{
    return req && req->tag != NULL;
}

const amp_pair *amp_request_command(const amp_request *req)
{
    return req ? &req->command : NULL;
}

/* ---- incoming calls ------------------------------------------------------ */

/* Nobody serves the command: Twisted's UNHANDLED, or the end of the
 * connection for a call that wants no answer. */
static void unhandled(amp_session *s, const amp_message *m)
{
    if (!m->tag) { /* Twisted drops the connection */
        amp__session_protocol_error(s, AMP_E_UNHANDLED_NO_ASK);
        return;
    }
    amp_buf desc;
    amp_buf_init_with(&desc, &s->alloc);
    amp_err r = amp_unhandled_description(&desc, m->command->value, m->command->value_len);
    if (r == AMP_OK)
        r = send_error(s, m->tag->value, m->tag->value_len, "UNHANDLED", desc.data, desc.len);
    amp_buf_free(&desc);
    if (r != AMP_OK)
        amp__session_self_close(s, r);
}

/* A request with its own copies of the command and the tag, or NULL. */
static amp_request *request_new(amp_session *s, const amp_message *m)
{
    amp_request *req = amp__calloc(&s->alloc, 1, sizeof *req);
    if (!req)
        return NULL;
    req->alloc = s->alloc;
    req->command.key = (const uint8_t *)"_command";
    req->command.key_len = 8;
    req->command.value = amp__memdup(&s->alloc, m->command->value, m->command->value_len);
    req->command.value_len = m->command->value_len;
    if (m->tag) {
        req->tag = amp__memdup(&s->alloc, m->tag->value, m->tag->value_len);
        req->tag_len = m->tag->value_len;
    }
    if (!req->command.value || (m->tag && !req->tag)) {
        request_free(req);
        return NULL;
    }
    return req;
}

void amp__session_dispatch_call(amp_session *s, const amp_box *box, const amp_message *m)
{
    if (m->tag && m->tag->value_len > AMP_MAX_TAG_LEN) {
        amp__session_protocol_error(s, AMP_E_TAG_TOO_LONG);
        return;
    }
    struct responder *resp = amp_strmap_get(&s->responders, m->command->value,
                                            m->command->value_len);
    if (!resp && s->fallback.cb)
        resp = &s->fallback;
    if (!resp) {
        unhandled(s, m);
        return;
    }
    amp_request *req = request_new(s, m);
    if (!req) {
        if (m->tag && send_error(s, m->tag->value, m->tag->value_len, "UNKNOWN",
                                 (const uint8_t *)"Unknown Error", 13) != AMP_OK)
            amp__session_self_close(s, AMP_E_NOMEM); /* the call would go unanswered */
        return;
    }
    req->s = s;
    req->next = s->requests;
    if (s->requests)
        s->requests->prev = req;
    s->requests = req;
    s->nrequests++;
    s->request_bytes += request_size(req);
    amp__session_account(s);
    resp->cb(s, req, box, resp->user_data);
}

size_t amp_session_pending_requests(const amp_session *s)
{
    return s ? s->nrequests : 0;
}
