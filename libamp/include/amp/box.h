/* Framing: AMP boxes to and from bytes (part of libamp-core).
 *
 * A box is a sequence of pairs, each `u16be keylen, key, u16be vallen, value`,
 * ended by a zero key length. Keys are 1..255 bytes, values 0..65535 bytes.
 *
 * Threads, lifetimes, clocks
 *   - Threads: none inside, no global state. A decoder or an amp_buf is used
 *     by one thread at a time; separate ones are independent. The pure
 *     functions (amp_box_find, amp_box_classify, amp_box_measure,
 *     amp_key_is_reserved, ...) may run on any thread at any time.
 *   - Lifetimes: the caller owns each decoder (amp_decoder_new* to
 *     amp_decoder_free) and each amp_buf (a plain struct; amp_buf_free
 *     releases its memory). Blocks fed to a decoder are lent, never kept
 *     past the AMP_AGAIN that ends them; returned boxes are views whose
 *     lifetime is stated below. amp_pair and amp_box never own what they
 *     point to.
 *   - Memory: through the allocator the object was given (amp/alloc.h);
 *     NULL means malloc. The decoder allocates only for a box split across
 *     blocks, never beyond its limits.
 *   - Clocks: none. */
#ifndef AMP_BOX_H
#define AMP_BOX_H

#include <stddef.h>
#include <stdint.h>

#include "amp/alloc.h"
#include "amp/error.h"
#include "amp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMP_MAX_KEY_LEN 255
#define AMP_MAX_VALUE_LEN 65535

/* Defaults for amp_limits (see spec/amp.md, "Limits"). */
#define AMP_DEFAULT_MAX_KEYS 1024
#define AMP_DEFAULT_MAX_BOX_BYTES (4u * 1024u * 1024u)

/* One key/value pair: views, never owned by the holder of the struct. */
typedef struct amp_pair {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
} amp_pair;

/* A decoded box: `count` pairs in wire order (duplicates kept as sent) and the
 * number of bytes the box took on the wire, terminator included. */
typedef struct amp_box {
    const amp_pair *pairs;
    size_t count;
    size_t wire_len;
} amp_box;

/* Caps enforced by the decoder before it allocates anything. */
typedef struct amp_limits {
    size_t max_keys;      /* pairs per box; 0 means AMP_DEFAULT_MAX_KEYS */
    size_t max_box_bytes; /* wire bytes per box, terminator included;
                             0 means AMP_DEFAULT_MAX_BOX_BYTES */
    int allow_empty_box;  /* accept a bare terminator as a box of 0 pairs
                             (needed inside AmpList values); default 0 */
} amp_limits;

/* Fill `l` with the defaults. */
AMP_API void amp_limits_default(amp_limits *l);

/* ---- Decoder ----------------------------------------------------------
 * Pull API: amp_decoder_feed() lends the decoder a block of input; then call
 * amp_decoder_next() until it returns AMP_AGAIN, which means every byte of the
 * block has been used (an incomplete box at its end has been copied into the
 * decoder). The block must stay valid and unchanged until that AMP_AGAIN.
 *
 * Views: a box returned by amp_decoder_next() (its pairs array and every key
 * and value) stays valid until the next call to amp_decoder_next(),
 * amp_decoder_feed() or amp_decoder_free(). Complete boxes inside the fed block
 * are returned as views into that block without copying.
 *
 * Errors: a protocol or limit error is final; every later call returns it
 * again. amp_decoder_error_offset() tells at which stream byte it was found. */
typedef struct amp_decoder amp_decoder;

/* `limits` may be NULL for the defaults. Returns AMP_OK, AMP_E_NOMEM or
 * AMP_E_INVALID (bad limits). Memory comes from malloc. */
AMP_API amp_err amp_decoder_new(amp_decoder **out, const amp_limits *limits);
/* The same with every allocation of the decoder (itself, its partial box,
 * its pair arrays) through `allocator` (copied; NULL: malloc). AMP_E_INVALID
 * if one of the allocator's functions is missing. */
AMP_API amp_err amp_decoder_new_with(amp_decoder **out, const amp_limits *limits,
                                     const amp_allocator *allocator);
AMP_API void amp_decoder_free(amp_decoder *d);

/* Lend `n` bytes. Returns AMP_E_INVALID if the previous block is not used up
 * (amp_decoder_next() has not yet returned AMP_AGAIN). */
AMP_API amp_err amp_decoder_feed(amp_decoder *d, const uint8_t *p, size_t n);

/* AMP_OK with *box set; AMP_AGAIN when the block is used up; or an error
 * (protocol: EMPTY_BOX, KEY_TOO_LONG; limit: TOO_MANY_KEYS, BOX_TOO_LARGE;
 * AMP_E_NOMEM). */
AMP_API amp_err amp_decoder_next(amp_decoder *d, amp_box *box);

/* At end of stream: AMP_OK if no box is partly received, AMP_E_TRUNCATED if
 * one is, or the decoder's final error. */
AMP_API amp_err amp_decoder_finish(const amp_decoder *d);

/* Change the caps; they apply from the next length header read (a box in
 * progress is checked against the new caps from there on). AMP_E_INVALID
 * for a max_box_bytes below 2. */
AMP_API amp_err amp_decoder_set_limits(amp_decoder *d, const amp_limits *limits);

