/* The spec's golden vectors (spec/vectors, generated from Twisted)
 * run through amp::core on the target: framing decoded at several splits
 * and encoded byte for byte, every typed value both ways, conversation
 * classification, and a session conversation (a call answered, a declared
 * error, an unknown command, a call without _ask, an answer for a tag never
 * issued). All memory comes from the static arena of platform.h.
 *
 * Output: one line per vector group ("PASS framing: 15 vectors"), a FAIL
 * line per failing vector, and a summary; the exit status is 0 only when
 * every vector passed. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "amp/box.h"
#include "amp/session.h"
#include "amp/value.h"
#include "platform.h"
#include "vectors.h"

static unsigned failures;

#define FAIL(...)                                                                              \
    do {                                                                                       \
        printf("FAIL ");                                                                       \
        printf(__VA_ARGS__);                                                                   \
        printf("\n");                                                                          \
        failures++;                                                                            \
    } while (0)

/* One line per group: its name, how many vectors, how many failed. */
static void report(const char *group, uint32_t count, unsigned failed)
{
    printf("%s %s: %lu vectors", failed ? "FAIL" : "PASS", group, (unsigned long)count);
    if (failed)
        printf(", %u failed", failed);
    printf("\n");
}

/* Everything a group allocated has been given back to the arena. */
static void check_leaks(const char *group)
{
    size_t held = device_mem_in_use();
    if (held)
        FAIL("%s: %lu bytes still allocated after the group", group, (unsigned long)held);
}

