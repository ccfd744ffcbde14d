/* The conversation layer, with two sessions wired back to back in memory. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "session_internal.h"
#include "vectors.h"

/* ---- a pair of sessions and a pump between them ------------------------ */

struct peer {
    amp_session *s;
    int protocol_errors, last_protocol_error;
    int close_after_flush;
    int backpressure_on, backpressure_off;
    int start_tls;
    uint64_t out_at_start_tls;
    int closed_events, closed_reason;
    int events_before_closed; /* protocol_error + close_after_flush seen by then */
};

static void ev_protocol_error(amp_session *s, int err, uint64_t off, void *ud)
{
    struct peer *p = ud;
    p->protocol_errors++;
    p->last_protocol_error = err;
}

static void ev_close_after_flush(amp_session *s, void *ud)
{
    ((struct peer *)ud)->close_after_flush++;
}

static void ev_backpressure(amp_session *s, int over, void *ud)
{
    struct peer *p = ud;
    if (over)
        p->backpressure_on++;
    else
        p->backpressure_off++;
}

static void ev_start_tls(amp_session *s, void *ud)
{
    struct peer *p = ud;
    p->start_tls++;
    const uint8_t *out;
    size_t n;
    amp_session_output(s, &out, &n);
    p->out_at_start_tls = n; /* nothing held back may be visible yet */
}

static void ev_closed(amp_session *s, int reason, void *ud)
{
    struct peer *p = ud;
    cr_assert(amp_session_is_closed(s));
    cr_assert_eq(amp_session_outstanding(s), 0, "calls complete before the event");
    p->closed_events++;
    p->closed_reason = reason;
    p->events_before_closed = p->protocol_errors + p->close_after_flush;
}

static const amp_session_events events = {ev_protocol_error, ev_backpressure,
                                          ev_close_after_flush, ev_start_tls, NULL, ev_closed};

static void peer_init(struct peer *p, size_t hard_cap)
{
    memset(p, 0, sizeof *p);
    amp_session_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.events = &events;
    cfg.user_data = p;
    cfg.output_hard_cap = hard_cap;
    cfg.output_high_water = hard_cap ? hard_cap / 2 : 0;
    cr_assert_eq(amp_session_new(&p->s, &cfg), AMP_OK);
}

/* Move everything `from` wrote into `to`, `chunk` bytes at a time (0: all). */
static void pump(struct peer *from, struct peer *to, size_t chunk)
{
    const uint8_t *p;
    size_t n;
    amp_session_output(from->s, &p, &n);
    if (!n)
        return;
    uint8_t *copy = malloc(n);
    memcpy(copy, p, n);
    amp_session_consume(from->s, n);
    size_t step = chunk ? chunk : n;
    for (size_t off = 0; off < n; off += step)
        amp_session_feed(to->s, copy + off, n - off < step ? n - off : step);
    free(copy);
}

static void take_output(struct peer *p, amp_buf *out)
{
    const uint8_t *d;
    size_t n;
    amp_session_output(p->s, &d, &n);
    amp_buf_append(out, d, n);
    amp_session_consume(p->s, n);
}

/* ---- responders and result collectors ---------------------------------- */

static void sum_responder(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    const amp_pair *a = amp_box_find_str(args, "a"), *b = amp_box_find_str(args, "b");
    int64_t x, y;
    if (!a || !b || amp_int_parse(a->value, a->value_len, &x) ||
        amp_int_parse(b->value, b->value_len, &y)) {
        amp_request_error(req, "UNKNOWN", "Unknown Error", 1);
        return;
    }
    char t[AMP_INT_MAX_LEN];
    size_t tn = amp_int_format(x + y, t);
    amp_pair total = {(const uint8_t *)"total", 5, (const uint8_t *)t, tn};
    cr_assert_eq(amp_request_answer(req, &total, 1), AMP_OK);
}

#define MAXR 4096
struct results {
    int count[MAXR];
    int status[MAXR];
    int64_t total[MAXR];
    char code[MAXR][32];
};

static void collect(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    struct results *res = ud;
    cr_assert(id < MAXR);
    res->count[id]++;
    res->status[id] = r->status;
    if (r->status == AMP_OK && r->box) {
        const amp_pair *t = amp_box_find_str(r->box, "total");
        if (t)
            amp_int_parse(t->value, t->value_len, &res->total[id]);
    }
    if (r->status == AMP_E_REMOTE) {
        size_t n = r->error_code->value_len < 31 ? r->error_code->value_len : 31;
        memcpy(res->code[id], r->error_code->value, n);
        res->code[id][n] = 0;
    }
}

static amp_err call_sum(struct peer *p, int64_t a, int64_t b, struct results *res, uint64_t *id)
{
    char x[AMP_INT_MAX_LEN], y[AMP_INT_MAX_LEN];
    size_t xn = amp_int_format(a, x), yn = amp_int_format(b, y);
    amp_pair args[2] = {{(const uint8_t *)"a", 1, (const uint8_t *)x, xn},
                        {(const uint8_t *)"b", 1, (const uint8_t *)y, yn}};
    return amp_session_call_str(p->s, "Sum", args, 2, NULL, collect, res, id);
}

static int hex_eq(const amp_buf *b, const json_t *hex)
{
    size_t n;
    uint8_t *want = vec_hex_json(hex, &n);
    int eq = b->len == n && memcmp(b->data, want, n) == 0;
    free(want);
    return eq;
}

static json_t *conv_case(json_t *root, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), i, c)
        if (!strcmp(json_string_value(json_object_get(c, "name")), name))
            return c;
    cr_assert_fail("no conversation vector '%s'", name);
    return NULL;
}

/* ---- tests ---------------------------------------------------------------- */

Test(session, call_and_answer_bytes_match_twisted)
{
    json_t *root = vec_load("conversation.json");
    struct peer a, b;
    peer_init(&a, 0);
    peer_init(&b, 0);
    amp_session_serve_str(b.s, "Sum", sum_responder, NULL);
    static struct results res;
    memset(&res, 0, sizeof res);
    uint64_t id;
    cr_assert_eq(call_sum(&a, 13, 81, &res, &id), AMP_OK);
    cr_assert_eq(id, 1);
    amp_buf call;
    amp_buf_init(&call);
    take_output(&a, &call);
    cr_assert(hex_eq(&call, json_object_get(conv_case(root, "Sum call"), "hex")));
    amp_session_feed(b.s, call.data, call.len);
    amp_buf answer;
    amp_buf_init(&answer);
    take_output(&b, &answer);
    cr_assert(hex_eq(&answer, json_object_get(conv_case(root, "Sum answer"), "hex")));
    amp_session_feed(a.s, answer.data, answer.len);
    cr_assert_eq(res.count[1], 1);
    cr_assert_eq(res.status[1], AMP_OK);
    cr_assert_eq(res.total[1], 94);
    cr_assert_eq(amp_session_outstanding(a.s), 0);
    amp_buf_free(&call);
    amp_buf_free(&answer);
    amp_session_free(a.s);
    amp_session_free(b.s);
    json_decref(root);
}