/* Stream offset (bytes fed so far, counting from 0) of the byte where the
 * decoder's error was detected; for AMP_E_TRUNCATED, the offset where the
 * incomplete box began. 0 when there is no error. */
AMP_API uint64_t amp_decoder_error_offset(const amp_decoder *d);
/* Bytes fed into the decoder so far. */
AMP_API uint64_t amp_decoder_offset(const amp_decoder *d);
/* Bytes of an incomplete box copied into the decoder and held there until
 * the box completes (0 when none; at most max_box_bytes). The memory behind
 * a completed box larger than 64 KiB is released when the next box starts. */
AMP_API size_t amp_decoder_pending(const amp_decoder *d);

/* ---- Lookup -----------------------------------------------------------
 * The last pair with that key (duplicate keys: last one wins, as in
 * Twisted), or NULL. The result points into the box's pairs array. */
AMP_API const amp_pair *amp_box_find(const amp_box *b, const uint8_t *key, size_t key_len);
AMP_API const amp_pair *amp_box_find_str(const amp_box *b, const char *key);

/* ---- Output buffer ----------------------------------------------------
 * A byte buffer that either grows through an allocator (amp_buf_init: malloc;
 * amp_buf_init_with: the one given) or writes into a caller's fixed memory
 * and fails with AMP_E_NOSPACE (amp_buf_init_fixed). A zero-filled amp_buf
 * is the same as one after amp_buf_init(). A function that fails leaves
 * `len` and the bytes before it untouched. The struct is plain: the caller
 * owns it; it owns `data` unless `fixed`. */
typedef struct amp_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    int fixed; /* nonzero: `data` belongs to the caller and never grows */
    /* NULL: malloc/realloc/free. Not copied: the struct it points to must
     * outlive the buffer's memory. */
    const amp_allocator *allocator;
} amp_buf;

AMP_API void amp_buf_init(amp_buf *b);
AMP_API void amp_buf_init_with(amp_buf *b, const amp_allocator *allocator);
AMP_API void amp_buf_init_fixed(amp_buf *b, uint8_t *mem, size_t cap);
/* Frees the memory of a growable buffer; a fixed one is only reset. */
AMP_API void amp_buf_free(amp_buf *b);
/* Make room for `extra` more bytes. */
AMP_API amp_err amp_buf_reserve(amp_buf *b, size_t extra);
AMP_API amp_err amp_buf_append(amp_buf *b, const uint8_t *p, size_t n);

/* ---- Encoder ----------------------------------------------------------
 * amp_encode_pair() appends one pair; amp_encode_end() appends the
 * terminator. Errors: AMP_E_EMPTY_KEY, AMP_E_KEY_TOO_LONG,
 * AMP_E_VALUE_TOO_LONG, AMP_E_NOSPACE, AMP_E_NOMEM; on error nothing is
 * written. */
AMP_API amp_err amp_encode_pair(amp_buf *b, const uint8_t *key, size_t key_len,
                                const uint8_t *value, size_t value_len);
AMP_API amp_err amp_encode_pair_str(amp_buf *b, const char *key, const char *value);
AMP_API amp_err amp_encode_end(amp_buf *b);
/* A whole box, all or nothing: on any error (including AMP_E_EMPTY_BOX for
 * n == 0) the buffer is left exactly as it was. */
AMP_API amp_err amp_encode_box(amp_buf *b, const amp_pair *pairs, size_t n);
/* The exact size amp_encode_box() would write, or 0 if it would fail. */
AMP_API size_t amp_box_encoded_size(const amp_pair *pairs, size_t n);
/* The same check with its reason: AMP_OK and *size, or the error
 * amp_encode_box() would return (AMP_E_EMPTY_BOX, AMP_E_EMPTY_KEY,
 * AMP_E_KEY_TOO_LONG, AMP_E_VALUE_TOO_LONG, AMP_E_INVALID). */
AMP_API amp_err amp_box_measure(const amp_pair *pairs, size_t n, size_t *size);

/* ---- Conversation classification --------------------------------------
 * Twisted's precedence: `_answer`, then `_error`, then `_command`. */
typedef enum amp_kind {
    AMP_KIND_ANSWER = 1,
    AMP_KIND_ERROR = 2,
    AMP_KIND_CALL = 3
} amp_kind;

typedef struct amp_message {
    amp_kind kind;
    const amp_pair *tag;         /* _answer / _error / _ask (NULL: a call
                                    that wants no answer) */
    const amp_pair *command;     /* _command, for calls */
    const amp_pair *error_code;  /* for errors */
    const amp_pair *error_description;
} amp_message;

/* AMP_OK, AMP_E_NO_ROLE (none of the three keys) or AMP_E_BAD_ERROR_BOX
 * (an error without code or description). Pointers point into `b`. */
AMP_API amp_err amp_box_classify(const amp_box *b, amp_message *out);

/* Is this one of the keys the protocol itself uses in a box (_ask, _answer,
 * _command, _error, _error_code, _error_description)? Such keys may not be
 * passed as call arguments or answer fields. amp_key_is_reserved() is the
 * same test on a bare key. */
AMP_API int amp_key_is_reserved(const uint8_t *key, size_t key_len);
AMP_API int amp_pair_is_reserved(const amp_pair *p);

#ifdef __cplusplus
}
#endif
#endif
