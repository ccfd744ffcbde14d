/* The conversation layer, part one: the session's life (new, free, close),
 * the shared accounting, the output queue and feeding input. Incoming calls
 * are in session_requests.c, outgoing calls in session_calls.c. */
#include <string.h>

#include "session_internal.h"
#include "session_private.h"

static const amp_session_events no_events;

const amp_session_events *amp__session_ev(const amp_session *s)
{
    return s->cfg.events ? s->cfg.events : &no_events;
}

void amp_session_config_init(amp_session_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    amp_limits_default(&cfg->limits);
    cfg->output_high_water = AMP_DEFAULT_OUTPUT_HIGH_WATER;
    cfg->output_hard_cap = AMP_DEFAULT_OUTPUT_HARD_CAP;
}

void amp_session_events_init(amp_session_events *ev)
{
    if (ev)
        memset(ev, 0, sizeof *ev);
}

void amp_usage_init(amp_usage *u)
{
    if (u)
        memset(u, 0, sizeof *u);
}

void amp_call_opts_init(amp_call_opts *opts)
{
    if (opts)
        memset(opts, 0, sizeof *opts);
}

static int allocator_ok(const amp_allocator *a)
{
    return !a || (a->alloc && a->realloc && a->free);
}

amp_err amp_session_new(amp_session **out, const amp_session_config *cfg)
{
    if (!out)
        return AMP_E_INVALID;
    *out = NULL;
    const amp_allocator *a = cfg ? cfg->allocator : NULL;
    if (!allocator_ok(a))
        return AMP_E_INVALID;
    amp_session *s = amp__calloc(a, 1, sizeof *s);
    if (!s)
        return AMP_E_NOMEM;
    if (cfg)
        s->cfg = *cfg;
    s->alloc = a ? *a : *amp_allocator_default();
    s->cfg.allocator = NULL; /* s->alloc is the copy used from here on */
    s->cfg.hash_key = NULL;  /* copied into the responder table below */
    if (!s->cfg.output_high_water)
        s->cfg.output_high_water = AMP_DEFAULT_OUTPUT_HIGH_WATER;
    if (!s->cfg.output_hard_cap)
        s->cfg.output_hard_cap = AMP_DEFAULT_OUTPUT_HARD_CAP;
    amp_buf_init_with(&s->out, &s->alloc);
    amp_buf_init_with(&s->held, &s->alloc);
    s->next_tag = 1;
    amp_err r = amp_decoder_new_with(&s->dec, &s->cfg.limits, &s->alloc);
    if (r == AMP_OK && amp_calltable_init(&s->calls, &s->alloc))
        r = AMP_E_NOMEM;
    if (r == AMP_OK) /* peers choose the names: the table's key is secret */
        r = amp_strmap_init_with(&s->responders, cfg ? cfg->hash_key : NULL, &s->alloc);
    if (r != AMP_OK) {
        amp_decoder_free(s->dec);
        amp_calltable_free(&s->calls);
        amp_strmap_free(&s->responders);
        amp__free(a, s);
        return r;
    }
    *out = s;
    return AMP_OK;
}

static void really_free(amp_session *s)
{
    amp__session_release_serving(s);
    amp_calltable_free(&s->calls);
    amp_strmap_free(&s->responders);
    amp_decoder_free(s->dec);
    amp_buf_free(&s->out);
    amp_buf_free(&s->held);
    amp_allocator a = s->alloc; /* s holds the allocator it is freed with */
    amp__free(&a, s);
}

void amp__session_account(amp_session *s)
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

void amp__session_enter(amp_session *s)
{
    s->depth++;
}

void amp__session_leave(amp_session *s)
{
    if (--s->depth == 0 && s->free_pending)
        really_free(s);
}

void amp_session_free(amp_session *s)
{
    if (!s || s->free_pending)
        return;
    amp__session_enter(s);
    amp_session_close(s, AMP_E_CLOSED);
    s->free_pending = 1;
    amp__session_account(s); /* gone for its owner: nothing is counted from here on */
    amp__session_leave(s);
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

void amp__session_output_appended(amp_session *s, size_t before, size_t n)
{
    s->out_total += n;
    check_high_water(s);
    output_grew(s, before);
}

/* Every pair is checked and the room reserved before a byte is written, so
 * an error leaves the output (and the count of queued bytes, which marks
 * where StartTLS begins) exactly as it was. */
amp_err amp__session_write_box(amp_session *s, const amp_pair *head, size_t nh,
                               const amp_pair *args, size_t na)
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
    amp__session_account(s);
    if (b == &s->out)
        amp__session_output_appended(s, before, size);
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
    amp__session_account(s);
    if (s->over_high_water)
        check_high_water(s);
}

uint64_t amp_session_output_total(const amp_session *s)
{
    return s->out_total;
}

/* ---- closing ----------------------------------------------------------- */

void amp_session_close(amp_session *s, int reason)
{
    if (!s || s->closed)
        return;
    amp__session_enter(s);
    s->closed = 1;
    s->tls_pending = 0;
    amp_buf_free(&s->held);
    amp__session_account(s);
    amp__session_complete_all(s, reason);
    /* unanswered requests stay valid; answering them now fails */
    amp__session_leave(s);
}

int amp_session_is_closed(const amp_session *s)
{
    return s->closed;
}

void amp__session_report_closed(amp_session *s, int reason)
{
    if (!s->free_pending && EV(s)->closed)
        EV(s)->closed(s, reason, s->cfg.user_data);
}

void amp__session_self_close(amp_session *s, int reason)
{
    if (s->closed)
        return;
    amp__session_enter(s);
    amp_session_close(s, AMP_E_CLOSED);
    amp__session_report_closed(s, reason);
    amp__session_leave(s);
}

void amp__session_protocol_error(amp_session *s, int err)
{
    uint64_t off = amp_decoder_error_offset(s->dec);
    amp__session_enter(s);
    amp_session_close(s, AMP_E_CLOSED);
    if (EV(s)->protocol_error)
        EV(s)->protocol_error(s, err, off, s->cfg.user_data);
    amp__session_report_closed(s, err);
    amp__session_leave(s);
}

/* ---- input -------------------------------------------------------------- */

amp_err amp_session_feed(amp_session *s, const uint8_t *p, size_t n)
{
    if (!s || (!p && n))
        return AMP_E_INVALID;
    if (s->closed)
        return AMP_E_CLOSED;
    amp__session_enter(s);
    amp_err result = AMP_OK;
    amp_decoder_feed(s->dec, p, n);
    while (!s->closed) {
        amp_box box;
        amp_err r = amp_decoder_next(s->dec, &box);
        amp__session_account(s);
        if (r == AMP_AGAIN)
            break;
        if (r != AMP_OK) {
            result = r;
            amp__session_protocol_error(s, r);
            break;
        }
        amp_message m;
        r = amp_box_classify(&box, &m);
        if (r != AMP_OK) {
            result = r;
            amp__session_protocol_error(s, r);
            break;
        }
        if (m.kind == AMP_KIND_CALL)
            amp__session_dispatch_call(s, &box, &m);
        else
            amp__session_dispatch_result(s, &box, &m);
    }
    if (s->closed && result == AMP_OK)
        result = AMP_E_CLOSED;
    amp__session_leave(s);
    return result;
}

amp_err amp_session_set_limits(amp_session *s, const amp_limits *limits)
{
    return s ? amp_decoder_set_limits(s->dec, limits) : AMP_E_INVALID;
}
