/* Images for measuring what amp::core adds to a Cortex-M firmware
 * (devices/footprint.sh). Three builds of this file:
 *   FOOTPRINT_EMPTY     the startup, semihosting output and the arena
 *                       (platform.c) only;
 *   FOOTPRINT_CODEC     plus every public codec function (alloc.h, box.h,
 *                       value.h, error.h), and a workload: decode a call fed
 *                       one byte at a time, read its values, encode an
 *                       answer;
 *   FOOTPRINT_SESSION   plus every public session function (session.h,
 *                       strmap.h), and a workload: serve that call and answer
 *                       it, make a call and take its answer.
 * The CMake file also builds the codec without Float (its table lacks
 * amp_float_parse and amp_float_format, which bring in the C library's
 * strtod and snprintf).
 * Every public function of a part is referenced from the table
 * `footprint_keep`, written by gen_keep.py from the part's headers and read
 * through a volatile pointer, so --gc-sections keeps the whole part, not
 * just what the workload happens to call (devices/footprint.sh subtracts
 * the tables themselves). Output goes through semihosting's write0 call (no stdio:
 * printf would outweigh the codec), one line: "arena high water N of M". */
#include <semihost.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "platform.h"
#if defined(FOOTPRINT_CODEC)
#include "amp/box.h"
#include "amp/value.h"
#endif
#if defined(FOOTPRINT_SESSION)
#include "amp/session.h"
#endif

typedef void (*any_fn)(void);
#define KEEP(f) ((any_fn)(f))

/* The arena, in every image alike (the empty one included). */
static const any_fn keep[] = {
    KEEP(amp_arena_init), KEEP(amp_arena_alloc), KEEP(amp_arena_realloc), KEEP(amp_arena_free),
};

#if defined(FOOTPRINT_CODEC)
/* Every public function of the part, from its headers (gen_keep.py). */
extern const any_fn footprint_keep[];
extern const unsigned footprint_keep_count;
#endif

#if defined(FOOTPRINT_CODEC)
/* Twisted's bytes for callRemote(Sum, a=13, b=81), tag 1. */
static const uint8_t sum_call[] = {
    0x00, 0x04, '_', 'a', 's', 'k', 0x00, 0x01, '1',
    0x00, 0x08, '_', 'c', 'o', 'm', 'm', 'a', 'n', 'd', 0x00, 0x03, 'S', 'u', 'm',
    0x00, 0x01, 'a', 0x00, 0x02, '1', '3',
    0x00, 0x01, 'b', 0x00, 0x02, '8', '1', 0x00, 0x00};

static int64_t int_arg(const amp_box *b, const char *key)
{
    const amp_pair *p = amp_box_find_str(b, key);
    int64_t v = 0;
    if (p)
        amp_int_parse(p->value, p->value_len, &v);
    return v;
}

/* The codec alone: what a device that frames its own conversation does. */
static int codec_workload(void)
{
    amp_decoder *d;
    if (device_decoder_new(&d, NULL) != AMP_OK)
        return 0;
    int64_t total = -1;
    amp_box box;
    for (size_t i = 0; i < sizeof sum_call; i++) {
        amp_decoder_feed(d, sum_call + i, 1);
        while (amp_decoder_next(d, &box) == AMP_OK) {
            amp_message m;
            if (amp_box_classify(&box, &m) == AMP_OK && m.kind == AMP_KIND_CALL)
                total = int_arg(&box, "a") + int_arg(&box, "b");
        }
    }
    amp_decoder_free(d);
    char digits[AMP_INT_MAX_LEN];
    amp_buf out;
    device_buf_init(&out);
    int ok = amp_encode_pair(&out, (const uint8_t *)"_answer", 7, (const uint8_t *)"1", 1) ==
                 AMP_OK &&
             amp_encode_pair(&out, (const uint8_t *)"total", 5, (const uint8_t *)digits,
                             amp_int_format(total, digits)) == AMP_OK &&
             amp_encode_end(&out) == AMP_OK && total == 94;
    amp_buf_free(&out);
    return ok;
}
#endif

#if defined(FOOTPRINT_SESSION)
static void serve_sum(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    char digits[AMP_INT_MAX_LEN];
    amp_pair out = {(const uint8_t *)"total", 5, (const uint8_t *)digits,
                    amp_int_format(int_arg(args, "a") + int_arg(args, "b"), digits)};
    amp_request_answer(req, &out, 1);
}

static void sum_done(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    *(int *)ud = r->status == AMP_OK && r->box && int_arg(r->box, "total") == 94;
}

/* Two sessions wired back to back: one calls Sum, the other serves it. */
static int session_workload(void)
{
    amp_session *client, *server;
    if (device_session_new(&client, NULL, NULL) != AMP_OK)
        return 0;
    if (device_session_new(&server, NULL, NULL) != AMP_OK) {
        amp_session_free(client);
        return 0;
    }
    int answered = 0;
    amp_pair args[] = {{(const uint8_t *)"a", 1, (const uint8_t *)"13", 2},
                       {(const uint8_t *)"b", 1, (const uint8_t *)"81", 2}};
    int ok = amp_session_serve_str(server, "Sum", serve_sum, NULL) == AMP_OK &&
             amp_session_call_str(client, "Sum", args, 2, NULL, sum_done, &answered, NULL) ==
                 AMP_OK;
    for (int round = 0; ok && round < 2; round++) {
        amp_session *from = round == 0 ? client : server, *to = round == 0 ? server : client;
        const uint8_t *p;
        size_t n;
        amp_session_output(from, &p, &n);
        ok = amp_session_feed(to, p, n) == AMP_OK;
        amp_session_consume(from, n);
    }
    amp_session_free(client);
    amp_session_free(server);
    return ok && answered;
}
#endif

static void put_number(char *out, size_t v)
{
    char rev[24];
    size_t n = 0;
    do {
        rev[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *out++ = rev[--n];
    *out = 0;
}

int main(void)
{
    const any_fn *volatile table = keep;
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (!table[i])
            return 2;
#if defined(FOOTPRINT_CODEC)
    const any_fn *volatile part = footprint_keep;
    for (unsigned i = 0; i < footprint_keep_count; i++)
        if (!part[i])
            return 2;
#endif
    int ok = 1;
    device_init();
#if defined(FOOTPRINT_CODEC)
    ok = codec_workload();
#endif
#if defined(FOOTPRINT_SESSION)
    ok = ok && session_workload();
#endif
    size_t high = device_mem_high_water(), size = device_mem_size();
    char line[80] = "arena high water ";
    put_number(line + strlen(line), high);
    strcat(line, " of ");
    put_number(line + strlen(line), size);
    strcat(line, "\n");
    sys_semihost_write0(line);
    return ok ? 0 : 1;
}
