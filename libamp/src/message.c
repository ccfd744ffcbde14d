/* Lookup and conversation classification of decoded boxes. */
#include <string.h>

#include "amp/box.h"
#include "reserved_keys.h"

const amp_pair *amp_box_find(const amp_box *b, const uint8_t *key, size_t key_len)
{
    if (!b || !key)
        return NULL;
    for (size_t i = b->count; i-- > 0;) {
        const amp_pair *p = &b->pairs[i];
        if (p->key_len == key_len && memcmp(p->key, key, key_len) == 0)
            return p;
    }
    return NULL;
}

const amp_pair *amp_box_find_str(const amp_box *b, const char *key)
{
    return key ? amp_box_find(b, (const uint8_t *)key, strlen(key)) : NULL;
}

amp_err amp_box_classify(const amp_box *b, amp_message *out)
{
    if (!b || !out)
        return AMP_E_INVALID;
    memset(out, 0, sizeof *out);
    const amp_pair *p;
    if ((p = amp_box_find_str(b, "_answer"))) {
        out->kind = AMP_KIND_ANSWER;
        out->tag = p;
        return AMP_OK;
    }
    if ((p = amp_box_find_str(b, "_error"))) {
        out->kind = AMP_KIND_ERROR;
        out->tag = p;
        out->error_code = amp_box_find_str(b, "_error_code");
        out->error_description = amp_box_find_str(b, "_error_description");
        if (!out->error_code || !out->error_description)
            return AMP_E_BAD_ERROR_BOX;
        return AMP_OK;
    }
    if ((p = amp_box_find_str(b, "_command"))) {
        out->kind = AMP_KIND_CALL;
        out->command = p;
        out->tag = amp_box_find_str(b, "_ask");
        return AMP_OK;
    }
    return AMP_E_NO_ROLE;
}

int amp_key_is_reserved(const uint8_t *k, size_t n)
{
    return amp__key_reserved(k, n);
}

int amp_pair_is_reserved(const amp_pair *p)
{
    return p && amp__key_reserved(p->key, p->key_len);
}
