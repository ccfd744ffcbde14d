/* Python's repr() of bytes, as Twisted prints command names. */
#include "amp/session.h"

amp_err amp_bytes_repr(amp_buf *out, const uint8_t *p, size_t n)
{
    int has_single = 0, has_double = 0;
    for (size_t i = 0; i < n; i++) {
        has_single |= p[i] == '\'';
        has_double |= p[i] == '"';
    }
    uint8_t quote = (has_single && !has_double) ? '"' : '\'';
    amp_err r = amp_buf_reserve(out, 3 + 4 * n);
    if (r != AMP_OK)
        return r;
    uint8_t *w = out->data + out->len;
    *w++ = 'b';
    *w++ = quote;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == quote || c == '\\') {
            *w++ = '\\';
            *w++ = c;
        } else if (c == '\t' || c == '\n' || c == '\r') {
            *w++ = '\\';
            *w++ = c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
        } else if (c < 0x20 || c >= 0x7f) {
            *w++ = '\\';
            *w++ = 'x';
            *w++ = "0123456789abcdef"[c >> 4];
            *w++ = "0123456789abcdef"[c & 15];
        } else {
            *w++ = c;
        }
    }
    *w++ = quote;
    out->len = (size_t)(w - out->data);
    return AMP_OK;
}