Test(session, unhandled_matches_twisted_and_stays_open)
{
    json_t *root = vec_load("conversation.json");
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(root, "unhandled"), i, u) {
        struct peer a, b;
        peer_init(&a, 0);
        peer_init(&b, 0);
        static struct results res;
        memset(&res, 0, sizeof res);
        size_t cn;
        uint8_t *cmd = vec_hex_json(json_object_get(u, "command"), &cn);
        uint64_t id;
        cr_assert_eq(amp_session_call(a.s, cmd, cn, NULL, 0, NULL, collect, &res, &id), AMP_OK);
        pump(&a, &b, 0);
        amp_buf err;
        amp_buf_init(&err);
        take_output(&b, &err);
        amp_decoder *d;
        amp_decoder_new(&d, NULL);
        amp_decoder_feed(d, err.data, err.len);
        amp_box box;
        cr_assert_eq(amp_decoder_next(d, &box), AMP_OK);
        const amp_pair *desc = amp_box_find_str(&box, "_error_description");
        size_t dn;
        uint8_t *want = vec_hex_json(json_object_get(u, "error_description"), &dn);
        cr_assert(desc && desc->value_len == dn && memcmp(desc->value, want, dn) == 0,
                  "description for command %zu: %.*s", i, (int)desc->value_len, desc->value);
        amp_session_feed(a.s, err.data, err.len);
        cr_assert_eq(res.count[id], 1);
        cr_assert_eq(res.status[id], AMP_E_REMOTE);
        cr_assert_str_eq(res.code[id], "UNHANDLED");
        cr_assert(!amp_session_is_closed(b.s));
        cr_assert(!amp_session_is_closed(a.s));
        amp_decoder_free(d);
        amp_buf_free(&err);
        free(cmd);
        free(want);
        amp_session_free(a.s);
        amp_session_free(b.s);
    }
    json_decref(root);
}

static void declared_error(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    amp_request_error(req, "OOPS", "it went wrong", 0);
}

static void fatal_error(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    amp_request_error(req, "FATAL", "bye", 1);
}

Test(session, declared_error_keeps_the_connection_and_matches_twisted)
{
    json_t *root = vec_load("conversation.json");
    struct peer a, b;
    peer_init(&a, 0);
    peer_init(&b, 0);
    amp_session_serve_str(b.s, "Fail", declared_error, NULL);
    static struct results res;
    memset(&res, 0, sizeof res);
    cr_assert_eq(amp_session_call_str(a.s, "Fail", NULL, 0, NULL, collect, &res, NULL), AMP_OK);
    pump(&a, &b, 0);
    amp_buf err;
    amp_buf_init(&err);
    take_output(&b, &err);
    cr_assert(hex_eq(&err, json_object_get(conv_case(root, "declared error"), "hex")));
    amp_session_feed(a.s, err.data, err.len);
    cr_assert_eq(res.status[1], AMP_E_REMOTE);
    cr_assert_str_eq(res.code[1], "OOPS");
    cr_assert(!amp_session_is_closed(b.s));
    amp_buf_free(&err);
    amp_session_free(a.s);
    amp_session_free(b.s);
    json_decref(root);
}

Test(session, fatal_error_is_written_then_closes)
{
    struct peer a, b;
    peer_init(&a, 0);
    peer_init(&b, 0);
    amp_session_serve_str(b.s, "Die", fatal_error, NULL);
    static struct results res;
    memset(&res, 0, sizeof res);
    amp_session_call_str(a.s, "Die", NULL, 0, NULL, collect, &res, NULL);
    pump(&a, &b, 0);
    cr_assert_eq(b.close_after_flush, 1);
    cr_assert(amp_session_is_closed(b.s));
    pump(&b, &a, 0); /* the error box is still there to be flushed */
    cr_assert_eq(res.count[1], 1);
    cr_assert_str_eq(res.code[1], "FATAL");
    amp_session_free(a.s);
    amp_session_free(b.s);
}

static int notified;
static void notify_responder(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    notified++;
    cr_assert(!amp_request_wants_answer(req));
    cr_assert_eq(amp_request_answer(req, NULL, 0), AMP_OK); /* dropped, not sent */
}

Test(session, calls_without_ask)
{
    json_t *root = vec_load("conversation.json");
    struct peer a, b;
    peer_init(&a, 0);
    peer_init(&b, 0);
    amp_session_serve_str(b.s, "Notify", notify_responder, NULL);
    amp_call_opts no = {1, 0, 0};
    amp_pair text = {(const uint8_t *)"text", 4, (const uint8_t *)"hi", 2};
    uint64_t id = 99;
    cr_assert_eq(amp_session_call_str(a.s, "Notify", &text, 1, &no, NULL, NULL, &id), AMP_OK);
    cr_assert_eq(id, 0);
    amp_buf call;
    amp_buf_init(&call);
    take_output(&a, &call);
    cr_assert(hex_eq(&call, json_object_get(conv_case(root, "call without _ask (requiresAnswer=False)"), "hex")));
    amp_session_feed(b.s, call.data, call.len);
    cr_assert_eq(notified, 1);
    const uint8_t *o;
    size_t on;
    amp_session_output(b.s, &o, &on);
    cr_assert_eq(on, 0, "nothing may answer a call without _ask");
    /* the tag counter advanced: the next call is tag 2, as in Twisted */
    static struct results res;
    uint64_t next;
    cr_assert_eq(call_sum(&a, 1, 2, &res, &next), AMP_OK);
    cr_assert_eq(next, 2);
    /* an unknown command without _ask: Twisted drops the connection */
    amp_session_call_str(a.s, "Nobody", NULL, 0, &no, NULL, NULL, NULL);
    amp_session_serve_str(b.s, "Sum", sum_responder, NULL);
    pump(&a, &b, 0);
    cr_assert_eq(b.protocol_errors, 1);
    cr_assert_eq(b.last_protocol_error, AMP_E_UNHANDLED_NO_ASK);
    amp_buf_free(&call);
    amp_session_free(a.s);
    amp_session_free(b.s);
    json_decref(root);
}

static amp_request *held[MAXR];
static int64_t held_a[MAXR];
static size_t nheld;
static void holding_responder(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    const amp_pair *a = amp_box_find_str(args, "a");
    amp_int_parse(a->value, a->value_len, &held_a[nheld]);
    held[nheld++] = req;
}

