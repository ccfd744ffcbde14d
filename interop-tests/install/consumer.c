/* A program built against an installed libamp: encodes and decodes a box. */
#include <amp/amp.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair_str(&b, "_command", "Sum");
    amp_encode_end(&b);
    amp_decoder *d;
    if (amp_decoder_new(&d, NULL) != AMP_OK)
        return 1;
    amp_decoder_feed(d, b.data, b.len);
    amp_box box;
    amp_message m;
    if (amp_decoder_next(d, &box) != AMP_OK || amp_box_classify(&box, &m) != AMP_OK ||
        m.kind != AMP_KIND_CALL || m.command->value_len != 3)
        return 1;
    printf("libamp %s ok\n", amp_version());
    amp_decoder_free(d);
    amp_buf_free(&b);
    return 0;
}
