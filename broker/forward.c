/* The pairs the broker forwards. */
#include "forward.h"

#include <stdlib.h>
#include <string.h>

/* The protocol's own keys (libamp's list) and the broker's _timeout, which
 * sets the deadline of a routed call: everything else is forwarded byte for
 * byte. */
static int reserved(const amp_pair *p)
{
    return amp_pair_is_reserved(p) ||
           (p->key_len == 8 && !memcmp(p->key, "_timeout", 8));
}

amp_pair *forward_pairs(const amp_box *b, amp_pair stack[FORWARD_STACK], size_t *n)
{
    amp_pair *v = b->count > FORWARD_STACK ? malloc(b->count * sizeof *v) : stack;
    *n = 0;
    for (size_t i = 0; v && i < b->count; i++)
        if (!reserved(&b->pairs[i]))
            v[(*n)++] = b->pairs[i];
    return v;
}

void forward_pairs_free(amp_pair *pairs, const amp_pair stack[FORWARD_STACK])
{
    if (pairs != stack)
        free(pairs);
}
