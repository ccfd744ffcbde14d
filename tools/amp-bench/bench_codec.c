/* amp-bench codec: libamp's decoder and encoder against Twisted's, on the
 * same bytes, in the same run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "amp/amp.h"
#include "bench.h"

#define CHUNK 65536

static uint8_t value4k[4096]; /* the 4 KiB value: same bytes in both encoders */

struct workload {
    const char *name;
    amp_buf stream;       /* the boxes, as Twisted would write them */
    size_t boxes;
    size_t value_len;     /* 0: Sum call boxes */
};

/* Keys sorted bytewise, as Twisted writes them; tags count in hex from 1. */
static void make_box(amp_buf *b, size_t i, size_t value_len, const uint8_t *value)
{
    char tag[20];
    int tn = snprintf(tag, sizeof tag, "%zx", i + 1);
    amp_encode_pair(b, (const uint8_t *)"_ask", 4, (const uint8_t *)tag, (size_t)tn);
    if (value_len) {
        amp_encode_pair_str(b, "_command", "Put");
        amp_encode_pair(b, (const uint8_t *)"data", 4, value, value_len);
    } else {
        amp_encode_pair_str(b, "_command", "Sum");
        amp_encode_pair_str(b, "a", "13");
        amp_encode_pair_str(b, "b", "81");
    }
    amp_encode_end(b);
}

static void build(struct workload *w, size_t boxes, size_t value_len)
{
    for (size_t i = 0; i < sizeof value4k; i++)
        value4k[i] = (uint8_t)(i * 7);
    amp_buf_init(&w->stream);
    w->boxes = boxes;
    w->value_len = value_len;
    for (size_t i = 0; i < boxes; i++)
        make_box(&w->stream, i, value_len, value4k);
}

/* Decode the whole stream in CHUNK-byte reads; returns seconds. */
static double time_decode(const amp_buf *s, size_t want_boxes)
{
    amp_decoder *d;
    amp_decoder_new(&d, NULL);
    size_t boxes = 0, pairs = 0;
    double t0 = bench_now();
    for (size_t off = 0; off < s->len; off += CHUNK) {
        size_t n = s->len - off < CHUNK ? s->len - off : CHUNK;
        amp_decoder_feed(d, s->data + off, n);
        amp_box box;
        while (amp_decoder_next(d, &box) == AMP_OK) {
            boxes++;
            pairs += box.count;
        }
    }
    double t = bench_now() - t0;
    if (boxes != want_boxes || amp_decoder_finish(d) != AMP_OK || pairs < boxes) {
        fprintf(stderr, "amp-bench: decoded %zu boxes, expected %zu\n", boxes, want_boxes);
        exit(1);
    }
    amp_decoder_free(d);
    return t;
}

/* Encode the same boxes (tags formatted per box, as a sender does). */
static double time_encode(const struct workload *w, amp_buf *out)
{
    const uint8_t *value = value4k;
    out->len = 0;
    double t0 = bench_now();
    for (size_t i = 0; i < w->boxes; i++) {
        char tag[20];
        size_t tn = 0;
        size_t x = i + 1;
        char rev[20];
        do {
            rev[tn++] = "0123456789abcdef"[x & 15];
            x >>= 4;
        } while (x);
        for (size_t k = 0; k < tn; k++)
            tag[k] = rev[tn - 1 - k];
        amp_pair ps[4];
        size_t np;
        ps[0] = (amp_pair){(const uint8_t *)"_ask", 4, (const uint8_t *)tag, tn};
        if (w->value_len) {
            ps[1] = (amp_pair){(const uint8_t *)"_command", 8, (const uint8_t *)"Put", 3};
            ps[2] = (amp_pair){(const uint8_t *)"data", 4, value, w->value_len};
            np = 3;
        } else {
            ps[1] = (amp_pair){(const uint8_t *)"_command", 8, (const uint8_t *)"Sum", 3};
            ps[2] = (amp_pair){(const uint8_t *)"a", 1, (const uint8_t *)"13", 2};
            ps[3] = (amp_pair){(const uint8_t *)"b", 1, (const uint8_t *)"81", 2};
            np = 4;
        }
        if (amp_encode_box(out, ps, np) != AMP_OK)
            exit(1);
    }
    return bench_now() - t0;
}

struct twisted_result {
    size_t boxes, bytes;
    double decode[16], encode[16];
    int runs;
};