Test(session, many_calls_answered_out_of_order_byte_at_a_time)
{
    struct peer a, b;
    peer_init(&a, 0);
    peer_init(&b, 0);
    amp_session_serve_str(b.s, "Sum", holding_responder, NULL);
    static struct results res;
    memset(&res, 0, sizeof res);
    const int n = 1000;
    for (int i = 0; i < n; i++)
        cr_assert_eq(call_sum(&a, i, 1000, &res, NULL), AMP_OK);
    pump(&a, &b, 1);
    cr_assert_eq(nheld, (size_t)n);
    /* answer in a scrambled order */
    unsigned seed = 9;
    for (size_t i = nheld; i > 1; i--) {
        size_t j = (size_t)rand_r(&seed) % i;
        amp_request *t = held[i - 1];
        held[i - 1] = held[j];
        held[j] = t;
        int64_t x = held_a[i - 1];
        held_a[i - 1] = held_a[j];
        held_a[j] = x;
    }
    for (size_t i = 0; i < nheld; i++) {
        /* answer each call with its own a + 1000 */
        char tot[AMP_INT_MAX_LEN];
        size_t tn = amp_int_format(held_a[i] + 1000, tot);
        amp_pair p = {(const uint8_t *)"total", 5, (const uint8_t *)tot, tn};
        cr_assert_eq(amp_request_answer(held[i], &p, 1), AMP_OK);
        if (i % 7 == 0)
            pump(&b, &a, 3);
    }
    pump(&b, &a, 5);
    for (int id = 1; id <= n; id++) {
        cr_assert_eq(res.count[id], 1, "call %d completed %d times", id, res.count[id]);
        cr_assert_eq(res.status[id], AMP_OK);
        cr_assert_eq(res.total[id], id - 1 + 1000);
    }
    cr_assert_eq(amp_session_outstanding(a.s), 0);
    nheld = 0;
    amp_session_free(a.s);
    amp_session_free(b.s);
}

Test(session, answers_carry_the_right_values)
{
    struct peer a, b;
    peer_init(&a, 0);
    peer_init(&b, 0);
    amp_session_serve_str(b.s, "Sum", sum_responder, NULL);
    static struct results res;
    memset(&res, 0, sizeof res);
    for (int i = 0; i < 500; i++)
        call_sum(&a, i, i * 3, &res, NULL);
    pump(&a, &b, 13);
    pump(&b, &a, 11);
    for (int id = 1; id <= 500; id++)
        cr_assert_eq(res.total[id], (id - 1) * 4);
    amp_session_free(a.s);
    amp_session_free(b.s);
}

Test(session, unknown_answer_tag_is_a_protocol_error)
{
    struct peer a;
    peer_init(&a, 0);
    static struct results res;
    memset(&res, 0, sizeof res);
    call_sum(&a, 1, 2, &res, NULL);
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair_str(&b, "_answer", "99");
    amp_encode_end(&b);
    cr_assert_eq(amp_session_feed(a.s, b.data, b.len), AMP_E_CLOSED);
    cr_assert_eq(a.protocol_errors, 1);
    cr_assert_eq(a.last_protocol_error, AMP_E_UNKNOWN_TAG);
    /* the outstanding call completed exactly once, with AMP_E_CLOSED */
    cr_assert_eq(res.count[1], 1);
    cr_assert_eq(res.status[1], AMP_E_CLOSED);
    amp_buf_free(&b);
    amp_session_free(a.s);
}

Test(session, boxes_without_a_role_are_protocol_errors)
{
    struct peer a;
    peer_init(&a, 0);
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair_str(&b, "_ask", "1");
    amp_encode_end(&b);
    amp_session_feed(a.s, b.data, b.len);
    cr_assert_eq(a.last_protocol_error, AMP_E_NO_ROLE);
    cr_assert(amp_session_is_closed(a.s));
    amp_buf_free(&b);
    amp_session_free(a.s);
}

Test(session, timeout_then_late_answer_is_dropped)
{
    struct peer a, b;
    peer_init(&a, 0);
    peer_init(&b, 0);
    amp_session_serve_str(b.s, "Sum", sum_responder, NULL);
    static struct results res;
    memset(&res, 0, sizeof res);
    amp_call_opts opts = {0, 1, 100};
    amp_pair args[2] = {{(const uint8_t *)"a", 1, (const uint8_t *)"1", 1},
                        {(const uint8_t *)"b", 1, (const uint8_t *)"2", 1}};
    uint64_t id1, id2;
    amp_session_call_str(a.s, "Sum", args, 2, &opts, collect, &res, &id1);
    opts.deadline = 200;
    amp_session_call_str(a.s, "Sum", args, 2, &opts, collect, &res, &id2);
    uint64_t next;
    cr_assert(amp_session_next_deadline(a.s, &next));
    cr_assert_eq(next, 100);
    amp_session_expire(a.s, 99);
    cr_assert_eq(res.count[id1], 0);
    amp_session_expire(a.s, 150);
    cr_assert_eq(res.count[id1], 1);
    cr_assert_eq(res.status[id1], AMP_E_TIMEOUT);
    cr_assert_eq(amp_session_outstanding(a.s), 1);
    pump(&a, &b, 0);
    pump(&b, &a, 0); /* both answers arrive; the first is late */
    cr_assert_eq(res.count[id1], 1);
    cr_assert_eq(res.count[id2], 1);
    cr_assert_eq(res.status[id2], AMP_OK);
    cr_assert_eq(a.protocol_errors, 0);
    cr_assert(!amp_session_next_deadline(a.s, &next));
    amp_session_free(a.s);
    amp_session_free(b.s);
}

Test(session, cancel)
{
    struct peer a, b;
    peer_init(&a, 0);
    peer_init(&b, 0);
    amp_session_serve_str(b.s, "Sum", sum_responder, NULL);
    static struct results res;
    memset(&res, 0, sizeof res);
    uint64_t id;
    call_sum(&a, 1, 2, &res, &id);
    cr_assert_eq(amp_session_cancel(a.s, id), AMP_OK);
    cr_assert_eq(res.count[id], 1);
    cr_assert_eq(res.status[id], AMP_E_CANCELLED);
    cr_assert_eq(amp_session_cancel(a.s, id), AMP_E_INVALID);
    pump(&a, &b, 0);
    pump(&b, &a, 0);
    cr_assert_eq(res.count[id], 1);
    cr_assert_eq(a.protocol_errors, 0);
    amp_session_free(a.s);
    amp_session_free(b.s);
}

