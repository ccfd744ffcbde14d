/* The pairs the broker forwards. */
#include "forward.h"

#include <stdlib.h>
#include <string.h>

/* The conversation keys and the broker's own _timeout: everything else is
 * forwarded byte for byte. */
int forward_reserved(const amp_pair *p)
{
    static const char *keys[] = {"_ask", "_answer", "_command", "_error", "_error_code",
                                 "_error_description", "_timeout"};
    if (!p->key_len || p->key[0] != '_')
        return 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (p->key_len == strlen(keys[i]) && !memcmp(p->key, keys[i], p->key_len))
            return 1;
    return 0;
}

amp_pair *forward_pairs(const amp_box *b, amp_pair stack[FORWARD_STACK], size_t *n)
{
    amp_pair *v = b->count > FORWARD_STACK ? malloc(b->count * sizeof *v) : stack;
    *n = 0;
    for (size_t i = 0; v && i < b->count; i++)
        if (!forward_reserved(&b->pairs[i]))
            v[(*n)++] = b->pairs[i];
    return v;
}

void forward_pairs_free(amp_pair *pairs, const amp_pair stack[FORWARD_STACK])
{
    if (pairs != stack)
        free(pairs);
}
