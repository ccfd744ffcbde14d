/* The allocator hook: every allocation of the core goes through the
 * allocator an object was given, is given back, and a refusal is an
 * AMP_E_NOMEM, never a crash or a leak. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "amp/core.h"

/* ---- a counting allocator that can also refuse after a budget ----------- */

struct counting {
    size_t allocs, frees, live;
    long budget; /* allocations left before refusing; < 0: unlimited */
    size_t refused;
};

static void *c_alloc(void *ctx, size_t n)
{
    struct counting *c = ctx;
    cr_assert_gt(n, 0, "the core never asks for 0 bytes");
    if (c->budget == 0) {
        c->refused++;
        return NULL;
    }
    if (c->budget > 0)
        c->budget--;
    void *p = malloc(n);
    if (p) {
        c->allocs++;
        c->live++;
    }
    return p;
}

static void *c_realloc(void *ctx, void *p, size_t n)
{
    struct counting *c = ctx;
    cr_assert_not_null(p, "realloc is only called on a block");
    if (c->budget == 0) {
        c->refused++;
        return NULL;
    }
    if (c->budget > 0)
        c->budget--;
    return realloc(p, n);
}

static void c_free(void *ctx, void *p)
{
    struct counting *c = ctx;
    cr_assert_not_null(p);
    cr_assert_gt(c->live, 0, "free of a block this allocator did not give");
    c->frees++;
    c->live--;
    free(p);
}

static amp_allocator counting_allocator(struct counting *c, long budget)
{
    memset(c, 0, sizeof *c);
    c->budget = budget;
    amp_allocator a = {c_alloc, c_realloc, c_free, c};
    return a;
}

static const uint8_t test_key[16] = "fixed key 16 byt";

/* ---- two sessions back to back ------------------------------------------ */

struct side {
    amp_session *s;
    int answers, errors, nomem, closed;
    int64_t last_total;
};

static void on_closed(amp_session *s, int reason, void *ud)
{
    ((struct side *)ud)->closed++;
}

static const amp_session_events side_events = {NULL, NULL, NULL, NULL, NULL, on_closed};

static amp_err side_new(struct side *sd, const amp_allocator *a)
{
    memset(sd, 0, sizeof *sd);
    amp_session_config cfg;
    amp_session_config_init(&cfg);
    cfg.allocator = a;
    cfg.hash_key = test_key;
    cfg.events = &side_events;
    cfg.user_data = sd;
    return amp_session_new(&sd->s, &cfg);
}

/* Move all output of `from` into `to`. */
static void pump(struct side *from, struct side *to)
{
    const uint8_t *p;
    size_t n;
    amp_session_output(from->s, &p, &n);
    if (!n)
        return;
    uint8_t *copy = malloc(n);
    memcpy(copy, p, n);
    amp_session_consume(from->s, n);
    amp_session_feed(to->s, copy, n);
    free(copy);
}

static void sum(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    const amp_pair *a = amp_box_find_str(args, "a");
    int64_t x = 0;
    if (!a || amp_int_parse(a->value, a->value_len, &x)) {
        amp_request_error(req, "BAD", "no a", 0);
        return;
    }
    char t[AMP_INT_MAX_LEN];
    size_t tn = amp_int_format(x + 1, t);
    amp_pair total = {(const uint8_t *)"total", 5, (const uint8_t *)t, tn};
    amp_request_answer(req, &total, 1);
}

static void fail_it(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    amp_request_error(req, "NOPE", "refused on purpose", 0);
}

static void on_result(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    struct side *sd = ud;
    if (r->status == AMP_OK) {
        const amp_pair *t = amp_box_find_str(r->box, "total");
        sd->answers++;
        if (t)
            amp_int_parse(t->value, t->value_len, &sd->last_total);
    } else if (r->status == AMP_E_REMOTE) {
        sd->errors++;
    }
}

/* Calls, answers, errors and an unhandled command from a client (its own
 * allocator `ca`) to a server whose allocator is `sa`, `rounds` of each.
 * Returns what amp_session_new() said for the server; whatever the
 * allocators refuse, everything is freed at the end. */
