/* ListOf(T) values: a sequence of `u16be length, element`. */
#include "amp/value.h"

amp_err amp_list_next(const uint8_t *p, size_t n, size_t *pos, const uint8_t **elem,
                      size_t *elem_len)
{
    if ((!p && n) || !pos || !elem || !elem_len || *pos > n)
        return AMP_E_INVALID;
    size_t i = *pos;
    if (i == n)
        return AMP_AGAIN;
    if (n - i < 2)
        return AMP_E_TRUNCATED;
    size_t len = ((size_t)p[i] << 8) | p[i + 1];
    if (n - i - 2 < len)
        return AMP_E_TRUNCATED;
    *elem = p + i + 2;
    *elem_len = len;
    *pos = i + 2 + len;
    return AMP_OK;
}

amp_err amp_list_append(amp_buf *b, const uint8_t *elem, size_t elem_len)
{
    if (!b || (!elem && elem_len))
        return AMP_E_INVALID;
    if (elem_len > AMP_MAX_VALUE_LEN)
        return AMP_E_VALUE_TOO_LONG;
    amp_err r = amp_buf_reserve(b, 2 + elem_len);
    if (r != AMP_OK)
        return r;
    uint8_t hdr[2] = {(uint8_t)(elem_len >> 8), (uint8_t)elem_len};
    amp_buf_append(b, hdr, 2);
    amp_buf_append(b, elem, elem_len);
    return AMP_OK;
}
