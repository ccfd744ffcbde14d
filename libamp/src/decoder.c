/* Incremental box decoder: complete boxes inside a lent block are returned as
 * views into it; a box split across blocks is assembled in an internal buffer
 * that never grows past amp_limits.max_box_bytes. Every length is checked
 * against the limits as soon as its header is read, before any allocation. */
#include <string.h>

#include "alloc_internal.h"
#include "amp/box.h"

/* A box buffer up to this size is kept for the next split box. */
#define KEEP_BUF 65536

enum phase { PH_KEYLEN, PH_KEY_VALLEN, PH_VALUE };

/* Offsets of one pair relative to the start of its box. */
struct span {
    uint32_t koff, voff;
    uint16_t klen, vlen;
};

/* Where the scan of the current box stands. */
struct scan {
    size_t pos;   /* offset of the next unread byte of the box */
    size_t nkeys; /* complete pairs so far */
    enum phase phase;
    size_t cur;   /* length of the key (PH_KEY_VALLEN) or value (PH_VALUE) */
};

struct amp_decoder {
    amp_limits lim;
    amp_allocator alloc; /* a copy; alloc.alloc NULL: malloc */
    const amp_allocator *a; /* &alloc, or NULL for malloc */

    const uint8_t *in; /* lent block */
    size_t in_len, in_pos;
    uint64_t total;    /* stream offset of in[in_pos] */

    uint8_t *buf;      /* partial box */
    size_t buf_len, buf_cap;
    int buf_emitted;   /* the last box returned lives in buf */
    uint64_t box_start;/* stream offset of the box in buf */
    struct scan st;

    struct span *spans;
    amp_pair *pairs;
    size_t spans_cap, pairs_cap;

    amp_err fail;
    uint64_t fail_off;
};

void amp_limits_default(amp_limits *l)
{
    l->max_keys = AMP_DEFAULT_MAX_KEYS;
    l->max_box_bytes = AMP_DEFAULT_MAX_BOX_BYTES;
    l->allow_empty_box = 0;
}

amp_err amp_decoder_new(amp_decoder **out, const amp_limits *limits)
{
    return amp_decoder_new_with(out, limits, NULL);
}

amp_err amp_decoder_new_with(amp_decoder **out, const amp_limits *limits,
                             const amp_allocator *allocator)
{
    if (!out)
        return AMP_E_INVALID;
    *out = NULL;
    if (allocator && (!allocator->alloc || !allocator->realloc || !allocator->free))
        return AMP_E_INVALID;
    amp_decoder *d = amp__calloc(allocator, 1, sizeof *d);
    if (!d)
        return AMP_E_NOMEM;
    if (allocator) {
        d->alloc = *allocator;
        d->a = &d->alloc;
    }
    amp_limits_default(&d->lim);
    if (limits) {
        if (limits->max_keys)
            d->lim.max_keys = limits->max_keys;
        if (limits->max_box_bytes)
            d->lim.max_box_bytes = limits->max_box_bytes;
        d->lim.allow_empty_box = limits->allow_empty_box;
    }
    /* Offsets are stored in 32 bits; a cap below the terminator is nonsense. */
    if (d->lim.max_box_bytes < 2 || d->lim.max_box_bytes > UINT32_MAX) {
        amp__free(allocator, d);
        return AMP_E_INVALID;
    }
    *out = d;
    return AMP_OK;
}

void amp_decoder_free(amp_decoder *d)
{
    if (!d)
        return;
    amp_allocator copy = d->alloc; /* d holds the allocator it is freed with */
    const amp_allocator *a = d->a ? &copy : NULL;
    amp__free(a, d->buf);
    amp__free(a, d->spans);
    amp__free(a, d->pairs);
    amp__free(a, d);
}

amp_err amp_decoder_set_limits(amp_decoder *d, const amp_limits *limits)
{
    if (!d || !limits)
        return AMP_E_INVALID;
    amp_limits l;
    amp_limits_default(&l);
    if (limits->max_keys)
        l.max_keys = limits->max_keys;
    if (limits->max_box_bytes)
        l.max_box_bytes = limits->max_box_bytes;
    l.allow_empty_box = limits->allow_empty_box;
    if (l.max_box_bytes < 2 || l.max_box_bytes > UINT32_MAX)
        return AMP_E_INVALID;
    d->lim = l;
    return AMP_OK;
}