Test(session, close_fails_every_call_exactly_once)
{
    struct peer a;
    peer_init(&a, 0);
    static struct results res;
    memset(&res, 0, sizeof res);
    for (int i = 0; i < 300; i++)
        call_sum(&a, i, i, &res, NULL);
    amp_call_opts opts = {0, 1, 5};
    uint64_t with_deadline;
    amp_session_call_str(a.s, "X", NULL, 0, &opts, collect, &res, &with_deadline);
    amp_session_close(a.s, AMP_E_CLOSED);
    amp_session_close(a.s, AMP_E_CLOSED);
    amp_session_expire(a.s, 1000);
    for (int id = 1; id <= 301; id++) {
        cr_assert_eq(res.count[id], 1);
        cr_assert_eq(res.status[id], AMP_E_CLOSED);
    }
    /* later calls fail at once and never call back */
    uint64_t id = 7;
    cr_assert_eq(call_sum(&a, 1, 1, &res, &id), AMP_E_CLOSED);
    cr_assert_eq(id, 0);
    cr_assert_eq(res.count[302], 0);
    amp_session_free(a.s);
}

static void free_in_callback(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    int *calls = ud;
    (*calls)++;
    amp_session_free(s); /* deferred until feed returns */
}

Test(session, free_from_inside_a_callback)
{
    struct peer a, b;
    peer_init(&a, 0);
    peer_init(&b, 0);
    amp_session_serve_str(b.s, "Sum", sum_responder, NULL);
    int calls = 0;
    for (int i = 0; i < 3; i++)
        amp_session_call_str(a.s, "Sum", NULL, 0, NULL, free_in_callback, &calls, NULL);
    pump(&a, &b, 0);
    /* three error answers (missing arguments) arrive; the first callback frees
     * the session, which completes the other two with AMP_E_CLOSED */
    pump(&b, &a, 0);
    cr_assert_eq(calls, 3);
    amp_session_free(b.s);
}

Test(session, backpressure_hard_cap_and_high_water)
{
    struct peer a;
    peer_init(&a, 4096);
    static struct results res;
    memset(&res, 0, sizeof res);
    amp_err r = AMP_OK;
    int accepted = 0;
    while ((r = call_sum(&a, 1, 1, &res, NULL)) == AMP_OK)
        accepted++;
    cr_assert_eq(r, AMP_E_BACKPRESSURE);
    cr_assert(accepted > 10);
    cr_assert_eq(a.backpressure_on, 1);
    const uint8_t *p;
    size_t n;
    amp_session_output(a.s, &p, &n);
    cr_assert(n <= 4096);
    amp_session_consume(a.s, n);
    cr_assert_eq(a.backpressure_off, 1);
    cr_assert_eq(call_sum(&a, 1, 1, &res, NULL), AMP_OK);
    amp_session_close(a.s, AMP_E_CLOSED);
    /* the refused call took no tag and never calls back: exactly the
     * accepted calls and the one after the drain complete, once each */
    for (int id = 1; id <= accepted + 1; id++)
        cr_assert_eq(res.count[id], 1);
    cr_assert_eq(res.count[accepted + 2], 0);
    amp_session_free(a.s);
}

static void starttls_responder(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    amp_request_answer(req, NULL, 0);
}

Test(session, starttls_holds_later_boxes_until_the_answer)
{
    struct peer a, b;
    peer_init(&a, 0);
    peer_init(&b, 0);
    amp_session_serve_str(b.s, "StartTLS", starttls_responder, NULL);
    amp_session_serve_str(b.s, "Sum", sum_responder, NULL);
    static struct results res;
    memset(&res, 0, sizeof res);
    cr_assert_eq(amp_session_start_tls(a.s, collect, &res), AMP_OK);
    const uint8_t *p;
    size_t n0, n1;
    amp_session_output(a.s, &p, &n0);
    call_sum(&a, 2, 3, &res, NULL);
    amp_session_output(a.s, &p, &n1);
    cr_assert_eq(n0, n1, "boxes after StartTLS must be held back");
    pump(&a, &b, 0);
    pump(&b, &a, 0);
    cr_assert_eq(a.start_tls, 1);
    cr_assert_eq(a.out_at_start_tls, 0, "held bytes released only after start_tls");
    cr_assert_eq(res.status[1], AMP_OK);
    amp_session_output(a.s, &p, &n1);
    cr_assert(n1 > 0, "held boxes released");
    pump(&a, &b, 0);
    pump(&b, &a, 0);
    cr_assert_eq(res.total[2], 5);
    amp_session_free(a.s);
    amp_session_free(b.s);
}

Test(session, tags_count_in_hex_like_twisted)
{
    struct peer a;
    peer_init(&a, 0);
    static struct results res;
    for (int i = 0; i < 17; i++)
        call_sum(&a, 0, 0, &res, NULL);
    amp_buf out;
    amp_buf_init(&out);
    take_output(&a, &out);
    amp_decoder *d;
    amp_decoder_new(&d, NULL);
    amp_decoder_feed(d, out.data, out.len);
    amp_box box;
    const char *want[] = {"1", "2", "3", "4", "5", "6", "7", "8", "9",
                          "a", "b", "c", "d", "e", "f", "10", "11"};
    for (int i = 0; i < 17; i++) {
        cr_assert_eq(amp_decoder_next(d, &box), AMP_OK);
        const amp_pair *t = amp_box_find_str(&box, "_ask");
        cr_assert(t->value_len == strlen(want[i]) && !memcmp(t->value, want[i], t->value_len));
    }
    amp_decoder_free(d);
    amp_buf_free(&out);
    amp_session_free(a.s);
}

Test(session, api_misuse)
{
    struct peer a;
    peer_init(&a, 0);
    amp_pair bad = {(const uint8_t *)"_ask", 4, (const uint8_t *)"1", 1};
    cr_assert_eq(amp_session_call_str(a.s, "X", &bad, 1, NULL, NULL, NULL, NULL), AMP_E_INVALID);
    cr_assert_eq(amp_session_call_str(a.s, "", NULL, 0, NULL, NULL, NULL, NULL), AMP_E_INVALID);
    cr_assert_eq(amp_session_serve_str(a.s, "X", sum_responder, NULL), AMP_OK);
    cr_assert_eq(amp_session_serve_str(a.s, "X", sum_responder, NULL), AMP_E_DUPLICATE);
    cr_assert_eq(amp_session_unserve_str(a.s, "X"), AMP_OK);
    cr_assert_eq(amp_session_unserve_str(a.s, "X"), AMP_E_INVALID);
    amp_session_free(a.s);
    amp_session_free(NULL);
}

/* ---- shared accounting of buffered bytes ---------------------------------- */

static void peer_init_usage(struct peer *p, amp_usage *u)
{
    memset(p, 0, sizeof *p);
    amp_session_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.events = &events;
    cfg.user_data = p;
    cfg.usage = u;
    cr_assert_eq(amp_session_new(&p->s, &cfg), AMP_OK);
}

static size_t out_len(const struct peer *p)
{
    const uint8_t *d;
    size_t n;
    amp_session_output(p->s, &d, &n);
    return n;
}

