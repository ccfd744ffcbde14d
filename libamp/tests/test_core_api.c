/* Core API contracts: destroy-notify of responders, the responder table's
 * key, the reserved keys, and the init functions of the structs callers
 * fill. */
#include <criterion/criterion.h>
#include <string.h>

#include "amp/core.h"

static const uint8_t test_key[16] = "fixed key 16 byt";

/* ---- destroy-notify of responders ------------------------------------------ */

static int destroyed[4];

static void destroy_slot(void *ud)
{
    destroyed[(int *)ud - destroyed]++;
}

static void nop(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    amp_request_answer(req, NULL, 0);
}

static amp_session *plain_session(void)
{
    amp_session *s;
    amp_session_config cfg;
    amp_session_config_init(&cfg);
    cfg.hash_key = test_key;
    cr_assert_eq(amp_session_new(&s, &cfg), AMP_OK);
    return s;
}

Test(destroy_notify, unserve_and_free_run_it_once)
{
    memset(destroyed, 0, sizeof destroyed);
    amp_session *s = plain_session();
    cr_assert_eq(amp_session_serve_full(s, (const uint8_t *)"A", 1, nop, &destroyed[0],
                                        destroy_slot), AMP_OK);
    cr_assert_eq(amp_session_serve_full(s, (const uint8_t *)"B", 1, nop, &destroyed[1],
                                        destroy_slot), AMP_OK);
    /* a refused registration never runs it: the caller still owns user_data */
    cr_assert_eq(amp_session_serve_full(s, (const uint8_t *)"A", 1, nop, &destroyed[2],
                                        destroy_slot), AMP_E_DUPLICATE);
    cr_assert_eq(destroyed[2], 0);
    cr_assert_eq(amp_session_unserve_str(s, "A"), AMP_OK);
    cr_assert_eq(destroyed[0], 1);
    cr_assert_eq(destroyed[1], 0);
    amp_session_serve_fallback_full(s, nop, &destroyed[3], destroy_slot);
    cr_assert_eq(destroyed[3], 0);
    amp_session_free(s);
    cr_assert_eq(destroyed[0], 1, "not again after unserve");
    cr_assert_eq(destroyed[1], 1);
    cr_assert_eq(destroyed[2], 0);
    cr_assert_eq(destroyed[3], 1);
}

Test(destroy_notify, replacing_the_fallback_runs_it)
{
    memset(destroyed, 0, sizeof destroyed);
    amp_session *s = plain_session();
    amp_session_serve_fallback_full(s, nop, &destroyed[0], destroy_slot);
    amp_session_serve_fallback_full(s, nop, &destroyed[1], destroy_slot);
    cr_assert_eq(destroyed[0], 1);
    amp_session_serve_fallback(s, NULL, NULL); /* back to UNHANDLED */
    cr_assert_eq(destroyed[1], 1);
    amp_session_free(s);
    cr_assert_eq(destroyed[0], 1);
    cr_assert_eq(destroyed[1], 1);
}

static void frees_its_session(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    amp_session_free(s); /* deferred until the feed returns */
    cr_assert_eq(destroyed[0], 0, "not while the session is still running callbacks");
    amp_request_answer(req, NULL, 0);
}

Test(destroy_notify, runs_after_a_free_deferred_from_a_callback)
{
    memset(destroyed, 0, sizeof destroyed);
    amp_session *s = plain_session();
    cr_assert_eq(amp_session_serve_full(s, (const uint8_t *)"Bye", 3, frees_its_session,
                                        &destroyed[0], destroy_slot), AMP_OK);
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair_str(&b, "_command", "Bye");
    amp_encode_pair_str(&b, "_ask", "1");
    amp_encode_end(&b);
    amp_session_feed(s, b.data, b.len);
    cr_assert_eq(destroyed[0], 1);
    amp_buf_free(&b);
}

/* ---- entropy and reserved keys -------------------------------------------- */

