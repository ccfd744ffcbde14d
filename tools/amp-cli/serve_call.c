/* amp-cli serve: a routed call's arguments (see serve_call.h). */
#include "serve_call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "typed_json.h"

/* The index of the declared argument named key, or -1. */
static long find_arg(const signature *sig, const amp_pair *p)
{
    for (size_t i = 0; i < sig->nargs; i++)
        if (strlen(sig->args[i].name) == p->key_len &&
            !memcmp(sig->args[i].name, p->key, p->key_len))
            return (long)i;
    return -1;
}

int serve_call_check(const signature *sig, const amp_box *args, char *msg, size_t msg_len)
{
    if (!sig->has_signature)
        return 0;
    unsigned char seen[SIG_MAX_ARGS] = {0}; /* signature_parse's cap */
    if (sig->nargs > SIG_MAX_ARGS) { /* parsed signatures stay within it */
        snprintf(msg, msg_len, "%s declares too many arguments", sig->command);
        return -1;
    }
    for (size_t i = 0; i < args->count; i++) {
        const amp_pair *p = &args->pairs[i];
        if (amp_pair_is_reserved(p))
            continue;
        long a = find_arg(sig, p);
        if (a < 0) {
            /* the key is the peer's bytes: named only when it is a plain
             * name, never controls passed on into a description */
            if (sig_name_ok((const char *)p->key, p->key_len))
                snprintf(msg, msg_len, "%s declares no argument '%.*s'", sig->command,
                         (int)p->key_len, (const char *)p->key);
            else
                snprintf(msg, msg_len, "%s declares no argument named by a key of %zu bytes "
                                       "that is not a name", sig->command, p->key_len);
            return -1;
        }
        if (seen[a]++) {
            snprintf(msg, msg_len, "the argument '%s' is given more than once", sig->args[a].name);
            return -1;
        }
        if (typed_json_check(sig->args[a].type, p->value, p->value_len)) {
            char *type = sig_type_string(sig->args[a].type);
            snprintf(msg, msg_len, "the argument '%s' is not a valid %s", sig->args[a].name,
                     type ? type : "value of its declared type");
            free(type);
            return -1;
        }
    }
    for (size_t a = 0; a < sig->nargs; a++)
        if (!seen[a] && !sig->args[a].optional) {
            char *type = sig_type_string(sig->args[a].type);
            snprintf(msg, msg_len, "the argument '%s' (%s) is missing", sig->args[a].name,
                     type ? type : "?");
            free(type);
            return -1;
        }
    return 0;
}

amp_box *serve_call_copy_args(const amp_box *args, size_t *held)
{
    size_t n = 0, bytes = 0;
    for (size_t i = 0; i < args->count; i++)
        if (!amp_pair_is_reserved(&args->pairs[i])) {
            n++;
            bytes += args->pairs[i].key_len + args->pairs[i].value_len;
        }
    size_t size = sizeof(amp_box) + n * sizeof(amp_pair) + bytes;
    amp_box *box = malloc(size);
    if (!box)
        return NULL;
    amp_pair *pairs = (amp_pair *)(box + 1);
    uint8_t *data = (uint8_t *)(pairs + n);
    size_t k = 0;
    for (size_t i = 0; i < args->count; i++) {
        const amp_pair *p = &args->pairs[i];
        if (amp_pair_is_reserved(p))
            continue;
        memcpy(data, p->key, p->key_len); /* keys are 1..255 bytes */
        pairs[k].key = data;
        pairs[k].key_len = p->key_len;
        data += p->key_len;
        if (p->value_len)
            memcpy(data, p->value, p->value_len);
        pairs[k].value = data;
        pairs[k].value_len = p->value_len;
        data += p->value_len;
        k++;
    }
    *box = (amp_box){pairs, n, 0};
    *held = size;
    return box;
}