amp_err amp_decoder_feed(amp_decoder *d, const uint8_t *p, size_t n)
{
    if (!d || (!p && n))
        return AMP_E_INVALID;
    if (d->in_pos < d->in_len)
        return AMP_E_INVALID;
    d->in = p;
    d->in_len = n;
    d->in_pos = 0;
    return AMP_OK;
}

/* The slow half of grow(), kept out of line so the check inlines into scan(). */
static amp_err grow_to(const amp_allocator *a, void **arr, size_t *cap, size_t want,
                       size_t elem, size_t max)
{
    if (want > max) /* only if the limits were lowered in the middle of a box */
        return AMP_E_BOX_TOO_LARGE;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < want)
        n *= 2;
    if (n > max)
        n = max;
    void *p = amp__realloc(a, *arr, n * elem);
    if (!p)
        return AMP_E_NOMEM;
    *arr = p;
    *cap = n;
    return AMP_OK;
}

static inline amp_err grow(const amp_allocator *a, void **arr, size_t *cap, size_t want,
                           size_t elem, size_t max)
{
    return want <= *cap ? AMP_OK : grow_to(a, arr, cap, want, elem, max);
}

static inline size_t be16(const uint8_t *p)
{
    return ((size_t)p[0] << 8) | p[1];
}

/* Advance `st` over base[0..avail). AMP_OK: the box is complete and is
 * st->pos bytes long. AMP_AGAIN: *need is the box length needed to make
 * progress. Errors leave st->pos at the offending header. */
static amp_err scan(amp_decoder *d, const uint8_t *base, size_t avail, struct scan *st,
                    size_t *need)
{
    const size_t max_box = d->lim.max_box_bytes;
    for (;;) {
        switch (st->phase) {
        case PH_KEYLEN: {
            if (avail - st->pos < 2) {
                *need = st->pos + 2;
                return AMP_AGAIN;
            }
            size_t klen = be16(base + st->pos);
            if (klen == 0) {
                if (st->nkeys == 0 && !d->lim.allow_empty_box)
                    return AMP_E_EMPTY_BOX;
                st->pos += 2;
                return AMP_OK;
            }
            if (klen > AMP_MAX_KEY_LEN)
                return AMP_E_KEY_TOO_LONG;
            if (st->nkeys >= d->lim.max_keys)
                return AMP_E_TOO_MANY_KEYS;
            /* key header, key, value header, terminator */
            if (st->pos + 2 + klen + 2 + 2 > max_box)
                return AMP_E_BOX_TOO_LARGE;
            amp_err g = grow(d->a, (void **)&d->spans, &d->spans_cap, st->nkeys + 1, sizeof *d->spans,
                             d->lim.max_keys);
            if (g != AMP_OK)
                return g == AMP_E_BOX_TOO_LARGE ? AMP_E_TOO_MANY_KEYS : g;
            d->spans[st->nkeys].koff = (uint32_t)(st->pos + 2);
            d->spans[st->nkeys].klen = (uint16_t)klen;
            st->pos += 2;
            st->cur = klen;
            st->phase = PH_KEY_VALLEN;
        }
        /* fall through */
        case PH_KEY_VALLEN: {
            if (avail - st->pos < st->cur + 2) {
                *need = st->pos + st->cur + 2;
                return AMP_AGAIN;
            }
            size_t vpos = st->pos + st->cur;
            size_t vlen = be16(base + vpos);
            if (vpos + 2 + vlen + 2 > max_box) {
                st->pos = vpos;
                return AMP_E_BOX_TOO_LARGE;
            }
            d->spans[st->nkeys].voff = (uint32_t)(vpos + 2);
            d->spans[st->nkeys].vlen = (uint16_t)vlen;
            st->pos = vpos + 2;
            st->cur = vlen;
            st->phase = PH_VALUE;
        }
        /* fall through */
        case PH_VALUE:
            if (avail - st->pos < st->cur) {
                *need = st->pos + st->cur;
                return AMP_AGAIN;
            }
            st->pos += st->cur;
            st->nkeys++;
            st->phase = PH_KEYLEN;
        }
    }
}

static amp_err fail(amp_decoder *d, amp_err err, uint64_t off)
{
    d->fail = err;
    d->fail_off = off;
    return err;
}