Test(strmap_key, a_given_key_decides_the_hash)
{
    amp_strmap a, b;
    cr_assert_eq(amp_strmap_init_with(&a, test_key, NULL), AMP_OK);
    cr_assert_eq(amp_strmap_init_with(&b, test_key, NULL), AMP_OK);
    cr_assert_eq(amp_strmap_hash(&a, (const uint8_t *)"Sum", 3),
                 amp_siphash24(test_key, (const uint8_t *)"Sum", 3));
    cr_assert_eq(amp_strmap_hash(&a, (const uint8_t *)"Sum", 3),
                 amp_strmap_hash(&b, (const uint8_t *)"Sum", 3));
    amp_strmap_free(&a);
    amp_strmap_free(&b);
    uint8_t k1[16], k2[16];
    cr_assert_eq(amp_random_key(k1), AMP_OK, "Linux has getrandom()");
    cr_assert_eq(amp_random_key(k2), AMP_OK);
    cr_assert_neq(memcmp(k1, k2, 16), 0);
}

Test(reserved, the_protocol_keys_and_only_those)
{
    static const char *yes[] = {"_ask", "_answer", "_command", "_error", "_error_code",
                                "_error_description"};
    static const char *no[] = {"", "_", "ask", "_Ask", "_asks", "_timeout", "_error_", "a",
                               "_errorcode"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        amp_pair p = {(const uint8_t *)yes[i], strlen(yes[i]), NULL, 0};
        cr_assert(amp_pair_is_reserved(&p), "%s", yes[i]);
        cr_assert(amp_key_is_reserved(p.key, p.key_len), "%s", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        amp_pair p = {(const uint8_t *)no[i], strlen(no[i]), NULL, 0};
        cr_assert_not(amp_pair_is_reserved(&p), "'%s'", no[i]);
    }
    amp_pair nul = {(const uint8_t *)"_ask\0", 5, NULL, 0}; /* the length decides */
    cr_assert_not(amp_pair_is_reserved(&nul));
    cr_assert_not(amp_pair_is_reserved(NULL));
}

Test(session_config, init_fills_the_defaults)
{
    amp_session_config cfg;
    memset(&cfg, 0xa5, sizeof cfg);
    amp_session_config_init(&cfg);
    cr_assert_eq(cfg.limits.max_keys, AMP_DEFAULT_MAX_KEYS);
    cr_assert_eq(cfg.limits.max_box_bytes, AMP_DEFAULT_MAX_BOX_BYTES);
    cr_assert_eq(cfg.output_high_water, AMP_DEFAULT_OUTPUT_HIGH_WATER);
    cr_assert_eq(cfg.output_hard_cap, AMP_DEFAULT_OUTPUT_HARD_CAP);
    cr_assert_null(cfg.events);
    cr_assert_null(cfg.allocator);
    cr_assert_null(cfg.hash_key);
    cr_assert_null(cfg.usage);
    amp_session *s;
    cr_assert_eq(amp_session_new(&s, &cfg), AMP_OK);
    amp_session_free(s);
}

Test(session_config, the_other_init_functions_leave_nothing_set)
{
    amp_session_events ev;
    memset(&ev, 0xa5, sizeof ev);
    amp_session_events_init(&ev);
    cr_assert(!ev.protocol_error && !ev.backpressure && !ev.close_after_flush &&
              !ev.start_tls && !ev.output_ready && !ev.closed);
    amp_usage u;
    memset(&u, 0xa5, sizeof u);
    amp_usage_init(&u);
    cr_assert(!u.output_bytes && !u.input_bytes && !u.request_bytes);
    amp_call_opts o;
    memset(&o, 0xa5, sizeof o);
    amp_call_opts_init(&o);
    cr_assert(!o.no_answer && !o.has_deadline && !o.deadline);
    /* a session driven with them behaves as with NULLs: the call waits */
    amp_session_config cfg;
    amp_session_config_init(&cfg);
    cfg.events = &ev;
    cfg.usage = &u;
    amp_session *s;
    cr_assert_eq(amp_session_new(&s, &cfg), AMP_OK);
    uint64_t id;
    cr_assert_eq(amp_session_call_str(s, "X", NULL, 0, &o, NULL, NULL, &id), AMP_OK);
    cr_assert_neq(id, 0);
    cr_assert_eq(amp_session_outstanding(s), 1);
    cr_assert_gt(u.output_bytes, 0);
    amp_session_free(s);
    cr_assert_eq(u.output_bytes, 0);
}
