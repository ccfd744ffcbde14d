/* Strict UTF-8 validation, as Python's codec does it. */
#include "amp/value.h"

amp_err amp_utf8_check(const uint8_t *p, size_t n)
{
    if (!p && n)
        return AMP_E_INVALID;
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t min, cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            min = 0x80;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            min = 0x800;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            min = 0x10000;
            cp = c & 0x07;
        } else {
            return AMP_E_UTF8;
        }
        if (n - i < len)
            return AMP_E_UTF8;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return AMP_E_UTF8;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return AMP_E_UTF8;
        i += len;
    }
    return AMP_OK;
}