Test(session, usage_is_the_sum_over_live_sessions)
{
    amp_usage u = {0};
    struct peer a, b, c;
    peer_init_usage(&a, &u);
    peer_init_usage(&b, &u);
    peer_init_usage(&c, &u);
    amp_session_serve_str(b.s, "Sum", sum_responder, NULL);
    amp_session_serve_str(b.s, "StartTLS", starttls_responder, NULL);
    static struct results res;
    memset(&res, 0, sizeof res);
    cr_assert_eq(u.output_bytes, 0);
    cr_assert_eq(u.input_bytes, 0);

    /* output: queued calls count until consumed */
    call_sum(&a, 1, 2, &res, NULL);
    call_sum(&c, 3, 4, &res, NULL);
    cr_assert_eq(u.output_bytes, out_len(&a) + out_len(&c));
    size_t one_call = out_len(&a);

    /* a partial box counts as input, byte for byte, until it completes */
    const uint8_t *p;
    size_t n;
    amp_session_output(a.s, &p, &n);
    uint8_t *call = malloc(n);
    memcpy(call, p, n);
    amp_session_consume(a.s, n);
    cr_assert_eq(u.output_bytes, out_len(&c));
    amp_session_feed(b.s, call, 5);
    cr_assert_eq(amp_session_input_pending(b.s), 5);
    cr_assert_eq(u.input_bytes, 5);
    amp_session_feed(b.s, call + 5, n - 5 - 1);
    cr_assert_eq(amp_session_input_pending(b.s), n - 1);
    cr_assert_eq(u.input_bytes, n - 1);
    amp_session_feed(b.s, call + n - 1, 1); /* completes: answered */
    cr_assert_eq(amp_session_input_pending(b.s), 0);
    cr_assert_eq(u.input_bytes, 0);
    cr_assert_eq(u.output_bytes, out_len(&b) + out_len(&c));
    pump(&b, &a, 0);
    cr_assert_eq(res.total[1], 3);
    cr_assert_eq(u.output_bytes, out_len(&c));

    /* StartTLS: calls held back count too, and moving them to the output
     * changes nothing */
    cr_assert_eq(amp_session_start_tls(a.s, collect, &res), AMP_OK);
    size_t starttls_call = out_len(&a);
    call_sum(&a, 5, 6, &res, NULL);
    call_sum(&a, 7, 8, &res, NULL);
    cr_assert_eq(out_len(&a), starttls_call, "held back");
    cr_assert_eq(u.output_bytes, starttls_call + 2 * one_call + out_len(&c));
    pump(&a, &b, 0);
    cr_assert_eq(u.output_bytes, 2 * one_call + out_len(&b) + out_len(&c));
    pump(&b, &a, 0);
    cr_assert_eq(a.start_tls, 1);
    cr_assert_eq(out_len(&a), 2 * one_call, "released");
    cr_assert_eq(u.output_bytes, 2 * one_call + out_len(&c));

    /* held output goes away when the session closes before the answer */
    cr_assert_eq(amp_session_start_tls(c.s, collect, &res), AMP_OK);
    size_t c_out = out_len(&c);
    call_sum(&c, 1, 1, &res, NULL);
    cr_assert_eq(u.output_bytes, out_len(&a) + c_out + one_call);
    /* and a partial input box goes away at close; queued output stays
     * counted until it is written or the session freed */
    amp_session_feed(c.s, call, 7);
    cr_assert_eq(u.input_bytes, 7);
    amp_session_close(c.s, AMP_E_CLOSED);
    cr_assert_eq(amp_session_input_pending(c.s), 0);
    cr_assert_eq(u.input_bytes, 0);
    cr_assert_eq(u.output_bytes, out_len(&a) + c_out);
    amp_session_free(c.s);
    cr_assert_eq(u.output_bytes, out_len(&a));

    /* freeing with output and a partial box pending removes both */
    amp_session_feed(b.s, call, 9);
    cr_assert_eq(u.input_bytes, 9);
    amp_session_free(a.s);
    cr_assert_eq(u.output_bytes, 0);
    amp_session_free(b.s);
    cr_assert_eq(u.input_bytes, 0);
    cr_assert_eq(u.output_bytes, 0);
    free(call);
}

static void free_self(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    amp_session_free(s);
}

Test(session, usage_drops_at_a_free_deferred_inside_a_callback)
{
    amp_usage u = {0};
    struct peer a, b;
    peer_init_usage(&a, &u);
    peer_init(&b, 0);
    amp_session_serve_str(b.s, "Sum", sum_responder, NULL);
    amp_session_call_str(a.s, "Sum", NULL, 0, NULL, free_self, NULL, NULL);
    pump(&a, &b, 0);
    static struct results res;
    call_sum(&a, 1, 1, &res, NULL); /* output still queued */
    const uint8_t *p;
    size_t n;
    amp_session_output(b.s, &p, &n);
    uint8_t *two = malloc(2 * n);
    memcpy(two, p, n);
    memcpy(two + n, p, n - 3); /* the error answer, then part of a box */
    amp_session_consume(b.s, n);
    cr_assert(u.output_bytes > 0);
    amp_session_feed(a.s, two, 2 * n - 3); /* the callback frees a */
    cr_assert_eq(u.output_bytes, 0);
    cr_assert_eq(u.input_bytes, 0);
    free(two);
    amp_session_free(b.s);
}

/* ---- a session that closes itself tells its owner ------------------------- */

static void big_answer(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    static uint8_t big[3000];
    amp_pair p = {(const uint8_t *)"v", 1, big, sizeof big};
    amp_err *last = ud;
    *last = amp_request_answer(req, &p, 1);
}

static void big_error(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    static uint8_t big[3000];
    memset(big, 'e', sizeof big);
    amp_err *last = ud;
    *last = amp_request_error_bytes(req, (const uint8_t *)"E", 1, big, sizeof big, 0);
}

/* The peer calls `command` again and again without reading, until b closes. */
static int flood_until_closed(struct peer *a, struct peer *b, const char *command)
{
    static struct results res;
    memset(&res, 0, sizeof res);
    int calls = 0;
    while (!amp_session_is_closed(b->s) && calls < 1000) {
        cr_assert_eq(amp_session_call_str(a->s, command, NULL, 0, NULL, NULL, NULL, NULL),
                     AMP_OK);
        pump(a, b, 0);
        calls++;
    }
    return calls;
}

