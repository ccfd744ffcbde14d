/* libFuzzer target for the box decoder. The first input byte picks the
 * limits; the rest is the stream. Every stream is decoded three ways (whole,
 * one byte at a time, and at input-derived random splits) and the three must
 * agree exactly: same boxes, same error, same error offset. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"

struct outcome {
    uint64_t hash;   /* FNV-1a over every decoded key and value, in order */
    size_t boxes;
    int result;
    uint64_t offset;
};

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static void decode(const uint8_t *p, size_t n, const amp_limits *lim, int mode,
                   struct outcome *o)
{
    amp_decoder *d;
    if (amp_decoder_new(&d, lim) != AMP_OK)
        abort();
    memset(o, 0, sizeof *o);
    o->hash = 0xcbf29ce484222325ULL;
    uint32_t rng = (uint32_t)n * 2654435761u;
    size_t off = 0;
    int r = AMP_AGAIN;
    while (off < n && r == AMP_AGAIN) {
        size_t step = n - off;
        if (mode == 1)
            step = 1;
        else if (mode == 2) {
            rng = rng * 1103515245u + 12345u;
            step = 1 + (rng >> 16) % 97;
            if (step > n - off)
                step = n - off;
        }
        /* copy each chunk so that views into a freed chunk would be caught */
        uint8_t *chunk = malloc(step);
        memcpy(chunk, p + off, step);
        amp_decoder_feed(d, chunk, step);
        amp_box box;
        while ((r = amp_decoder_next(d, &box)) == AMP_OK) {
            o->boxes++;
            amp_message m;
            (void)amp_box_classify(&box, &m);
            for (size_t i = 0; i < box.count; i++) {
                if (box.pairs[i].key_len == 0 || box.pairs[i].key_len > 255)
                    abort();
                o->hash = fnv(o->hash, box.pairs[i].key, box.pairs[i].key_len);
                o->hash = fnv(o->hash, box.pairs[i].value, box.pairs[i].value_len);
            }
            if (box.count > lim->max_keys || box.wire_len > lim->max_box_bytes)
                abort();
        }
        free(chunk);
        off += step;
    }
    if (r == AMP_AGAIN)
        r = amp_decoder_finish(d);
    o->result = r;
    o->offset = amp_decoder_error_offset(d);
    amp_decoder_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const size_t keys[] = {0, 1, 2, 3, 8, 64, 0, 0};
    static const size_t bytes[] = {0, 2, 7, 16, 100, 300, 70000, 0};
    amp_limits lim;
    amp_limits_default(&lim);
    if (keys[data[0] & 7])
        lim.max_keys = keys[data[0] & 7];
    if (bytes[(data[0] >> 3) & 7])
        lim.max_box_bytes = bytes[(data[0] >> 3) & 7];
    lim.allow_empty_box = (data[0] >> 6) & 1;

    struct outcome o[3];
    for (int mode = 0; mode < 3; mode++)
        decode(data + 1, size - 1, &lim, mode, &o[mode]);
    for (int mode = 1; mode < 3; mode++) {
        if (memcmp(&o[0], &o[mode], sizeof o[0]) != 0) {
            fprintf(stderr, "mode %d disagrees with whole-input decoding: boxes %zu/%zu "
                            "result %d/%d offset %llu/%llu\n",
                    mode, o[0].boxes, o[mode].boxes, o[0].result, o[mode].result,
                    (unsigned long long)o[0].offset, (unsigned long long)o[mode].offset);
            abort();
        }
    }
    return 0;
}
