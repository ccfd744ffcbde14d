/* libFuzzer target for the conversation layer: raw bytes from a peer into a
 * session that has calls outstanding and answers every call it gets, fed
 * whole, one byte at a time and at input-derived splits. Every outstanding
 * call must complete exactly once, whatever the bytes; the shared byte
 * accounting must match what the session holds at every step and fall to
 * zero when it is freed; a session that closes itself must say so once;
 * every box it writes must decode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"

#define CALLS 8

struct state {
    int completed[CALLS + 2];
    amp_request *held;
    int closed_events;
};

static void on_closed(amp_session *s, int reason, void *ud)
{
    struct state *st = ud;
    if (!amp_session_is_closed(s) || amp_session_outstanding(s) != 0 || ++st->closed_events > 1)
        abort();
}

static const amp_session_events events = {NULL, NULL, NULL, NULL, NULL, on_closed};

/* Every byte the session writes is a sequence of well-formed boxes. */
static void check_output(amp_decoder *out, const uint8_t *p, size_t n)
{
    amp_box box;
    amp_message m;
    amp_decoder_feed(out, p, n);
    amp_err r;
    while ((r = amp_decoder_next(out, &box)) == AMP_OK)
        if (amp_box_classify(&box, &m) != AMP_OK)
            abort();
    if (r != AMP_AGAIN)
        abort();
}

static void on_result(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    struct state *st = ud;
    if (id == 0 || id > CALLS || ++st->completed[id] > 1)
        abort();
}

static void responder(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    struct state *st = ud;
    const amp_pair *cmd = amp_request_command(req);
    if (cmd->value_len && cmd->value[0] == 'E') {
        amp_request_error(req, "E", "error", cmd->value_len > 1 && cmd->value[1] == 'F');
    } else if (cmd->value_len && cmd->value[0] == 'H' && !st->held) {
        st->held = req; /* answered after the session is gone */
    } else {
        amp_request_answer(req, args->pairs, 0);
    }
}

static void run(const uint8_t *p, size_t n, int mode)
{
    struct state st;
    memset(&st, 0, sizeof st);
    amp_session_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.limits.max_keys = 16;
    cfg.limits.max_box_bytes = 4096;
    cfg.output_hard_cap = 1 << 16;
    cfg.events = &events;
    cfg.user_data = &st;
    amp_usage usage = {0};
    cfg.usage = &usage;
    amp_session *s;
    amp_decoder *out;
    if (amp_session_new(&s, &cfg) != AMP_OK || amp_decoder_new(&out, NULL) != AMP_OK)
        abort();
    amp_session_serve_fallback(s, responder, &st);
    amp_call_opts opts = {0, 1, 50};
    for (int i = 0; i < CALLS; i++)
        if (amp_session_call_str(s, "C", NULL, 0, i % 2 ? &opts : NULL, on_result, &st, NULL))
            abort();
    uint32_t rng = (uint32_t)n;
    size_t off = 0;
    while (off < n && !amp_session_is_closed(s)) {
        size_t step = mode == 0 ? n - off : mode == 1 ? 1 : 1 + (rng = rng * 1103515245u + 12345u) % 61;
        if (step > n - off)
            step = n - off;
        amp_session_feed(s, p + off, step);
        off += step;
        if (off > n / 2)
            amp_session_expire(s, 100);
        const uint8_t *o;
        size_t on;
        amp_session_output(s, &o, &on);
        if (usage.input_bytes != amp_session_input_pending(s) || usage.output_bytes < on)
            abort();
        size_t took = on ? on / 2 + 1 : 0;
        check_output(out, o, took);
        amp_session_consume(s, took);
        amp_session_output(s, &o, &on);
        if (usage.output_bytes != on)
            abort(); /* nothing is held back: no StartTLS here */
    }
    amp_session_free(s);
    amp_decoder_free(out);
    if (usage.input_bytes || usage.output_bytes)
        abort();
    if (st.held)
        amp_request_answer(st.held, NULL, 0);
    for (int i = 1; i <= CALLS; i++)
        if (st.completed[i] != 1)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int mode = 0; mode < 3; mode++)
        run(data, size, mode);
    return 0;
}