Test(session, answer_over_the_hard_cap_reports_closed)
{
    const char *responders[] = {"answer", "error"};
    for (int i = 0; i < 2; i++) {
        struct peer a, b;
        peer_init(&a, 0);
        peer_init(&b, 16384);
        amp_err last = AMP_OK;
        amp_session_serve_str(b.s, "Big", i ? big_error : big_answer, &last);
        /* b has a call of its own outstanding: it completes before the event */
        static struct results res;
        memset(&res, 0, sizeof res);
        call_sum(&b, 1, 1, &res, NULL);
        int calls = flood_until_closed(&a, &b, "Big");
        cr_assert(calls > 2 && calls < 10, "%s: %d calls", responders[i], calls);
        cr_assert_eq(last, AMP_E_BACKPRESSURE, "%s", responders[i]);
        cr_assert_eq(b.closed_events, 1, "%s", responders[i]);
        cr_assert_eq(b.closed_reason, AMP_E_BACKPRESSURE);
        cr_assert_eq(b.close_after_flush, 0, "nothing worth flushing");
        cr_assert_eq(res.count[1], 1);
        cr_assert_eq(res.status[1], AMP_E_CLOSED);
        amp_session_free(a.s);
        amp_session_free(b.s);
    }
}

Test(session, unhandled_over_the_hard_cap_reports_closed)
{
    struct peer a, b;
    peer_init(&a, 0);
    peer_init(&b, 4096);
    int calls = flood_until_closed(&a, &b, "NobodyServesThisCommand");
    cr_assert(calls > 10 && calls < 200, "%d calls", calls);
    cr_assert_eq(b.closed_events, 1);
    cr_assert_eq(b.closed_reason, AMP_E_BACKPRESSURE);
    amp_session_free(a.s);
    amp_session_free(b.s);
}

Test(session, protocol_and_fatal_errors_report_closed_after_their_own_event)
{
    struct peer a, b;
    peer_init(&a, 0);
    amp_buf bad;
    amp_buf_init(&bad);
    amp_encode_pair_str(&bad, "_answer", "99");
    amp_encode_end(&bad);
    amp_session_feed(a.s, bad.data, bad.len);
    cr_assert_eq(a.closed_events, 1);
    cr_assert_eq(a.closed_reason, AMP_E_UNKNOWN_TAG);
    cr_assert_eq(a.events_before_closed, 1, "protocol_error came first");
    amp_session_free(a.s);
    amp_buf_free(&bad);

    peer_init(&a, 0);
    peer_init(&b, 0);
    amp_session_serve_str(b.s, "Die", fatal_error, NULL);
    amp_session_call_str(a.s, "Die", NULL, 0, NULL, NULL, NULL, NULL);
    pump(&a, &b, 0);
    cr_assert_eq(b.closed_events, 1);
    cr_assert_eq(b.closed_reason, AMP_E_CLOSED);
    cr_assert_eq(b.events_before_closed, 1, "close_after_flush came first");
    amp_session_free(a.s);
    amp_session_free(b.s);
}

Test(session, starttls_cancelled_reports_closed_and_owner_close_does_not)
{
    struct peer a;
    peer_init(&a, 0);
    static struct results res;
    memset(&res, 0, sizeof res);
    cr_assert_eq(amp_session_start_tls(a.s, collect, &res), AMP_OK);
    uint64_t id;
    cr_assert_eq(call_sum(&a, 1, 1, &res, &id), AMP_OK); /* held back */
    /* the StartTLS call has no deadline: cancel it */
    cr_assert_eq(amp_session_cancel(a.s, 1), AMP_OK);
    cr_assert_eq(a.closed_events, 1);
    cr_assert_eq(a.closed_reason, AMP_E_CANCELLED);
    cr_assert_eq(res.status[1], AMP_E_CANCELLED);
    cr_assert_eq(res.status[id], AMP_E_CLOSED);
    amp_session_free(a.s);

    peer_init(&a, 0);
    call_sum(&a, 1, 1, &res, NULL);
    amp_session_close(a.s, AMP_E_CLOSED);
    amp_session_free(a.s);
    cr_assert_eq(a.closed_events, 0, "the owner's own close is not reported");
}

/* ---- every box whole: values over 65,535 bytes ---------------------------- */

static uint8_t huge[70000];

static void huge_answer(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    memset(huge, 'v', sizeof huge);
    /* a good pair first: nothing of it may be written either */
    amp_pair p[2] = {{(const uint8_t *)"ok", 2, (const uint8_t *)"1", 1},
                     {(const uint8_t *)"v", 1, huge, sizeof huge}};
    *(amp_err *)ud = amp_request_answer(req, p, 2);
}

static void huge_error(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    for (size_t i = 0; i < sizeof huge; i++)
        huge[i] = (uint8_t)"d\xc3\xa9"[i % 3]; /* UTF-8 that must not be cut in two */
    *(amp_err *)ud = amp_request_error_bytes(req, (const uint8_t *)"BIG", 3, huge, sizeof huge, 0);
}

/* The output of `p` since `total0` must be exactly one well-formed box whose
 * bytes match the count of queued bytes; it is copied into *out. */
static void one_whole_box(struct peer *p, uint64_t total0, amp_buf *out, amp_message *m,
                          amp_decoder **d)
{
    amp_buf_init(out);
    take_output(p, out);
    cr_assert_eq(amp_session_output_total(p->s) - total0, out->len,
                 "queued byte count %llu, bytes produced %zu",
                 (unsigned long long)(amp_session_output_total(p->s) - total0), out->len);
    cr_assert_eq(amp_decoder_new(d, NULL), AMP_OK);
    amp_decoder_feed(*d, out->data, out->len);
    static amp_box box;
    cr_assert_eq(amp_decoder_next(*d, &box), AMP_OK);
    cr_assert_eq(box.wire_len, out->len, "exactly one box");
    cr_assert_eq(amp_box_classify(&box, m), AMP_OK, "a well-formed error box");
    cr_assert_eq(m->kind, AMP_KIND_ERROR);
}

static int value_is(const amp_pair *p, const char *s)
{
    return p && p->value_len == strlen(s) && !memcmp(p->value, s, p->value_len);
}

Test(session, answer_over_the_value_limit_gets_unknown_in_one_whole_box)
{
    struct peer a, b;
    peer_init(&a, 0);
    peer_init(&b, 0);
    amp_err got = AMP_OK;
    amp_session_serve_str(b.s, "Huge", huge_answer, &got);
    static struct results res;
    memset(&res, 0, sizeof res);
    amp_session_call_str(a.s, "Huge", NULL, 0, NULL, collect, &res, NULL);
    uint64_t t0 = amp_session_output_total(b.s);
    pump(&a, &b, 0);
    cr_assert_eq(got, AMP_E_VALUE_TOO_LONG);
    amp_buf out;
    amp_message m;
    amp_decoder *d;
    one_whole_box(&b, t0, &out, &m, &d);
    cr_assert(value_is(m.error_code, "UNKNOWN"));
    cr_assert(value_is(m.error_description, "Unknown Error"));
    cr_assert(!amp_session_is_closed(b.s));
    amp_session_feed(a.s, out.data, out.len);
    cr_assert_eq(res.status[1], AMP_E_REMOTE);
    cr_assert_str_eq(res.code[1], "UNKNOWN");
    amp_decoder_free(d);
    amp_buf_free(&out);
    amp_session_free(a.s);
    amp_session_free(b.s);
}

