/* The golden vectors of spec/vectors (the JSON files) as C data, for a target that
 * has no file system and no JSON parser. gen_vectors.py writes the tables
 * (vectors_data.c) at build time; run_vectors.c walks them through the core.
 * Every byte string keeps its exact bytes (lengths are explicit: values
 * may hold NULs). */
#ifndef AMP_DEVICE_VECTORS_H
#define AMP_DEVICE_VECTORS_H

#include <stddef.h>
#include <stdint.h>

typedef struct vbytes {
    const uint8_t *p;
    uint32_t n;
} vbytes;

typedef struct vpair {
    vbytes key, value;
} vpair;

/* One expected box: its pairs in wire order. */
typedef struct vbox {
    const vpair *pairs;
    uint32_t npairs;
} vbox;

/* Non-default decoder caps of one vector (0: default). */
typedef struct vlimits {
    uint32_t max_keys, max_box_bytes;
    uint8_t allow_empty_box;
} vlimits;

/* framing.json "boxes", "decode_only" and "streams": `wire` decodes to
 * `boxes` whatever the split; with `encode` set, the single box's pairs
 * also encode to exactly `wire`. `lookups` (decode_only with
 * twisted_parse) are what amp_box_find() must return on the first box. */
typedef struct vframe {
    const char *name;
    vbytes wire;
    const vbox *boxes;
    uint32_t nboxes;
    uint8_t encode;
    vlimits limits;
    const vpair *lookups;
    uint32_t nlookups;
} vframe;

/* framing.json "reject" and "truncated": decoding `wire` fails with
 * `error` at stream byte `offset` after `boxes_before` boxes. With
 * `every_prefix`, every proper prefix of `wire` must fail that way. */
typedef struct vreject {
    const char *name;
    vbytes wire;
    const char *error;
    uint32_t offset, boxes_before;
    uint8_t every_prefix;
    vlimits limits;
} vreject;

/* A typed value in the vectors' language-neutral form. */
enum vtype {
    VT_INTEGER, VT_STRING, VT_UNICODE, VT_FLOAT, VT_BOOLEAN, VT_DECIMAL,
    VT_DATETIME, VT_DESCRIPTOR, VT_STRUCTURED,
    VT_LIST,    /* ListOf: `items` */
    VT_AMPLIST, /* AmpList: `items` are VT_BOX */
    VT_BOX      /* one AmpList element: `keys[i]` = `items[i]` */
};

typedef struct vvalue {
    uint8_t type;
    uint8_t flag;        /* Boolean: the value; Decimal: negative */
    uint8_t kind;        /* Decimal: amp_decimal_kind */
    vbytes bytes;        /* Integer and Descriptor text, String, Unicode,
                            Decimal digits */
    uint64_t bits;       /* Float: IEEE 754 binary64 pattern */
    int64_t exponent;    /* Decimal */
    const int32_t *dt;   /* DateTime: y, m, d, H, M, S, us, offset minutes */
    const struct vvalue *items;
    const vbytes *keys;  /* VT_BOX */
    uint32_t nitems;
} vvalue;

enum vmode { VM_ENCODE, VM_DECODE_ONLY, VM_REJECT };

/* types.json: one case of one type. ENCODE: `value` encodes to `wire` and
 * `wire` decodes to `value`. DECODE_ONLY: `wire` decodes to `value`, which
 * re-encodes to `canonical` (when has_canonical). REJECT: `wire` fails
 * with `error` (`element` is the element type of a ListOf). */
typedef struct vtypecase {
    const char *type;
    uint8_t mode;
    uint8_t vtype;
    uint8_t element;
    uint8_t has_canonical;
    vbytes wire;
    const vvalue *value;
    vbytes canonical;
    const char *error;
} vtypecase;

/* conversation.json "cases" and "reject": classification of one box. */
typedef struct vconv {
    const char *name;
    vbytes wire;
    const char *kind;  /* "call", "answer", "error"; NULL for a reject */
    const char *error; /* for a reject */
    uint8_t has_tag;
    vbytes tag, command, error_code, error_description;
} vconv;

/* conversation.json "unhandled": the UNHANDLED description of a name. */
typedef struct vunhandled {
    vbytes command, description;
} vunhandled;

extern const vframe vec_frames[];
extern const uint32_t vec_nframes;
extern const vreject vec_rejects[];
extern const uint32_t vec_nrejects;
extern const vtypecase vec_types[];
extern const uint32_t vec_ntypes;
extern const vconv vec_convs[];
extern const uint32_t vec_nconvs;
extern const vunhandled vec_unhandled[];
extern const uint32_t vec_nunhandled;
/* conversation.json "unknown_tag": an answer for a tag never issued. */
extern const vbytes vec_unknown_tag;
/* The generator's --corrupt argument ("" when none), printed by the runner
 * so that a deliberately broken build cannot be mistaken for a real one. */
extern const char vec_corrupted[];

#endif
