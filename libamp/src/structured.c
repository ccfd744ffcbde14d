/* Structured values (project extension): validation of one MessagePack
 * document without allocating. Every length claim is checked against the
 * bytes actually present before it is trusted. */
#include "amp/value.h"

struct cursor {
    const uint8_t *p;
    size_t n, i;
};

static int take(struct cursor *c, size_t k, uint64_t *v)
{
    if (c->n - c->i < k)
        return 0;
    uint64_t x = 0;
    for (size_t j = 0; j < k; j++)
        x = (x << 8) | c->p[c->i + j];
    c->i += k;
    if (v)
        *v = x;
    return 1;
}

static amp_err skip_bytes(struct cursor *c, uint64_t len, int utf8)
{
    if (c->n - c->i < len)
        return AMP_E_TRUNCATED;
    if (utf8 && amp_utf8_check(c->p + c->i, (size_t)len) != AMP_OK)
        return AMP_E_UTF8;
    c->i += (size_t)len;
    return AMP_OK;
}

static amp_err object(struct cursor *c, int depth);

static amp_err items(struct cursor *c, uint64_t count, int depth)
{
    /* every object takes at least one byte: refuse impossible counts now */
    if (count > c->n - c->i)
        return AMP_E_TRUNCATED;
    if (depth >= AMP_STRUCTURED_MAX_DEPTH)
        return AMP_E_TOO_DEEP;
    for (uint64_t k = 0; k < count; k++) {
        amp_err r = object(c, depth + 1);
        if (r != AMP_OK)
            return r;
    }
    return AMP_OK;
}

static amp_err object(struct cursor *c, int depth)
{
    uint64_t b, len;
    if (!take(c, 1, &b))
        return AMP_E_TRUNCATED;
    if (b <= 0x7f || b >= 0xe0)
        return AMP_OK; /* fixint */
    if (b <= 0x8f)
        return items(c, 2 * (b & 0x0f), depth);
    if (b <= 0x9f)
        return items(c, b & 0x0f, depth);
    if (b <= 0xbf)
        return skip_bytes(c, b & 0x1f, 1);
    switch (b) {
    case 0xc0: case 0xc2: case 0xc3:
        return AMP_OK;
    case 0xc4: case 0xc5: case 0xc6:
        if (!take(c, (size_t)1 << (b - 0xc4), &len))
            return AMP_E_TRUNCATED;
        return skip_bytes(c, len, 0);
    case 0xca:
        return take(c, 4, NULL) ? AMP_OK : AMP_E_TRUNCATED;
    case 0xcb:
        return take(c, 8, NULL) ? AMP_OK : AMP_E_TRUNCATED;
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        return take(c, (size_t)1 << (b - 0xcc), NULL) ? AMP_OK : AMP_E_TRUNCATED;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3:
        return take(c, (size_t)1 << (b - 0xd0), NULL) ? AMP_OK : AMP_E_TRUNCATED;
    case 0xd9: case 0xda: case 0xdb:
        if (!take(c, (size_t)1 << (b - 0xd9), &len))
            return AMP_E_TRUNCATED;
        return skip_bytes(c, len, 1);
    case 0xdc: case 0xdd:
        if (!take(c, b == 0xdc ? 2 : 4, &len))
            return AMP_E_TRUNCATED;
        return items(c, len, depth);
    case 0xde: case 0xdf:
        if (!take(c, b == 0xde ? 2 : 4, &len))
            return AMP_E_TRUNCATED;
        return items(c, 2 * len, depth);
    default:
        return AMP_E_BAD_VALUE; /* 0xc1 (never used) and every ext type */
    }
}

amp_err amp_structured_check(const uint8_t *p, size_t n)
{
    if (!p || n == 0)
        return AMP_E_BAD_VALUE;
    struct cursor c = {p, n, 0};
    amp_err r = object(&c, 0);
    if (r != AMP_OK)
        return r;
    return c.i == n ? AMP_OK : AMP_E_BAD_VALUE;
}