static int run_twisted(const struct workload *w, size_t boxes, int runs,
                       struct twisted_result *tr)
{
    /* a prefix of the same stream: Twisted is far slower */
    size_t bytes = 0, n = 0;
    amp_decoder *d;
    amp_decoder_new(&d, NULL);
    amp_decoder_feed(d, w->stream.data, w->stream.len);
    amp_box box;
    while (n < boxes && amp_decoder_next(d, &box) == AMP_OK) {
        bytes += box.wire_len;
        n++;
    }
    amp_decoder_free(d);
    char path[] = "/tmp/amp-bench-codec-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, w->stream.data, bytes) != (ssize_t)bytes) {
        perror("amp-bench: temporary file");
        return -1;
    }
    close(fd);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/twisted_codec.py %s %d %d", bench_tools_dir(),
             path, CHUNK, runs);
    FILE *p = popen(cmd, "r");
    char out[8192] = {0};
    size_t got = p ? fread(out, 1, sizeof out - 1, p) : 0;
    int status = p ? pclose(p) : -1;
    unlink(path);
    if (status != 0 || got == 0) {
        fprintf(stderr, "amp-bench: the Twisted side failed (%s)\n", cmd);
        return -1;
    }
    tr->runs = runs;
    if (bench_json_size(out, "boxes", &tr->boxes) || bench_json_size(out, "bytes", &tr->bytes) ||
        bench_json_doubles(out, "decode", tr->decode, runs) ||
        bench_json_doubles(out, "encode", tr->encode, runs)) {
        fprintf(stderr, "amp-bench: cannot read the Twisted side's output: %s\n", out);
        return -1;
    }
    return 0;
}

int bench_codec(int argc, char **argv)
{
    int runs = 5;
    size_t sum_boxes = 2000000, put_boxes = 200000;
    size_t tw_sum = 200000, tw_put = 50000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) {
            sum_boxes = 200000;
            put_boxes = 20000;
            tw_sum = 20000;
            tw_put = 5000;
        } else {
            printf("usage: amp-bench codec [--runs N] [--quick]\n\n"
                   "Decode and encode throughput of libamp and of Twisted's own box parser\n"
                   "and serializer on the same bytes: (a) Sum a=13 b=81 call boxes, (b) boxes\n"
                   "carrying one 4 KiB value. Both decode in %d-byte reads. Prints medians\n"
                   "of N runs (default 5) and the ratios.\n", CHUNK);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (runs < 1 || runs > 16)
        runs = 5;
    struct workload w[2];
    w[0].name = "Sum a=13 b=81 calls";
    w[1].name = "4 KiB value boxes";
    build(&w[0], sum_boxes, 0);
    build(&w[1], put_boxes, 4096);
    size_t tw_boxes[2] = {tw_sum, tw_put};

    printf("amp-bench codec: libamp %s vs Twisted (its own parser and serializer),\n"
           "same bytes, %d-byte reads, median of %d runs\n\n", amp_version(), CHUNK, runs);
    printf("%-22s %-7s %14s %10s %14s %10s %8s\n", "workload", "op", "libamp box/s", "MB/s",
           "Twisted box/s", "MB/s", "ratio");
    for (int k = 0; k < 2; k++) {
        struct twisted_result tr;
        if (run_twisted(&w[k], tw_boxes[k], runs, &tr))
            return 1;
        double dec[16], enc[16];
        amp_buf out;
        amp_buf_init(&out);
        for (int r = 0; r < runs; r++) {
            dec[r] = time_decode(&w[k].stream, w[k].boxes);
            enc[r] = time_encode(&w[k], &out);
        }
        if (out.len != w[k].stream.len || memcmp(out.data, w[k].stream.data, out.len) != 0) {
            fprintf(stderr, "amp-bench: libamp encoded different bytes\n");
            return 1;
        }
        amp_buf_free(&out);
        const char *ops[2] = {"decode", "encode"};
        double *ours[2] = {dec, enc}, *theirs[2] = {tr.decode, tr.encode};
        for (int op = 0; op < 2; op++) {
            double t_ours = bench_median(ours[op], runs), t_tw = bench_median(theirs[op], runs);
            double ob = w[k].boxes / t_ours, tb = tr.boxes / t_tw;
            printf("%-22s %-7s %14.0f %10.0f %14.0f %10.1f %7.0fx\n", w[k].name, ops[op], ob,
                   w[k].stream.len / t_ours / 1e6, tb, tr.bytes / t_tw / 1e6, ob / tb);
        }
        amp_buf_free(&w[k].stream);
    }
    printf("\nMB/s is 10^6 bytes of AMP stream per second. libamp decodes %zu and %zu\n"
           "boxes per run; Twisted a prefix of %zu and %zu of the same stream.\n",
           sum_boxes, put_boxes, tw_sum, tw_put);
    return 0;
}
