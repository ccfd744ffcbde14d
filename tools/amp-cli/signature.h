/* Command signatures: the types of a command's arguments and response and the
 * error codes it declares, as Twisted's amp.Command declares them.
 *
 * Three forms:
 *   - the notation people write and read (serve declares with it, commands
 *     and shell's help print it):
 *       Sum(a: Integer, b: Integer?) -> (total: Integer) ! ZERO_DIVISION, OVERFLOW
 *     '?' after a type marks an optional argument; "-> (...)" and "! CODES"
 *     are optional parts; whitespace is free when parsing; a bare "Sum"
 *     means no signature.
 *   - type strings, Twisted's argument class names: Integer, String,
 *     Unicode, Path, Float, Boolean, Decimal, DateTime, Descriptor,
 *     Structured, ListOf(T), AmpList(name: T, ...); printed in the canonical
 *     form (one space after ',' and ':', none elsewhere).
 *   - the wire form, the optional amp.Register arguments `arguments`
 *     (AmpList of name, type, optional), `response` (AmpList of name, type)
 *     and `errors` (ListOf(Unicode)), also found in amp.Commands items.
 *
 * Limits (the broker's, spec/amp.md section 6b) are enforced while parsing,
 * before anything grows past them: names 1..64 bytes of [A-Za-z0-9_.-] not
 * starting with '_', unique within their list; error codes 1..64 bytes of
 * [A-Z0-9_]; at most 64 arguments, 64 response fields, 32 errors; a type
 * string at most 256 bytes, nesting depth at most 4.
 *
 * Every function is pure (no I/O, no global state); a parsed signature owns
 * all its memory (signature_free). Errors come back as -1 with a message
 * in `err` (always NUL-terminated when err_len > 0). */
#ifndef AMP_CLI_SIGNATURE_H
#define AMP_CLI_SIGNATURE_H

#include <stddef.h>

#include "amp/amp.h"

#define SIG_MAX_NAME_LEN 64
#define SIG_MAX_ARGS 64
#define SIG_MAX_RESPONSE 64
#define SIG_MAX_ERRORS 32
#define SIG_MAX_TYPE_LEN 256
#define SIG_MAX_DEPTH 4
#define SIG_MAX_WIRE_LEN 8192 /* the three wire values together */

typedef enum sig_kind {
    SIG_INTEGER,
    SIG_STRING,
    SIG_UNICODE,
    SIG_PATH,
    SIG_FLOAT,
    SIG_BOOLEAN,
    SIG_DECIMAL,
    SIG_DATETIME,
    SIG_DESCRIPTOR,
    SIG_STRUCTURED,
    SIG_LISTOF,
    SIG_AMPLIST
} sig_kind;

typedef struct sig_type sig_type;

/* An argument, a response key or an AmpList field. */
typedef struct sig_field {
    char *name;
    sig_type *type;
    int optional; /* arguments only: '?' in the notation */
} sig_field;

struct sig_type {
    sig_kind kind;
    sig_type *elem;    /* ListOf: the element type */
    sig_field *fields; /* AmpList: its fields, in order */
    size_t nfields;
};

typedef struct signature {
    char *command;
    int has_signature; /* 0: a bare name, nothing declared */
    sig_field *args;
    size_t nargs;
    sig_field *response;
    size_t nresponse;
    char **errors;
    size_t nerrors;
} signature;

/* ---- type strings ------------------------------------------------------ */
/* Parse a whole type string (n bytes). */
int sig_type_parse(const char *s, size_t n, sig_type **out, char *err, size_t err_len);
/* Append the canonical form. */
void sig_type_format(const sig_type *t, amp_buf *out);
/* The canonical form as a malloc'd string. */
char *sig_type_string(const sig_type *t);
sig_type *sig_type_new(sig_kind kind); /* a scalar kind; NULL if out of memory */
void sig_type_free(sig_type *t);
/* The name of a kind as in type strings ("Integer", "ListOf", ...). */
const char *sig_kind_name(sig_kind k);

/* Is this a valid argument/response/field name, or a valid error code? */
int sig_name_ok(const char *s, size_t n);
int sig_error_code_ok(const char *s, size_t n);

/* ---- the notation ------------------------------------------------------ */
/* Parse "Name(args) -> (response) ! CODES" (or a bare "Name"). The command
 * name is any non-empty text without whitespace, '(', ')', ',' or '!'. */
int signature_parse(const char *text, signature *out, char *err, size_t err_len);
/* The notation in its printed form, malloc'd ("Sum" when has_signature is 0;
 * "Sum()" for a signature without arguments). */
char *signature_format(const signature *s);
/* Only the part after the name: "(a: Integer) -> (total: Integer) ! E", or
 * "" without a signature; malloc'd. */
char *signature_format_tail(const signature *s);
void signature_free(signature *s); /* leaves it zeroed; NULL-safe */

/* The argument named name[0..n), or NULL. */
const sig_field *signature_find_arg(const signature *s, const char *name, size_t n);
/* The response key named name[0..n), or NULL. */
const sig_field *signature_find_response(const signature *s, const char *name, size_t n);

/* ---- the wire form ----------------------------------------------------- */
/* The amp.Register arguments `arguments`, `response`, `errors` (canonical
 * encoding; count 0 without a signature). pairs[] point into the buffers. */
typedef struct sig_wire {
    amp_buf arguments, response, errors;
    amp_pair pairs[3];
    size_t count;
} sig_wire;

int signature_to_wire(const signature *s, sig_wire *out, char *err, size_t err_len);
void sig_wire_free(sig_wire *w);

/* Read the signature from one amp.Commands item (a box with `command`,
 * `policy`, `providers` and, with a signature, `arguments`, `response`,
 * `errors`). No signature keys: 0 with has_signature 0. A malformed one:
 * -1 with a message. */
int signature_from_item(const amp_box *item, signature *out, char *err, size_t err_len);

/* Call fn on each element box of an AmpList value (fields as views into
 * p..n, valid during the call). Stops at fn's first non-zero result and
 * returns it; -1 with a message in err for a malformed AmpList. At most
 * AMP_DEFAULT_MAX_KEYS fields per element. */
typedef int (*amplist_fn)(const amp_box *elem, void *ud);
int amplist_foreach(const uint8_t *p, size_t n, amplist_fn fn, void *ud, char *err,
                    size_t err_len);

#endif