Test(session, error_description_over_the_value_limit_is_cut_in_one_whole_box)
{
    struct peer a, b;
    peer_init(&a, 0);
    peer_init(&b, 0);
    amp_err got = AMP_OK;
    amp_session_serve_str(b.s, "Huge", huge_error, &got);
    static struct results res;
    memset(&res, 0, sizeof res);
    amp_session_call_str(a.s, "Huge", NULL, 0, NULL, collect, &res, NULL);
    uint64_t t0 = amp_session_output_total(b.s);
    pump(&a, &b, 0);
    cr_assert_eq(got, AMP_E_VALUE_TOO_LONG);
    amp_buf out;
    amp_message m;
    amp_decoder *d;
    one_whole_box(&b, t0, &out, &m, &d);
    cr_assert(value_is(m.error_code, "BIG"));
    const amp_pair *desc = m.error_description;
    cr_assert(desc->value_len <= AMP_MAX_VALUE_LEN && desc->value_len > 65000);
    const char *tail = "... (70000 bytes)";
    size_t kept = desc->value_len - strlen(tail);
    cr_assert(!memcmp(desc->value + kept, tail, strlen(tail)), "%.*s", 40,
              desc->value + desc->value_len - 40);
    cr_assert(!memcmp(desc->value, huge, kept), "a prefix of the description");
    cr_assert_neq(kept % 3, 2, "not cut inside a UTF-8 sequence");
    amp_session_feed(a.s, out.data, out.len);
    cr_assert_eq(a.protocol_errors, 0);
    cr_assert_eq(res.status[1], AMP_E_REMOTE);
    cr_assert_str_eq(res.code[1], "BIG");
    amp_decoder_free(d);
    amp_buf_free(&out);
    amp_session_free(a.s);
    amp_session_free(b.s);
}

Test(session, unhandled_description_for_a_long_name_is_bounded)
{
    struct peer a, b;
    peer_init(&a, 0);
    peer_init(&b, 0);
    static uint8_t name[60000];
    memset(name, 0xff, sizeof name); /* four bytes of repr each */
    static struct results res;
    memset(&res, 0, sizeof res);
    cr_assert_eq(amp_session_call(a.s, name, sizeof name, NULL, 0, NULL, collect, &res, NULL),
                 AMP_OK);
    uint64_t t0 = amp_session_output_total(b.s);
    pump(&a, &b, 0);
    amp_buf out;
    amp_message m;
    amp_decoder *d;
    one_whole_box(&b, t0, &out, &m, &d);
    cr_assert(value_is(m.error_code, "UNHANDLED"));
    amp_buf want;
    amp_buf_init(&want);
    amp_buf_append(&want, (const uint8_t *)"Unhandled Command: ", 19);
    amp_bytes_repr(&want, name, AMP_UNHANDLED_NAME_MAX);
    amp_buf_append(&want, (const uint8_t *)"... (60000 bytes)", 17);
    const amp_pair *desc = m.error_description;
    cr_assert(desc->value_len == want.len && !memcmp(desc->value, want.data, want.len),
              "%.*s", (int)desc->value_len, desc->value);
    cr_assert(!amp_session_is_closed(b.s));
    amp_session_feed(a.s, out.data, out.len);
    cr_assert_eq(res.status[1], AMP_E_REMOTE);
    cr_assert_str_eq(res.code[1], "UNHANDLED");
    /* a name of exactly the limit keeps Twisted's wording */
    amp_buf exact;
    amp_buf_init(&exact);
    cr_assert_eq(amp_unhandled_description(&exact, name, AMP_UNHANDLED_NAME_MAX), AMP_OK);
    cr_assert_eq(exact.len, want.len - 17);
    cr_assert(!memcmp(exact.data, want.data, exact.len));
    amp_buf_free(&exact);
    amp_buf_free(&want);
    amp_decoder_free(d);
    amp_buf_free(&out);
    amp_session_free(a.s);
    amp_session_free(b.s);
}

Test(session, a_call_that_cannot_be_encoded_writes_nothing)
{
    struct peer a;
    peer_init(&a, 0);
    /* during StartTLS (held back) and after, a bad pair anywhere in the
     * arguments leaves the output and its byte count untouched */
    for (int round = 0; round < 2; round++) {
        if (round == 0)
            cr_assert_eq(amp_session_start_tls(a.s, NULL, NULL), AMP_OK);
        uint64_t t0 = amp_session_output_total(a.s);
        size_t n0 = out_len(&a);
        amp_pair args[3] = {{(const uint8_t *)"a", 1, (const uint8_t *)"1", 1},
                            {(const uint8_t *)"b", 1, huge, sizeof huge},
                            {(const uint8_t *)"c", 1, (const uint8_t *)"1", 1}};
        cr_assert_eq(amp_session_call_str(a.s, "X", args, 3, NULL, NULL, NULL, NULL),
                     AMP_E_VALUE_TOO_LONG);
        args[1].value_len = 1;
        args[1].key_len = 0;
        cr_assert_eq(amp_session_call_str(a.s, "X", args, 3, NULL, NULL, NULL, NULL),
                     AMP_E_EMPTY_KEY);
        args[1].key_len = 300;
        cr_assert_eq(amp_session_call_str(a.s, "X", args, 3, NULL, NULL, NULL, NULL),
                     AMP_E_KEY_TOO_LONG);
        cr_assert_eq(amp_session_output_total(a.s), t0);
        cr_assert_eq(out_len(&a), n0);
        cr_assert_eq(amp_session_outstanding(a.s), round == 0, "only StartTLS");
        if (round == 0) {
            amp_session_free(a.s);
            peer_init(&a, 0);
        }
    }
    amp_session_free(a.s);
}

/* ---- calls that end locally leave the call table at once ------------------ */

static void count_status(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    int *counts = ud; /* [0]: timeouts, [1]: cancellations, [2]: others */
    counts[r->status == AMP_E_TIMEOUT ? 0 : r->status == AMP_E_CANCELLED ? 1 : 2]++;
}

static void feed_result(struct peer *p, const char *role, uint64_t id)
{
    char tag[24];
    snprintf(tag, sizeof tag, "%llx", (unsigned long long)id);
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair_str(&b, role, tag);
    if (!strcmp(role, "_error")) {
        amp_encode_pair_str(&b, "_error_code", "LATE");
        amp_encode_pair_str(&b, "_error_description", "too late");
    }
    amp_encode_end(&b);
    amp_session_feed(p->s, b.data, b.len);
    amp_buf_free(&b);
}

#define MANY 100000

