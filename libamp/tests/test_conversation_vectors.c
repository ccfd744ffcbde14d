/* spec/vectors/conversation.json: call / answer / error classification. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "vectors.h"

static void assert_pair_hex(const amp_pair *p, const json_t *hex, const char *what)
{
    if (json_is_null(hex) || !hex) {
        cr_assert(p == NULL, "%s should be absent", what);
        return;
    }
    cr_assert(p != NULL, "%s missing", what);
    size_t n;
    uint8_t *want = vec_hex_json(hex, &n);
    cr_assert(p->value_len == n && memcmp(p->value, want, n) == 0, "%s differs", what);
    free(want);
}

static amp_err classify_hex(const json_t *hex, amp_message *m, amp_decoder **d)
{
    size_t n;
    uint8_t *p = vec_hex_json(hex, &n);
    cr_assert_eq(amp_decoder_new(d, NULL), AMP_OK);
    cr_assert_eq(amp_decoder_feed(*d, p, n), AMP_OK);
    static amp_box box;
    cr_assert_eq(amp_decoder_next(*d, &box), AMP_OK);
    amp_err r = amp_box_classify(&box, m);
    free(p); /* box views are not used after this by callers except pairs in m */
    return r;
}

Test(conversation_vectors, cases)
{
    json_t *root = vec_load("conversation.json");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        size_t n;
        uint8_t *p = vec_hex_json(json_object_get(c, "hex"), &n);
        amp_decoder *d;
        amp_decoder_new(&d, NULL);
        amp_decoder_feed(d, p, n);
        amp_box box;
        cr_assert_eq(amp_decoder_next(d, &box), AMP_OK);
        amp_message m;
        const char *name = json_string_value(json_object_get(c, "name"));
        cr_assert_eq(amp_box_classify(&box, &m), AMP_OK, "%s", name);
        const char *kind = json_string_value(json_object_get(c, "kind"));
        amp_kind want = !strcmp(kind, "call") ? AMP_KIND_CALL
                        : !strcmp(kind, "answer") ? AMP_KIND_ANSWER : AMP_KIND_ERROR;
        cr_assert_eq(m.kind, want, "%s", name);
        assert_pair_hex(m.tag, json_object_get(c, "tag"), "tag");
        if (want == AMP_KIND_CALL)
            assert_pair_hex(m.command, json_object_get(c, "command"), "command");
        if (want == AMP_KIND_ERROR) {
            assert_pair_hex(m.error_code, json_object_get(c, "error_code"), "error code");
            assert_pair_hex(m.error_description, json_object_get(c, "error_description"),
                            "error description");
        }
        amp_decoder_free(d);
        free(p);
    }
    json_decref(root);
}

Test(conversation_vectors, reject)
{
    json_t *root = vec_load("conversation.json");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(root, "reject"), i, c) {
        amp_message m;
        amp_decoder *d;
        amp_err r = classify_hex(json_object_get(c, "hex"), &m, &d);
        cr_assert_str_eq(amp_errname(r), json_string_value(json_object_get(c, "error")), "%s",
                         json_string_value(json_object_get(c, "name")));
        amp_decoder_free(d);
    }
    json_decref(root);
}
