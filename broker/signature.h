/* Command signatures (spec/amp.md, 6b.7): the optional `arguments`,
 * `response` and `errors` of amp.Register, checked and re-encoded in their
 * canonical form, which is what the broker stores, compares and lists.
 *
 * Everything here is a pure function of its arguments: no global state,
 * any thread, no allocation but sig_new's. The values are peer-controlled bytes: every
 * cap is checked while walking them, before the caller allocates anything,
 * and the canonical form is written into caller memory of SIG_MAX_BYTES. */
#ifndef AMP_BROKER_SIGNATURE_H
#define AMP_BROKER_SIGNATURE_H

#include <stddef.h>
#include <stdint.h>

#include "amp/amp.h"

#define SIG_MAX_ARGUMENTS 64 /* items of `arguments` */
#define SIG_MAX_RESPONSE 64  /* items of `response` */
#define SIG_MAX_ERRORS 32    /* codes in `errors` */
#define SIG_MAX_NAME 64      /* bytes of a name or an error code */
#define SIG_MAX_TYPE 256     /* bytes of a type string, as sent and canonical */
#define SIG_MAX_DEPTH 4      /* ListOf/AmpList nested in one type string */
#define SIG_MAX_BYTES 8192   /* the three values together, as sent and canonical */

/* The lengths of the three canonical values, which lie back to back
 * (arguments, then response, then errors). */
struct sig_lens {
    size_t args, resp, errs;
};

/* A stored signature: one allocation (sig_new), freed with free(). */
struct signature {
    struct sig_lens len;
    uint8_t bytes[];
};

/* What sig_parse found. */
enum sig_status {
    SIG_OK,    /* a signature; canonical form in *out */
    SIG_NONE,  /* none of the three values is present */
    SIG_BAD,   /* malformed: BAD_REQUEST, `why` says what */
    SIG_LIMIT, /* over a cap: LIMIT_EXCEEDED, `why` names the limit */
};

/* A canonical form being checked, in caller memory (8 KiB: fine on the
 * loop thread's stack). */
struct sig_canon {
    struct sig_lens len;
    uint8_t bytes[SIG_MAX_BYTES];
};

/* Checks the three values (each may be NULL: absent) and writes the
 * canonical form into *out. On SIG_BAD and SIG_LIMIT, `why` (why_len bytes,
 * NUL-terminated, printable ASCII) names the value, item and field, e.g.
 * "arguments[2].type: unknown type 'Integr'". */
enum sig_status sig_parse(const amp_pair *arguments, const amp_pair *response,
                          const amp_pair *errors, struct sig_canon *out, char *why,
                          size_t why_len);

/* A stored copy of c (the only allocation here), or NULL out of memory. */
struct signature *sig_new(const struct sig_canon *c);
/* Does the stored signature have this canonical form? */
int sig_matches(const struct signature *s, const struct sig_canon *c);
/* The three canonical values of a stored signature, as views. */
void sig_values(const struct signature *s, amp_pair *arguments, amp_pair *response,
                amp_pair *errors);
/* The bytes a stored signature takes (header and values). */
size_t sig_size(const struct signature *s);

#endif
