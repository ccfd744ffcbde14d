/* A program built against an installed libamp-core alone (pkg-config
 * amp-core / amp::core): encodes a box, decodes it, and runs a session
 * through the allocator hook. */
#include <amp/core.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t live;

static void *count_alloc(void *ctx, size_t n)
{
    live++;
    return malloc(n);
}

static void *count_realloc(void *ctx, void *p, size_t n)
{
    return realloc(p, n);
}

static void count_free(void *ctx, void *p)
{
    live--;
    free(p);
}

int main(void)
{
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair_str(&b, "_command", "Sum");
    amp_encode_pair_str(&b, "a", "13");
    amp_encode_end(&b);
    amp_decoder *d;
    if (amp_decoder_new(&d, NULL) != AMP_OK)
        return 1;
    amp_decoder_feed(d, b.data, b.len);
    amp_box box;
    amp_message m;
    int64_t a;
    const amp_pair *p;
    if (amp_decoder_next(d, &box) != AMP_OK || amp_box_classify(&box, &m) != AMP_OK ||
        m.kind != AMP_KIND_CALL || m.command->value_len != 3 ||
        !(p = amp_box_find_str(&box, "a")) || amp_int_parse(p->value, p->value_len, &a) ||
        a != 13)
        return 1;
    amp_decoder_free(d);
    amp_buf_free(&b);

    static const uint8_t key[16] = "0123456789abcdef";
    amp_allocator counting = {count_alloc, count_realloc, count_free, NULL};
    amp_session_config cfg;
    amp_session_config_init(&cfg);
    cfg.allocator = &counting;
    cfg.hash_key = key;
    amp_session *s;
    if (amp_session_new(&s, &cfg) != AMP_OK ||
        amp_session_call_str(s, "Sum", NULL, 0, NULL, NULL, NULL, NULL) != AMP_OK)
        return 1;
    const uint8_t *out;
    size_t n;
    amp_session_output(s, &out, &n);
    amp_session_free(s);
    if (n == 0 || live != 0)
        return 1;
    printf("libamp-core %s ok\n", amp_version());
    return 0;
}