static amp_err emit(amp_decoder *d, const uint8_t *base, const struct scan *st, amp_box *box)
{
    amp_err g = grow(d->a, (void **)&d->pairs, &d->pairs_cap, st->nkeys ? st->nkeys : 1,
                     sizeof *d->pairs, d->lim.max_keys);
    if (g != AMP_OK)
        return g == AMP_E_BOX_TOO_LARGE ? AMP_E_TOO_MANY_KEYS : g;
    for (size_t i = 0; i < st->nkeys; i++) {
        const struct span *s = &d->spans[i];
        d->pairs[i].key = base + s->koff;
        d->pairs[i].key_len = s->klen;
        d->pairs[i].value = base + s->voff;
        d->pairs[i].value_len = s->vlen;
    }
    box->pairs = d->pairs;
    box->count = st->nkeys;
    box->wire_len = st->pos;
    return AMP_OK;
}

amp_err amp_decoder_next(amp_decoder *d, amp_box *box)
{
    if (!d || !box)
        return AMP_E_INVALID;
    if (d->fail)
        return d->fail;
    if (d->buf_emitted) {
        d->buf_emitted = 0;
        d->buf_len = 0;
        if (d->buf_cap > KEEP_BUF) { /* one large box must not pin its memory */
            amp__free(d->a, d->buf);
            d->buf = NULL;
            d->buf_cap = 0;
        }
    }
    size_t need = 0;
    amp_err r;

    if (d->buf_len == 0) {
        /* Fast path: the box starts in the lent block. */
        size_t avail = d->in_len - d->in_pos;
        if (avail == 0)
            return AMP_AGAIN;
        const uint8_t *base = d->in + d->in_pos;
        memset(&d->st, 0, sizeof d->st);
        r = scan(d, base, avail, &d->st, &need);
        if (r == AMP_OK) {
            r = emit(d, base, &d->st, box);
            if (r != AMP_OK)
                return fail(d, r, d->total);
            d->in_pos += d->st.pos;
            d->total += d->st.pos;
            return AMP_OK;
        }
        if (r != AMP_AGAIN)
            return fail(d, r, d->total + d->st.pos);
        /* Incomplete: keep what there is (need <= max_box_bytes). */
        amp_err g = grow(d->a, (void **)&d->buf, &d->buf_cap, need, 1, d->lim.max_box_bytes);
        if (g != AMP_OK)
            return fail(d, g, d->total);
        memcpy(d->buf, base, avail);
        d->buf_len = avail;
        d->box_start = d->total;
        d->in_pos += avail;
        d->total += avail;
        return AMP_AGAIN;
    }

    /* Slow path: continue the box held in buf, copying only what it needs. */
    for (;;) {
        r = scan(d, d->buf, d->buf_len, &d->st, &need);
        if (r == AMP_OK) {
            r = emit(d, d->buf, &d->st, box);
            if (r != AMP_OK)
                return fail(d, r, d->box_start);
            d->buf_emitted = 1;
            return AMP_OK;
        }
        if (r != AMP_AGAIN)
            return fail(d, r, d->box_start + d->st.pos);
        size_t take = need - d->buf_len;
        size_t avail = d->in_len - d->in_pos;
        if (take > avail)
            take = avail;
        if (take == 0)
            return AMP_AGAIN;
        amp_err g = grow(d->a, (void **)&d->buf, &d->buf_cap, need, 1, d->lim.max_box_bytes);
        if (g != AMP_OK)
            return fail(d, g, d->box_start);
        memcpy(d->buf + d->buf_len, d->in + d->in_pos, take);
        d->buf_len += take;
        d->in_pos += take;
        d->total += take;
    }
}

amp_err amp_decoder_finish(const amp_decoder *d)
{
    if (!d)
        return AMP_E_INVALID;
    if (d->fail)
        return d->fail;
    if (d->buf_len && !d->buf_emitted)
        return AMP_E_TRUNCATED;
    if (d->in_pos < d->in_len)
        return AMP_E_INVALID; /* the lent block was not drained */
    return AMP_OK;
}

uint64_t amp_decoder_error_offset(const amp_decoder *d)
{
    if (!d)
        return 0;
    if (d->fail)
        return d->fail_off;
    if (d->buf_len && !d->buf_emitted)
        return d->box_start;
    return 0;
}

uint64_t amp_decoder_offset(const amp_decoder *d)
{
    return d ? d->total : 0;
}

size_t amp_decoder_pending(const amp_decoder *d)
{
    return d && !d->fail && !d->buf_emitted ? d->buf_len : 0;
}