Test(session, timed_out_calls_free_their_entries_and_late_answers_still_count)
{
    struct peer a;
    peer_init(&a, 0);
    int counts[3] = {0, 0, 0};
    size_t initial = amp__session_calltable_memory(a.s);
    amp_call_opts opts = {0, 1, 10};
    for (int i = 0; i < MANY; i++) {
        cr_assert_eq(amp_session_call_str(a.s, "Never", NULL, 0, &opts, count_status, counts,
                                          NULL), AMP_OK);
        if (i % 1000 == 999) /* the peer reads, it just never answers */
            amp_session_consume(a.s, out_len(&a));
    }
    size_t peak = amp__session_calltable_memory(a.s);
    cr_assert(peak >= MANY * 16, "the table held every call: %zu bytes", peak);
    amp_session_expire(a.s, 10);
    cr_assert_eq(counts[0], MANY);
    cr_assert_eq(amp_session_outstanding(a.s), 0);
    size_t after = amp__session_calltable_memory(a.s);
    cr_assert(after <= 16384,
              "memory back to small: %zu bytes (peak %zu, initial %zu)", after, peak, initial);

    /* cancelled calls leave too */
    uint64_t ids[1000];
    for (int i = 0; i < 1000; i++)
        amp_session_call_str(a.s, "Never", NULL, 0, NULL, count_status, counts, &ids[i]);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(amp_session_cancel(a.s, ids[i]), AMP_OK);
    cr_assert_eq(counts[1], 1000);
    cr_assert(amp__session_calltable_memory(a.s) <= 16384);

    /* late answers and errors for any of them are dropped and counted */
    feed_result(&a, "_answer", 1);
    feed_result(&a, "_answer", 50000);
    feed_result(&a, "_error", MANY);
    feed_result(&a, "_answer", ids[999]); /* a cancelled one */
    cr_assert_eq(amp_session_late_answers(a.s), 4);
    cr_assert_eq(a.protocol_errors, 0);
    cr_assert(!amp_session_is_closed(a.s));
    cr_assert_eq(counts[2], 0, "no call completed twice");

    /* a call still in flight is answered normally */
    static struct results res;
    memset(&res, 0, sizeof res);
    uint64_t live;
    amp_session_call_str(a.s, "Live", NULL, 0, NULL, count_status, counts, &live);
    feed_result(&a, "_answer", live);
    cr_assert_eq(counts[2], 1);
    cr_assert_eq(amp_session_late_answers(a.s), 4);

    /* a tag never issued is still a protocol error */
    feed_result(&a, "_answer", live + 1);
    cr_assert_eq(a.protocol_errors, 1);
    cr_assert_eq(a.last_protocol_error, AMP_E_UNKNOWN_TAG);
    amp_session_free(a.s);

    /* and so is a malformed one */
    const char *bad[] = {"0", "01", "A", "x", "", "10000000000000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        peer_init(&a, 0);
        amp_session_call_str(a.s, "X", NULL, 0, NULL, NULL, NULL, NULL);
        amp_buf b;
        amp_buf_init(&b);
        amp_encode_pair_str(&b, "_answer", bad[i]);
        amp_encode_end(&b);
        amp_session_feed(a.s, b.data, b.len);
        cr_assert_eq(a.last_protocol_error, AMP_E_UNKNOWN_TAG, "tag '%s'", bad[i]);
        amp_buf_free(&b);
        amp_session_free(a.s);
    }
}

Test(session, steady_timeouts_keep_the_table_small)
{
    /* a provider that never answers, called for ever: the table holds only
     * the calls of the last period */
    struct peer a;
    peer_init(&a, 0);
    int counts[3] = {0, 0, 0};
    size_t most = 0;
    for (uint64_t t = 1; t <= 2000; t++) {
        amp_call_opts opts = {0, 1, t + 5};
        for (int i = 0; i < 50; i++)
            amp_session_call_str(a.s, "Never", NULL, 0, &opts, count_status, counts, NULL);
        amp_session_consume(a.s, out_len(&a));
        amp_session_expire(a.s, t);
        size_t m = amp__session_calltable_memory(a.s);
        most = m > most ? m : most;
    }
    cr_assert_eq(counts[0], (2000 - 5) * 50);
    cr_assert(most <= 64 * 1024, "at most %zu bytes for about 300 calls in flight", most);
    amp_session_free(a.s);
}

/* ---- requests held for the peer ------------------------------------------- */

static void feed_call_with_tag(struct peer *p, size_t tag_len)
{
    static uint8_t tag[AMP_MAX_TAG_LEN + 1];
    memset(tag, 't', sizeof tag);
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair(&b, (const uint8_t *)"_ask", 4, tag, tag_len);
    amp_encode_pair_str(&b, "_command", "Hold");
    amp_encode_pair_str(&b, "a", "1");
    amp_encode_end(&b);
    amp_session_feed(p->s, b.data, b.len);
    amp_buf_free(&b);
}

Test(session, a_tag_over_the_limit_is_a_protocol_error)
{
    struct peer a;
    peer_init(&a, 0);
    nheld = 0;
    amp_session_serve_str(a.s, "Hold", holding_responder, NULL);
    feed_call_with_tag(&a, AMP_MAX_TAG_LEN);
    cr_assert_eq(nheld, 1);
    cr_assert_eq(a.protocol_errors, 0);
    feed_call_with_tag(&a, AMP_MAX_TAG_LEN + 1);
    cr_assert_eq(nheld, 1, "the call with the long tag reached the responder");
    cr_assert_eq(a.protocol_errors, 1);
    cr_assert_eq(a.last_protocol_error, AMP_E_TAG_TOO_LONG);
    amp_request_answer(held[0], NULL, 0);
    amp_session_free(a.s);
}

Test(session, unanswered_requests_are_accounted)
{
    amp_usage u = {0};
    struct peer a;
    peer_init_usage(&a, &u);
    nheld = 0;
    amp_session_serve_str(a.s, "Hold", holding_responder, NULL);
    for (int i = 0; i < 10; i++)
        feed_call_with_tag(&a, 200);
    cr_assert_eq(nheld, 10);
    size_t held_bytes = amp_session_request_bytes(a.s);
    cr_assert_geq(held_bytes, 10 * (200 + 4), "%zu", held_bytes);
    cr_assert_eq(u.request_bytes, held_bytes);
    for (int i = 0; i < 5; i++)
        amp_request_answer(held[i], NULL, 0);
    cr_assert_eq(u.request_bytes, amp_session_request_bytes(a.s));
    cr_assert_lt(amp_session_request_bytes(a.s), held_bytes);
    /* requests outlive their session; the accounting does not count them */
    amp_session_free(a.s);
    cr_assert_eq(u.request_bytes, 0);
    for (int i = 5; i < 10; i++)
        cr_assert_eq(amp_request_answer(held[i], NULL, 0), AMP_E_CLOSED);
    cr_assert_eq(u.request_bytes, 0);
}