static amp_err conversation(const amp_allocator *ca, const amp_allocator *sa, int rounds,
                            struct side *result)
{
    struct side client, server;
    amp_err r = side_new(&server, sa);
    if (r != AMP_OK) {
        cr_assert_null(server.s);
        return r;
    }
    cr_assert_eq(side_new(&client, ca), AMP_OK);
    amp_err e = amp_session_serve_str(server.s, "Sum", sum, NULL);
    cr_assert(e == AMP_OK || e == AMP_E_NOMEM, "serve: %d", e);
    e = amp_session_serve_str(server.s, "Fail", fail_it, NULL);
    cr_assert(e == AMP_OK || e == AMP_E_NOMEM, "serve: %d", e);
    for (int i = 0; i < rounds; i++) {
        char v[AMP_INT_MAX_LEN];
        size_t vn = amp_int_format(i, v);
        amp_pair arg = {(const uint8_t *)"a", 1, (const uint8_t *)v, vn};
        static const char *cmds[] = {"Sum", "Fail", "Nobody"};
        for (int k = 0; k < 3; k++) {
            e = amp_session_call_str(client.s, cmds[k], &arg, 1, NULL, on_result, &client, NULL);
            cr_assert(e == AMP_OK || e == AMP_E_NOMEM || e == AMP_E_CLOSED, "call: %d", e);
        }
        pump(&client, &server);
        pump(&server, &client);
    }
    if (result)
        *result = client;
    amp_session_free(client.s);
    amp_session_free(server.s);
    return AMP_OK;
}

Test(alloc, counting_allocator_sees_every_block_freed)
{
    struct counting c;
    amp_allocator a = counting_allocator(&c, -1);
    struct side got;
    cr_assert_eq(conversation(&a, &a, 50, &got), AMP_OK);
    cr_assert_eq(got.answers, 50);
    cr_assert_eq(got.errors, 100, "Fail's errors and UNHANDLED");
    cr_assert_eq(got.last_total, 50);
    cr_assert_gt(c.allocs, 10, "the sessions allocated through the hook (%zu)", c.allocs);
    cr_assert_eq(c.live, 0, "%zu blocks not freed", c.live);
    cr_assert_eq(c.allocs, c.frees);
}

Test(alloc, decoder_buf_and_strmap_use_their_allocator)
{
    struct counting c;
    amp_allocator a = counting_allocator(&c, -1);
    amp_buf b;
    amp_buf_init_with(&b, &a);
    for (int i = 0; i < 200; i++)
        cr_assert_eq(amp_encode_pair_str(&b, "key", "a value long enough to grow"), AMP_OK);
    cr_assert_eq(amp_encode_end(&b), AMP_OK);
    cr_assert_gt(c.allocs, 0);

    amp_decoder *d;
    cr_assert_eq(amp_decoder_new_with(&d, NULL, &a), AMP_OK);
    size_t before = c.allocs;
    for (size_t i = 0; i < b.len; i += 7) { /* split: the decoder assembles the box */
        amp_box box;
        cr_assert_eq(amp_decoder_feed(d, b.data + i, b.len - i < 7 ? b.len - i : 7), AMP_OK);
        amp_err r;
        while ((r = amp_decoder_next(d, &box)) == AMP_OK)
            cr_assert_eq(box.count, 200);
        cr_assert_eq(r, AMP_AGAIN);
    }
    cr_assert_gt(c.allocs, before, "the decoder allocated through the hook");
    amp_decoder_free(d);
    amp_buf_free(&b);

    amp_strmap m;
    cr_assert_eq(amp_strmap_init_with(&m, test_key, &a), AMP_OK);
    for (int i = 0; i < 100; i++) {
        char k[16];
        size_t kn = amp_int_format(i, k);
        cr_assert_eq(amp_strmap_put(&m, (const uint8_t *)k, kn, a.alloc(a.ctx, 8)), AMP_OK);
    }
    void *seven = amp_strmap_remove(&m, (const uint8_t *)"7", 1); /* now the caller's */
    cr_assert_not_null(seven);
    amp_strmap_free(&m); /* frees the values with the map's allocator too */
    cr_assert_eq(c.live, 1, "only the removed value is left (%zu)", c.live);
    a.free(a.ctx, seven);
    cr_assert_eq(c.allocs, c.frees);
}

Test(alloc, every_refusal_is_nomem_and_nothing_leaks)
{
    /* refuse the n-th allocation of the server, for every n up to the point
     * where the whole conversation runs without a refusal */
    int completed = 0;
    long n;
    for (n = 0; n < 2000 && !completed; n++) {
        struct counting c;
        amp_allocator a = counting_allocator(&c, n);
        struct side got;
        amp_err r = conversation(NULL, &a, 3, &got);
        cr_assert(r == AMP_OK || r == AMP_E_NOMEM, "budget %ld: %d", n, r);
        cr_assert_eq(c.live, 0, "budget %ld: %zu blocks leaked", n, c.live);
        if (r == AMP_OK && c.refused == 0) {
            completed = 1;
            cr_assert_eq(got.answers, 3);
        }
    }
    cr_assert(completed, "the conversation never ran without a refusal");
    cr_assert_gt(n, 10, "refusals were tried at %ld points only", n);
}

