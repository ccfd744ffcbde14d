/* Box encoder: validates every pair before writing a byte. */
#include <string.h>

#include "amp/box.h"

static amp_err check_pair(size_t key_len, size_t value_len)
{
    if (key_len == 0)
        return AMP_E_EMPTY_KEY;
    if (key_len > AMP_MAX_KEY_LEN)
        return AMP_E_KEY_TOO_LONG;
    if (value_len > AMP_MAX_VALUE_LEN)
        return AMP_E_VALUE_TOO_LONG;
    return AMP_OK;
}

/* Keys and most values are a few bytes long: copying them with fixed-size
 * moves avoids a libc call per field, which is most of an encoder's time. */
static inline void copy(uint8_t *d, const uint8_t *s, size_t n)
{
    if (n >= 8 && n <= 16) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4 && n < 8) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    } else {
        memcpy(d, s, n);
    }
}

static uint8_t *put_pair(uint8_t *w, const uint8_t *key, size_t key_len, const uint8_t *value,
                         size_t value_len)
{
    w[0] = (uint8_t)(key_len >> 8);
    w[1] = (uint8_t)key_len;
    copy(w + 2, key, key_len);
    w += 2 + key_len;
    w[0] = (uint8_t)(value_len >> 8);
    w[1] = (uint8_t)value_len;
    copy(w + 2, value, value_len);
    return w + 2 + value_len;
}

amp_err amp_encode_pair(amp_buf *b, const uint8_t *key, size_t key_len, const uint8_t *value,
                        size_t value_len)
{
    if (!b || (!key && key_len) || (!value && value_len))
        return AMP_E_INVALID;
    amp_err r = check_pair(key_len, value_len);
    if (r != AMP_OK)
        return r;
    r = amp_buf_reserve(b, 4 + key_len + value_len);
    if (r != AMP_OK)
        return r;
    b->len = (size_t)(put_pair(b->data + b->len, key, key_len, value, value_len) - b->data);
    return AMP_OK;
}

amp_err amp_encode_pair_str(amp_buf *b, const char *key, const char *value)
{
    if (!key || !value)
        return AMP_E_INVALID;
    return amp_encode_pair(b, (const uint8_t *)key, strlen(key), (const uint8_t *)value,
                           strlen(value));
}

amp_err amp_encode_end(amp_buf *b)
{
    static const uint8_t end[2] = {0, 0};
    return amp_buf_append(b, end, 2);
}

static amp_err box_size(const amp_pair *pairs, size_t n, size_t *size)
{
    if (n == 0)
        return AMP_E_EMPTY_BOX;
    size_t total = 2;
    for (size_t i = 0; i < n; i++) {
        amp_err r = check_pair(pairs[i].key_len, pairs[i].value_len);
        if (r != AMP_OK)
            return r;
        if ((!pairs[i].key) || (!pairs[i].value && pairs[i].value_len))
            return AMP_E_INVALID;
        total += 4 + pairs[i].key_len + pairs[i].value_len;
    }
    *size = total;
    return AMP_OK;
}

amp_err amp_box_measure(const amp_pair *pairs, size_t n, size_t *size)
{
    if ((!pairs && n) || !size)
        return AMP_E_INVALID;
    return box_size(pairs, n, size);
}

size_t amp_box_encoded_size(const amp_pair *pairs, size_t n)
{
    size_t size = 0;
    if (!pairs || box_size(pairs, n, &size) != AMP_OK)
        return 0;
    return size;
}

amp_err amp_encode_box(amp_buf *b, const amp_pair *pairs, size_t n)
{
    if (!b || (!pairs && n))
        return AMP_E_INVALID;
    size_t size;
    amp_err r = box_size(pairs, n, &size);
    if (r != AMP_OK)
        return r;
    r = amp_buf_reserve(b, size);
    if (r != AMP_OK)
        return r;
    uint8_t *w = b->data + b->len;
    for (size_t i = 0; i < n; i++)
        w = put_pair(w, pairs[i].key, pairs[i].key_len, pairs[i].value, pairs[i].value_len);
    w[0] = 0;
    w[1] = 0;
    b->len += size;
    return AMP_OK;
}
