/* amp_buf: a growable or fixed output buffer. */
#include <stdint.h>
#include <string.h>

#include "alloc_internal.h"
#include "amp/box.h"

void amp_buf_init(amp_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->fixed = 0;
    b->allocator = NULL;
}

void amp_buf_init_with(amp_buf *b, const amp_allocator *allocator)
{
    amp_buf_init(b);
    b->allocator = allocator;
}

void amp_buf_init_fixed(amp_buf *b, uint8_t *mem, size_t cap)
{
    b->data = mem;
    b->len = 0;
    b->cap = cap;
    b->fixed = 1;
    b->allocator = NULL;
}

void amp_buf_free(amp_buf *b)
{
    if (!b)
        return;
    b->len = 0;
    if (b->fixed)
        return;
    amp__free(b->allocator, b->data);
    b->data = NULL;
    b->cap = 0;
}

amp_err amp_buf_reserve(amp_buf *b, size_t extra)
{
    if (!b)
        return AMP_E_INVALID;
    if (extra <= b->cap - b->len)
        return AMP_OK;
    if (b->fixed)
        return AMP_E_NOSPACE;
    if (extra > SIZE_MAX / 2 - b->len)
        return AMP_E_NOMEM;
    size_t want = b->len + extra;
    size_t n = b->cap ? b->cap : 256;
    while (n < want)
        n *= 2;
    uint8_t *p = amp__realloc(b->allocator, b->data, n);
    if (!p)
        return AMP_E_NOMEM;
    b->data = p;
    b->cap = n;
    return AMP_OK;
}

amp_err amp_buf_append(amp_buf *b, const uint8_t *p, size_t n)
{
    amp_err r = amp_buf_reserve(b, n);
    if (r != AMP_OK)
        return r;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return AMP_OK;
}
