/* The protocol's reserved keys, the one list: amp_key_is_reserved() and
 * amp_pair_is_reserved() (message.c) are this function, and the session
 * inlines it on every call and answer it checks. Internal. */
#ifndef AMP_RESERVED_KEYS_H
#define AMP_RESERVED_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline int amp__key_reserved(const uint8_t *k, size_t n)
{
    if (!k || n < 4 || k[0] != '_')
        return 0;
    switch (n) {
    case 4:
        return !memcmp(k, "_ask", 4);
    case 6:
        return !memcmp(k, "_error", 6);
    case 7:
        return !memcmp(k, "_answer", 7);
    case 8:
        return !memcmp(k, "_command", 8);
    case 11:
        return !memcmp(k, "_error_code", 11);
    case 18:
        return !memcmp(k, "_error_description", 18);
    default:
        return 0;
    }
}

#endif