Test(alloc, decoder_and_buf_refusals_are_nomem)
{
    struct counting c;
    amp_allocator a = counting_allocator(&c, 0);
    amp_decoder *d = (amp_decoder *)1;
    cr_assert_eq(amp_decoder_new_with(&d, NULL, &a), AMP_E_NOMEM);
    cr_assert_null(d);
    amp_buf b;
    amp_buf_init_with(&b, &a);
    cr_assert_eq(amp_encode_pair_str(&b, "k", "v"), AMP_E_NOMEM);
    cr_assert_eq(b.len, 0);
    amp_strmap m;
    cr_assert_eq(amp_strmap_init_with(&m, test_key, &a), AMP_E_NOMEM);
    cr_assert_null(m.slots);
    amp_strmap_free(&m);
    amp_session *s = (amp_session *)1;
    amp_session_config cfg;
    amp_session_config_init(&cfg);
    cfg.allocator = &a;
    cfg.hash_key = test_key;
    cr_assert_eq(amp_session_new(&s, &cfg), AMP_E_NOMEM);
    cr_assert_null(s);
    cr_assert_eq(c.live, 0);
}

Test(alloc, incomplete_allocator_is_invalid)
{
    amp_allocator a = {c_alloc, NULL, c_free, NULL};
    amp_decoder *d;
    cr_assert_eq(amp_decoder_new_with(&d, NULL, &a), AMP_E_INVALID);
    amp_strmap m;
    cr_assert_eq(amp_strmap_init_with(&m, test_key, &a), AMP_E_INVALID);
    amp_session *s;
    amp_session_config cfg;
    amp_session_config_init(&cfg);
    cfg.allocator = &a;
    cr_assert_eq(amp_session_new(&s, &cfg), AMP_E_INVALID);
}

/* ---- a fixed arena: first fit over one static block, no malloc ----------- */

#define ARENA_BYTES (256 * 1024)

struct arena {
    _Alignas(16) unsigned char mem[ARENA_BYTES];
    size_t top;         /* bytes handed out from the top so far */
    size_t used_blocks; /* blocks in use */
    size_t peak;
};

/* Each block: a 16-byte header {size, in use}, then the payload. */
struct block {
    size_t size;
    size_t used;
};
#define HDR 16

static struct block *block_of(void *p)
{
    return (struct block *)((unsigned char *)p - HDR);
}

static void *a_alloc(void *ctx, size_t n)
{
    struct arena *ar = ctx;
    n = (n + 15) & ~(size_t)15;
    for (size_t off = 0; off < ar->top;) { /* reuse a free block first */
        struct block *b = (struct block *)(ar->mem + off);
        if (!b->used && b->size >= n) {
            b->used = 1;
            ar->used_blocks++;
            return ar->mem + off + HDR;
        }
        off += HDR + b->size;
    }
    if (ARENA_BYTES - ar->top < HDR + n)
        return NULL;
    struct block *b = (struct block *)(ar->mem + ar->top);
    b->size = n;
    b->used = 1;
    ar->top += HDR + n;
    ar->used_blocks++;
    if (ar->top > ar->peak)
        ar->peak = ar->top;
    return (unsigned char *)b + HDR;
}

static void a_free(void *ctx, void *p)
{
    struct arena *ar = ctx;
    cr_assert((unsigned char *)p > ar->mem && (unsigned char *)p < ar->mem + ARENA_BYTES,
              "a block from outside the arena");
    struct block *b = block_of(p);
    cr_assert(b->used, "double free");
    b->used = 0;
    ar->used_blocks--;
}

static void *a_realloc(void *ctx, void *p, size_t n)
{
    struct block *b = block_of(p);
    if (b->size >= n)
        return p;
    void *q = a_alloc(ctx, n);
    if (!q)
        return NULL;
    memcpy(q, p, b->size);
    a_free(ctx, p);
    return q;
}

static struct arena the_arena;

Test(alloc, fixed_arena_runs_a_session)
{
    memset(&the_arena, 0, sizeof the_arena);
    amp_allocator a = {a_alloc, a_realloc, a_free, &the_arena};
    struct side got;
    cr_assert_eq(conversation(&a, &a, 500, &got), AMP_OK);
    cr_assert_eq(got.answers, 500);
    cr_assert_eq(got.errors, 1000);
    cr_assert_eq(got.closed, 0);
    cr_assert_eq(the_arena.used_blocks, 0, "%zu arena blocks still in use",
                 the_arena.used_blocks);
    cr_assert_gt(the_arena.peak, 0);
    cr_assert_lt(the_arena.peak, ARENA_BYTES);
}

