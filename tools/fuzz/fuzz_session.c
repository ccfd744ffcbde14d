/* libFuzzer target for the conversation layer: raw bytes from a peer into a
 * session that has calls outstanding and answers every call it gets, fed
 * whole, one byte at a time and at input-derived splits. Every outstanding
 * call must complete exactly once, whatever the bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"

#define CALLS 8

struct state {
    int completed[CALLS + 2];
    amp_request *held;
};

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
    amp_session *s;
    if (amp_session_new(&s, &cfg) != AMP_OK)
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
        amp_session_consume(s, on / 2 + 1);
    }
    amp_session_free(s);
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