static int same(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static int same_v(const uint8_t *a, size_t an, vbytes b)
{
    return same(a, an, b.p, b.n);
}

static void to_limits(const vlimits *v, amp_limits *l)
{
    amp_limits_default(l);
    if (v->max_keys)
        l->max_keys = v->max_keys;
    if (v->max_box_bytes)
        l->max_box_bytes = v->max_box_bytes;
    l->allow_empty_box = v->allow_empty_box;
}

/* ---- framing -------------------------------------------------------------- */

/* 0: the whole input in one block; RANDOM: blocks of 1..700 bytes. */
#define RANDOM_SPLITS ((size_t)-1)
static const size_t chunkings[] = {0, 1, 2, 7, 64, RANDOM_SPLITS};
#define NCHUNKINGS (sizeof chunkings / sizeof chunkings[0])

typedef struct decoded {
    amp_err err;         /* AMP_OK, or how decoding ended */
    uint64_t err_offset;
    uint32_t nboxes;
    int mismatch;        /* a box differed from the expected one */
} decoded;

static int box_is(const amp_box *got, const vbox *want)
{
    if (got->count != want->npairs)
        return 0;
    for (size_t i = 0; i < got->count; i++) {
        const amp_pair *p = &got->pairs[i];
        if (!same_v(p->key, p->key_len, want->pairs[i].key) ||
            !same_v(p->value, p->value_len, want->pairs[i].value))
            return 0;
    }
    return 1;
}

/* Decode `n` bytes fed in blocks of `chunk`, comparing each box with
 * `want` (when given). */
static decoded decode_all(const uint8_t *data, size_t n, size_t chunk, const amp_limits *lim,
                          const vbox *want, uint32_t nwant)
{
    decoded r = {AMP_OK, 0, 0, 0};
    amp_decoder *d;
    r.err = device_decoder_new(&d, lim);
    if (r.err != AMP_OK)
        return r;
    uint32_t seed = 12345;
    size_t off = 0;
    do {
        size_t step = chunk ? chunk : (n ? n : 1);
        if (chunk == RANDOM_SPLITS) {
            seed = seed * 1103515245u + 12345u;
            step = 1 + (seed >> 16) % 700;
        }
        size_t k = n - off < step ? n - off : step;
        r.err = amp_decoder_feed(d, data + off, k);
        if (r.err != AMP_OK)
            break;
        amp_box box;
        while ((r.err = amp_decoder_next(d, &box)) == AMP_OK) {
            if (want && (r.nboxes >= nwant || !box_is(&box, &want[r.nboxes])))
                r.mismatch = 1;
            r.nboxes++;
        }
        if (r.err != AMP_AGAIN)
            break;
        off += k;
    } while (off < n);
    if (r.err == AMP_AGAIN)
        r.err = amp_decoder_finish(d);
    r.err_offset = amp_decoder_error_offset(d);
    amp_decoder_free(d);
    return r;
}

static int check_encode(const vframe *v)
{
    const vbox *b = &v->boxes[0];
    static amp_pair ps[1024]; /* off the stack: the board has 32 KiB of it */
    if (b->npairs > sizeof ps / sizeof ps[0])
        return 0;
    for (uint32_t i = 0; i < b->npairs; i++) {
        ps[i].key = b->pairs[i].key.p;
        ps[i].key_len = b->pairs[i].key.n;
        ps[i].value = b->pairs[i].value.p;
        ps[i].value_len = b->pairs[i].value.n;
    }
    amp_buf whole, one;
    device_buf_init(&whole);
    device_buf_init(&one);
    int ok = amp_encode_box(&whole, ps, b->npairs) == AMP_OK &&
             same_v(whole.data, whole.len, v->wire) &&
             amp_box_encoded_size(ps, b->npairs) == v->wire.n;
    for (uint32_t i = 0; ok && i < b->npairs; i++)
        ok = amp_encode_pair(&one, ps[i].key, ps[i].key_len, ps[i].value, ps[i].value_len) ==
             AMP_OK;
    ok = ok && amp_encode_end(&one) == AMP_OK && same_v(one.data, one.len, v->wire);
    amp_buf_free(&whole);
    amp_buf_free(&one);
    return ok;
}

static int check_lookups(const vframe *v)
{
    if (!v->nlookups)
        return 1;
    amp_decoder *d;
    amp_box box;
    int ok = device_decoder_new(&d, NULL) == AMP_OK &&
             amp_decoder_feed(d, v->wire.p, v->wire.n) == AMP_OK &&
             amp_decoder_next(d, &box) == AMP_OK;
    for (uint32_t i = 0; ok && i < v->nlookups; i++) {
        const amp_pair *p = amp_box_find(&box, v->lookups[i].key.p, v->lookups[i].key.n);
        ok = p && same_v(p->value, p->value_len, v->lookups[i].value);
    }
    amp_decoder_free(d);
    return ok;
}

static void run_framing(void)
{
    unsigned before = failures;
    for (uint32_t i = 0; i < vec_nframes; i++) {
        const vframe *v = &vec_frames[i];
        amp_limits lim;
        to_limits(&v->limits, &lim);
        for (size_t c = 0; c < NCHUNKINGS; c++) {
            decoded r = decode_all(v->wire.p, v->wire.n, chunkings[c], &lim, v->boxes,
                                   v->nboxes);
            if (r.err != AMP_OK || r.mismatch || r.nboxes != v->nboxes) {
                FAIL("framing '%s' (split %d): %s, %lu boxes%s", v->name, (int)c,
                     amp_errname(r.err), (unsigned long)r.nboxes,
                     r.mismatch ? ", a box differs" : "");
                break;
            }
        }
        if (v->encode && !check_encode(v))
            FAIL("framing '%s': encoded bytes differ from Twisted's", v->name);
        if (!check_lookups(v))
            FAIL("framing '%s': a lookup differs from Twisted's parse", v->name);
    }
    report("framing", vec_nframes, failures - before);
}

static int reject_once(const vreject *v, size_t n, const amp_limits *lim)
{
    for (size_t c = 0; c < NCHUNKINGS; c++) {
        decoded r = decode_all(v->wire.p, n, chunkings[c], lim, NULL, 0);
        if (strcmp(amp_errname(r.err), v->error) != 0 || r.err_offset != v->offset ||
            r.nboxes != v->boxes_before) {
            FAIL("reject '%s' (%lu bytes, split %d): %s at %lu after %lu boxes, want %s at %lu "
                 "after %lu", v->name, (unsigned long)n, (int)c, amp_errname(r.err),
                 (unsigned long)r.err_offset, (unsigned long)r.nboxes, v->error,
                 (unsigned long)v->offset, (unsigned long)v->boxes_before);
            return 0;
        }
    }
    return 1;
}

static void run_rejects(void)
{
    unsigned before = failures;
    for (uint32_t i = 0; i < vec_nrejects; i++) {
        const vreject *v = &vec_rejects[i];
        amp_limits lim;
        to_limits(&v->limits, &lim);
        if (!v->every_prefix)
            reject_once(v, v->wire.n, &lim);
        for (size_t cut = 1; v->every_prefix && cut < v->wire.n; cut++)
            if (!reject_once(v, cut, &lim))
                break;
    }
    report("reject", vec_nrejects, failures - before);
}

/* ---- typed values ------------------------------------------------------------ */

static amp_err encode_value(const vvalue *v, amp_buf *out);

static amp_err append(amp_buf *out, const void *p, size_t n)
{
    return amp_buf_append(out, (const uint8_t *)p, n);
}

static amp_decimal to_decimal(const vvalue *v)
{
    amp_decimal d;
    d.kind = (amp_decimal_kind)v->kind;
    d.negative = v->flag;
    d.exponent = v->exponent;
    d.digits = v->bytes.n ? (const char *)v->bytes.p : "";
    d.ndigits = v->bytes.n;
    return d;
}

static amp_datetime to_datetime(const vvalue *v)
{
    amp_datetime t = {v->dt[0], v->dt[1], v->dt[2], v->dt[3],
                      v->dt[4], v->dt[5], v->dt[6], v->dt[7]};
    return t;
}

static double to_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static amp_err encode_integer(vbytes text, amp_buf *out)
{
    int64_t x;
    amp_err r = amp_int_parse(text.p, text.n, &x);
    if (r == AMP_E_RANGE && amp_bigint_check(text.p, text.n) == AMP_OK)
        return append(out, text.p, text.n); /* arbitrary precision: the text itself */
    if (r != AMP_OK)
        return r;
    char tmp[AMP_INT_MAX_LEN];
    return append(out, tmp, amp_int_format(x, tmp));
}

/* Each element goes into a buffer of its own, then into the list. */
static amp_err encode_list(const vvalue *v, amp_buf *out)
{
    amp_err r = AMP_OK;
    for (uint32_t i = 0; r == AMP_OK && i < v->nitems; i++) {
        amp_buf elem;
        device_buf_init(&elem);
        r = encode_value(&v->items[i], &elem);
        if (r == AMP_OK)
            r = amp_list_append(out, elem.data, elem.len);
        amp_buf_free(&elem);
    }
    return r;
}

static amp_err encode_amplist(const vvalue *v, amp_buf *out)
{
    amp_err r = AMP_OK;
    for (uint32_t i = 0; r == AMP_OK && i < v->nitems; i++) {
        const vvalue *box = &v->items[i];
        for (uint32_t k = 0; r == AMP_OK && k < box->nitems; k++) {
            amp_buf field;
            device_buf_init(&field);
            r = encode_value(&box->items[k], &field);
            if (r == AMP_OK)
                r = amp_encode_pair(out, box->keys[k].p, box->keys[k].n, field.data, field.len);
            amp_buf_free(&field);
        }
        if (r == AMP_OK)
            r = amp_encode_end(out);
    }
    return r;
}

static amp_err encode_value(const vvalue *v, amp_buf *out)
{
    char tmp[64];
    switch (v->type) {
    case VT_INTEGER:
    case VT_DESCRIPTOR:
        return encode_integer(v->bytes, out);
    case VT_STRING:
    case VT_UNICODE:
        return append(out, v->bytes.p, v->bytes.n);
    case VT_FLOAT:
        return append(out, tmp, amp_float_format(to_double(v->bits), tmp));
    case VT_BOOLEAN: {
        const char *s = amp_bool_format(v->flag);
        return append(out, s, strlen(s));
    }
    case VT_DECIMAL: {
        amp_decimal d = to_decimal(v);
        return amp_decimal_format(&d, out);
    }
    case VT_DATETIME: {
        amp_datetime t = to_datetime(v);
        amp_err r = amp_datetime_format(&t, tmp);
        return r == AMP_OK ? append(out, tmp, AMP_DATETIME_LEN) : r;
    }
    case VT_LIST:
        return encode_list(v, out);
    case VT_AMPLIST:
        return encode_amplist(v, out);
    default:
        return AMP_E_INVALID;
    }
}

static char scratch[4096]; /* digits of a Decimal being parsed */

static int check_value(const uint8_t *p, size_t n, const vvalue *v);

static int check_integer(const uint8_t *p, size_t n, const vvalue *v)
{
    int64_t x;
    amp_err r = v->type == VT_INTEGER ? amp_int_parse(p, n, &x) : amp_descriptor_parse(p, n, &x);
    if (r == AMP_E_RANGE && v->type == VT_INTEGER)
        return amp_bigint_check(p, n) == AMP_OK && same_v(p, n, v->bytes);
    char tmp[AMP_INT_MAX_LEN];
    return r == AMP_OK && same_v((const uint8_t *)tmp, amp_int_format(x, tmp), v->bytes);
}

static int check_list(const uint8_t *p, size_t n, const vvalue *v)
{
    size_t pos = 0;
    uint32_t i = 0;
    const uint8_t *elem;
    size_t elen;
    amp_err r;
    while ((r = amp_list_next(p, n, &pos, &elem, &elen)) == AMP_OK)
        if (i >= v->nitems || !check_value(elem, elen, &v->items[i++]))
            return 0;
    return r == AMP_AGAIN && i == v->nitems;
}

static int check_amplist(const uint8_t *p, size_t n, const vvalue *v)
{
    amp_limits lim;
    amp_limits_default(&lim);
    lim.allow_empty_box = 1;
    amp_decoder *d;
    if (device_decoder_new(&d, &lim) != AMP_OK)
        return 0;
    int ok = amp_decoder_feed(d, p, n) == AMP_OK;
    uint32_t count = 0;
    amp_box box;
    while (ok && amp_decoder_next(d, &box) == AMP_OK) {
        const vvalue *want = count < v->nitems ? &v->items[count] : NULL;
        ok = want && box.count == want->nitems;
        for (uint32_t k = 0; ok && k < want->nitems; k++) {
            const amp_pair *f = amp_box_find(&box, want->keys[k].p, want->keys[k].n);
            ok = f && check_value(f->value, f->value_len, &want->items[k]);
        }
        count++;
    }
    ok = ok && amp_decoder_finish(d) == AMP_OK && count == v->nitems;
    amp_decoder_free(d);
    return ok;
}

static int check_value(const uint8_t *p, size_t n, const vvalue *v)
{
    switch (v->type) {
    case VT_INTEGER:
    case VT_DESCRIPTOR:
        return check_integer(p, n, v);
    case VT_STRING:
        return same_v(p, n, v->bytes);
    case VT_UNICODE:
        return amp_utf8_check(p, n) == AMP_OK && same_v(p, n, v->bytes);
    case VT_FLOAT: {
        double d, want = to_double(v->bits);
        if (amp_float_parse(p, n, &d) != AMP_OK)
            return 0;
        return isnan(want) ? isnan(d) : memcmp(&d, &want, sizeof d) == 0;
    }
    case VT_BOOLEAN: {
        int b;
        return amp_bool_parse(p, n, &b) == AMP_OK && b == v->flag;
    }
    case VT_DECIMAL: {
        amp_decimal d, want = to_decimal(v);
        if (amp_decimal_parse(p, n, &d, scratch, sizeof scratch) != AMP_OK)
            return 0;
        return d.kind == want.kind && d.negative == want.negative &&
               same((const uint8_t *)d.digits, d.ndigits, (const uint8_t *)want.digits,
                    want.ndigits) &&
               (d.kind != AMP_DECIMAL_FINITE || d.exponent == want.exponent);
    }
    case VT_DATETIME: {
        amp_datetime t, want = to_datetime(v);
        return amp_datetime_parse(p, n, &t) == AMP_OK && memcmp(&t, &want, sizeof t) == 0;
    }
    case VT_LIST:
        return check_list(p, n, v);
    case VT_AMPLIST:
        return check_amplist(p, n, v);
    default:
        return 0;
    }
}

/* How a value of this type that must be refused fails. */
static amp_err parse_only(uint8_t vtype, const uint8_t *p, size_t n)
{
    int64_t x;
    double d;
    int b;
    amp_datetime t;
    amp_decimal dec;
    switch (vtype) {
    case VT_INTEGER:
        return amp_int_parse(p, n, &x);
    case VT_DESCRIPTOR:
        return amp_descriptor_parse(p, n, &x);
    case VT_UNICODE:
        return amp_utf8_check(p, n);
    case VT_FLOAT:
        return amp_float_parse(p, n, &d);
    case VT_BOOLEAN:
        return amp_bool_parse(p, n, &b);
    case VT_DATETIME:
        return amp_datetime_parse(p, n, &t);
    case VT_DECIMAL:
        return amp_decimal_parse(p, n, &dec, scratch, sizeof scratch);
    case VT_STRUCTURED:
        return amp_structured_check(p, n);
    default:
        return AMP_E_INVALID;
    }
}

static amp_err reject_list(const vtypecase *c)
{
    size_t pos = 0;
    const uint8_t *elem;
    size_t elen;
    amp_err r;
    while ((r = amp_list_next(c->wire.p, c->wire.n, &pos, &elem, &elen)) == AMP_OK)
        if ((r = parse_only(c->element, elem, elen)) != AMP_OK)
            break;
    return r;
}

static amp_err reject_amplist(const vtypecase *c)
{
    amp_limits lim;
    amp_limits_default(&lim);
    lim.allow_empty_box = 1;
    amp_decoder *d;
    amp_err r = device_decoder_new(&d, &lim);
    if (r != AMP_OK)
        return r;
    amp_box box;
    if ((r = amp_decoder_feed(d, c->wire.p, c->wire.n)) == AMP_OK)
        while ((r = amp_decoder_next(d, &box)) == AMP_OK)
            ;
    if (r == AMP_AGAIN)
        r = amp_decoder_finish(d);
    amp_decoder_free(d);
    return r;
}

static int type_case(const vtypecase *c)
{
    if (c->mode == VM_REJECT) {
        amp_err r = c->vtype == VT_LIST      ? reject_list(c)
                    : c->vtype == VT_AMPLIST ? reject_amplist(c)
                                             : parse_only(c->vtype, c->wire.p, c->wire.n);
        return strcmp(amp_errname(r), c->error) == 0;
    }
    if (c->vtype == VT_STRUCTURED) /* a check, no decoded form on the device */
        return amp_structured_check(c->wire.p, c->wire.n) == AMP_OK;
    if (!check_value(c->wire.p, c->wire.n, c->value))
        return 0;
    if (c->mode == VM_DECODE_ONLY && !c->has_canonical)
        return 1;
    vbytes want = c->mode == VM_ENCODE ? c->wire : c->canonical;
    amp_buf out;
    device_buf_init(&out);
    int ok = encode_value(c->value, &out) == AMP_OK && same_v(out.data, out.len, want);
    amp_buf_free(&out);
    return ok;
}

static void run_types(void)
{
    unsigned before = failures;
    static const char *const modes[] = {"encode", "decode_only", "reject"};
    for (uint32_t i = 0; i < vec_ntypes; i++) {
        const vtypecase *c = &vec_types[i];
        if (!type_case(c))
            FAIL("types %s %s case %lu (%lu bytes)", c->type, modes[c->mode], (unsigned long)i,
                 (unsigned long)c->wire.n);
    }
    report("types", vec_ntypes, failures - before);
}

/* ---- conversation -------------------------------------------------------------- */

static int pair_is(const amp_pair *p, int present, vbytes want)
{
    return present ? p && same_v(p->value, p->value_len, want) : p == NULL;
}

static int conv_case(const vconv *c)
{
    amp_decoder *d;
    amp_box box;
    amp_message m;
    if (device_decoder_new(&d, NULL) != AMP_OK)
        return 0;
    int ok = amp_decoder_feed(d, c->wire.p, c->wire.n) == AMP_OK &&
             amp_decoder_next(d, &box) == AMP_OK;
    if (ok && !c->kind) {
        ok = strcmp(amp_errname(amp_box_classify(&box, &m)), c->error) == 0;
    } else if (ok) {
        amp_kind want = !strcmp(c->kind, "call")     ? AMP_KIND_CALL
                        : !strcmp(c->kind, "answer") ? AMP_KIND_ANSWER
                                                     : AMP_KIND_ERROR;
        ok = amp_box_classify(&box, &m) == AMP_OK && m.kind == want &&
             pair_is(m.tag, c->has_tag, c->tag);
        if (ok && want == AMP_KIND_CALL)
            ok = pair_is(m.command, 1, c->command);
        if (ok && want == AMP_KIND_ERROR)
            ok = pair_is(m.error_code, 1, c->error_code) &&
                 pair_is(m.error_description, 1, c->error_description);
    }
    amp_decoder_free(d);
    return ok;
}

static void run_conversation(void)
{
    unsigned before = failures;
    for (uint32_t i = 0; i < vec_nconvs; i++)
        if (!conv_case(&vec_convs[i]))
            FAIL("conversation '%s'", vec_convs[i].name);
    report("conversation", vec_nconvs, failures - before);
}

static void run_unhandled(void)
{
    unsigned before = failures;
    for (uint32_t i = 0; i < vec_nunhandled; i++) {
        const vunhandled *u = &vec_unhandled[i];
        amp_buf out;
        device_buf_init(&out);
        if (amp_unhandled_description(&out, u->command.p, u->command.n) != AMP_OK ||
            !same_v(out.data, out.len, u->description))
            FAIL("unhandled description %lu", (unsigned long)i);
        amp_buf_free(&out);
    }
    report("unhandled", vec_nunhandled, failures - before);
}

/* ---- a session conversation ------------------------------------------------------ */

static const vconv *conv_named(const char *name)
{
    for (uint32_t i = 0; i < vec_nconvs; i++)
        if (strcmp(vec_convs[i].name, name) == 0)
            return &vec_convs[i];
    return NULL;
}

/* The session's output so far is exactly `want`; consumed either way. */
static int output_is(amp_session *s, vbytes want)
{
    const uint8_t *p;
    size_t n;
    amp_session_output(s, &p, &n);
    int ok = same_v(p, n, want);
    amp_session_consume(s, n);
    return ok;
}

/* Sum: a + b, as the interop peers serve it. */
static void serve_sum(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    const amp_pair *a = amp_box_find_str(args, "a"), *b = amp_box_find_str(args, "b");
    int64_t x, y;
    if (!a || !b || amp_int_parse(a->value, a->value_len, &x) != AMP_OK ||
        amp_int_parse(b->value, b->value_len, &y) != AMP_OK) {
        amp_request_error(req, "BAD_ARGS", "a and b are Integers", 0);
        return;
    }
    char total[AMP_INT_MAX_LEN];
    amp_pair out = {(const uint8_t *)"total", 5, (const uint8_t *)total,
                    amp_int_format(x + y, total)};
    amp_request_answer(req, &out, 1);
}

/* Fail: the declared error OOPS of the interop peers. */
static void serve_fail(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    amp_request_error(req, "OOPS", "it went wrong", 0);
}

static int feed_box(amp_session *s, const vconv *c)
{
    return c && amp_session_feed(s, c->wire.p, c->wire.n) == AMP_OK;
}

/* The device serves Sum and Fail: its answers are Twisted's bytes. */
static int session_serves(void)
{
    amp_session *s;
    if (device_session_new(&s, NULL, NULL) != AMP_OK)
        return 0;
    int ok = amp_session_serve_str(s, "Sum", serve_sum, NULL) == AMP_OK &&
             amp_session_serve_str(s, "Fail", serve_fail, NULL) == AMP_OK;
    const vconv *answer = conv_named("Sum answer"), *error = conv_named("declared error"),
                *unhandled = conv_named("UNHANDLED error for an unknown command");
    ok = ok && answer && error && unhandled;
    ok = ok && feed_box(s, conv_named("Sum call")) && output_is(s, answer->wire);
    if (!ok)
        FAIL("session: Sum call answered differently from Twisted");
    int ok2 = ok && feed_box(s, conv_named("call of a command raising a declared error")) &&
              output_is(s, error->wire);
    if (ok && !ok2)
        FAIL("session: declared error written differently from Twisted");
    /* a call of Nope, tag 1, as Twisted's callRemote writes it */
    amp_pair nope[] = {{(const uint8_t *)"_ask", 4, (const uint8_t *)"1", 1},
                       {(const uint8_t *)"_command", 8, (const uint8_t *)"Nope", 4}};
    amp_buf call;
    device_buf_init(&call);
    int ok3 = ok2 && amp_encode_box(&call, nope, 2) == AMP_OK &&
              amp_session_feed(s, call.data, call.len) == AMP_OK &&
              output_is(s, unhandled->wire);
    if (ok2 && !ok3)
        FAIL("session: UNHANDLED written differently from Twisted");
    amp_buf_free(&call);
    amp_session_free(s);
    return ok3;
}

typedef struct outcome {
    int done, status;
    int good; /* the answer or error carried what was expected */
} outcome;

static void sum_done(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    outcome *o = ud;
    o->done++;
    o->status = r->status;
    const amp_pair *t = r->box ? amp_box_find_str(r->box, "total") : NULL;
    o->good = r->status == AMP_OK && t && same(t->value, t->value_len, (const uint8_t *)"94", 2);
}

static void fail_done(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    outcome *o = ud;
    o->done++;
    o->status = r->status;
    o->good = r->status == AMP_E_REMOTE && r->error_code &&
              same(r->error_code->value, r->error_code->value_len, (const uint8_t *)"OOPS", 4) &&
              r->error_description &&
              same(r->error_description->value, r->error_description->value_len,
                   (const uint8_t *)"it went wrong", 13);
}

/* The device calls: its calls are Twisted's bytes, and Twisted's answer and
 * error complete them. */
static int session_calls(void)
{
    amp_pair sum_args[] = {{(const uint8_t *)"a", 1, (const uint8_t *)"13", 2},
                           {(const uint8_t *)"b", 1, (const uint8_t *)"81", 2}};
    amp_pair notify_args[] = {{(const uint8_t *)"text", 4, (const uint8_t *)"hi", 2}};
    const vconv *sum_call = conv_named("Sum call"), *fail_call =
        conv_named("call of a command raising a declared error"),
        *notify = conv_named("call without _ask (requiresAnswer=False)");
    if (!sum_call || !fail_call || !notify)
        return 0;
    outcome sum = {0, 0, 0}, fail = {0, 0, 0};
    amp_session *s, *s2;
    if (device_session_new(&s, NULL, NULL) != AMP_OK)
        return 0;
    int ok = amp_session_call_str(s, "Sum", sum_args, 2, NULL, sum_done, &sum, NULL) == AMP_OK &&
             output_is(s, sum_call->wire) && feed_box(s, conv_named("Sum answer")) &&
             sum.done == 1 && sum.good;
    amp_call_opts no_answer = {1, 0, 0};
    ok = ok && amp_session_call_str(s, "Notify", notify_args, 1, &no_answer, NULL, NULL, NULL) ==
                   AMP_OK && output_is(s, notify->wire);
    amp_session_free(s);
    if (!ok)
        FAIL("session: Sum call or Notify event differs from Twisted (answered %d, status %s)",
             sum.done, amp_errname(sum.status));
    if (device_session_new(&s2, NULL, NULL) != AMP_OK)
        return 0;
    int ok2 = amp_session_call_str(s2, "Fail", NULL, 0, NULL, fail_done, &fail, NULL) ==
                  AMP_OK && output_is(s2, fail_call->wire) &&
              feed_box(s2, conv_named("declared error")) && fail.done == 1 && fail.good;
    amp_session_free(s2);
    if (!ok2)
        FAIL("session: Fail call or its declared error differs (completed %d, status %s)",
             fail.done, amp_errname(fail.status));
    return ok && ok2;
}

static void on_protocol_error(amp_session *s, int err, uint64_t offset, void *ud)
{
    *(int *)ud = err;
}

/* An answer for a tag never issued is a protocol error: the session closes. */
static int session_unknown_tag(void)
{
    int seen = 0;
    amp_session_events ev;
    memset(&ev, 0, sizeof ev);
    ev.protocol_error = on_protocol_error;
    amp_session *s;
    if (device_session_new(&s, &ev, &seen) != AMP_OK)
        return 0;
    amp_err r = amp_session_feed(s, vec_unknown_tag.p, vec_unknown_tag.n);
    /* feed() says the session closed; the event says why */
    int ok = r != AMP_OK && seen == AMP_E_UNKNOWN_TAG && amp_session_is_closed(s);
    amp_session_free(s);
    if (!ok)
        FAIL("session: an answer for an unknown tag gave %s, protocol error %s",
             amp_errname(r), amp_errname(seen));
    return ok;
}

static void run_session(void)
{
    unsigned before = failures;
    session_serves();
    session_calls();
    session_unknown_tag();
    report("session", 3, failures - before);
}

#ifdef DEVICE_CORE_WITHOUT_MALLOC
/* The core was built with AMP_CORE_MALLOC=OFF: an object given no
 * allocator gets no memory (and the image has no malloc to give it). */
static void run_no_malloc(void)
{
    unsigned before = failures;
    amp_decoder *d = NULL;
    amp_err r = amp_decoder_new(&d, NULL);
    if (r != AMP_E_NOMEM)
        FAIL("no-malloc: a decoder without an allocator: %s", amp_errname(r));
    if (d)
        amp_decoder_free(d);
    amp_buf b;
    amp_buf_init(&b);
    r = amp_buf_append(&b, (const uint8_t *)"x", 1);
    if (r != AMP_E_NOMEM)
        FAIL("no-malloc: a buffer without an allocator: %s", amp_errname(r));
    amp_buf_free(&b);
    report("no-malloc", 2, failures - before);
}
#endif

int main(void)
{
    device_init();
    if (vec_corrupted[0])
        printf("NOTE vectors built with --corrupt %s: this run must fail\n", vec_corrupted);
    run_framing();
    check_leaks("framing");
    run_rejects();
    check_leaks("reject");
    run_types();
    check_leaks("types");
    run_conversation();
    run_unhandled();
    check_leaks("conversation");
    run_session();
    check_leaks("session");
#ifdef DEVICE_CORE_WITHOUT_MALLOC
    run_no_malloc();
#endif
    printf("%s: %u failures; memory high water %lu bytes of %lu\n",
           failures ? "FAILED" : "ALL PASSED", failures, (unsigned long)device_mem_high_water(),
           (unsigned long)device_mem_size());
    return failures ? 1 : 0;
}
