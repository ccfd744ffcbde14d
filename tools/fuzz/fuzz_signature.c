/* libFuzzer target for the broker's command signatures (broker/signature.c):
 * the three values of amp.Register are peer bytes. Nothing may crash; a
 * refusal is described; an accepted signature's canonical form fits its
 * caps and is a fixed point (checked again, it is accepted unchanged).
 *
 * Input: a mode byte, then the values. Mode bit 0x80: the rest is one
 * argument's type string (reaches the grammar at once); otherwise two u16
 * lengths split the rest into arguments, response and errors, and bits
 * 0x01/0x02/0x04 leave each of them absent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"
#include "signature.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_why(const char *why)
{
    if (!why[0])
        abort();
    for (const char *c = why; *c; c++)
        if (*c < 0x20 || *c > 0x7e)
            abort(); /* descriptions quote peer bytes escaped */
}

static size_t take(const uint8_t **p, size_t *n, size_t want)
{
    size_t k = want < *n ? want : *n;
    *p += k;
    *n -= k;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    amp_pair v[3];
    const amp_pair *use[3] = {NULL, NULL, NULL};
    uint8_t one[SIG_MAX_BYTES + 64];
    if (mode & 0x80) {
        if (n > SIG_MAX_BYTES)
            return 0;
        amp_buf b;
        amp_buf_init_fixed(&b, one, sizeof one);
        if (amp_encode_pair_str(&b, "name", "a") ||
            amp_encode_pair(&b, (const uint8_t *)"type", 4, p, n) || amp_encode_end(&b))
            abort();
        v[0] = (amp_pair){(const uint8_t *)"arguments", 9, b.data, b.len};
        use[0] = &v[0];
    } else {
        size_t len[3];
        const uint8_t *start[3];
        size_t la = n >= 2 ? (size_t)(p[0] << 8 | p[1]) : 0, lb = 0;
        take(&p, &n, 2);
        if (n >= 2)
            lb = (size_t)(p[0] << 8 | p[1]);
        take(&p, &n, 2);
        start[0] = p;
        len[0] = take(&p, &n, la);
        start[1] = p;
        len[1] = take(&p, &n, lb);
        start[2] = p;
        len[2] = n;
        for (int i = 0; i < 3; i++) {
            v[i] = (amp_pair){(const uint8_t *)"k", 1, start[i], len[i]};
            if (!(mode & (1 << i)))
                use[i] = &v[i];
        }
    }
    static struct sig_canon canon, again;
    char why[256];
    enum sig_status st = sig_parse(use[0], use[1], use[2], &canon, why, sizeof why);
    if (st == SIG_NONE) {
        if (use[0] || use[1] || use[2])
            abort();
        return 0;
    }
    if (st != SIG_OK) {
        check_why(why);
        return 0;
    }
    size_t total = canon.len.args + canon.len.resp + canon.len.errs;
    if (total > SIG_MAX_BYTES)
        abort();
    amp_pair c[3] = {
        {(const uint8_t *)"arguments", 9, canon.bytes, canon.len.args},
        {(const uint8_t *)"response", 8, canon.bytes + canon.len.args, canon.len.resp},
        {(const uint8_t *)"errors", 6, canon.bytes + canon.len.args + canon.len.resp,
         canon.len.errs},
    };
    if (sig_parse(&c[0], &c[1], &c[2], &again, why, sizeof why) != SIG_OK)
        abort();
    struct signature *s = sig_new(&again);
    if (!s || !sig_matches(s, &canon))
        abort();
    free(s);
    return 0;
}
