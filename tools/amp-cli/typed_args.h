/* Command-line arguments "name=value" and "name:type=value" as AMP pairs. */
#ifndef AMP_CLI_TYPED_ARGS_H
#define AMP_CLI_TYPED_ARGS_H

#include <stddef.h>

#include <jansson.h>

#include "amp/amp.h"
#include "signature.h"

typedef struct typed_args {
    amp_pair *pairs;
    size_t count;
    amp_buf *values; /* one buffer per pair */
    char **fd_paths; /* Descriptor arguments: the file to open, or NULL */
    size_t cap;
} typed_args;

/* The types, for --help. */
extern const char typed_args_help[];

/* Parse argv into pairs: "name=value" is a String, "name:type=value" the
 * type given. Returns 0, or -1 with a message in err. Either way the caller
 * frees `out` with typed_args_free. The pairs' keys point into argv. */
int typed_args_parse(typed_args *out, int argc, char **argv, char *err, size_t err_len);
/* The same with the command's signature (NULL or without one: as above):
 * "name=value" takes the argument's declared type, an explicit ":type" wins;
 * a name the signature does not declare, or a required argument missing, is
 * an error whose message ends with the signature "(declared: Sum(a: ...))". */
int typed_args_parse_sig(typed_args *out, int argc, char **argv, const signature *sig, char *err,
                         size_t err_len);

/* The encoders, by type descriptor; they append the AMP value to `out` and
 * return 0, or -1 with a message. From text as typed on a command line
 * (ListOf, AmpList, Structured: JSON text; a Descriptor: its ordinal): */
int typed_args_encode_text(const sig_type *t, const char *v, size_t vn, amp_buf *out, char *err,
                           size_t err_len);
/* From a JSON value (numbers, strings of digits for Integers of any size,
 * "nan"/"inf"/"-inf" for Floats, true/false, arrays for ListOf, arrays of
 * objects for AmpList, where undeclared fields must be strings; any JSON
 * for Structured). */
int typed_args_encode_json(const sig_type *t, json_t *j, amp_buf *out, char *err,
                           size_t err_len);
/* Open each Descriptor argument's file and send it over `conn`, writing the
 * ordinal into the value. Returns 0, or -1 with a message. */
int typed_args_send_fds(typed_args *a, amp_conn *conn, char *err, size_t err_len);
void typed_args_free(typed_args *a);

#endif
