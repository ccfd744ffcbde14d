/* amp-cli serve: a routed call's arguments, checked against the command's
 * signature, and kept (a copy) while the call waits for its child. */
#ifndef AMP_CLI_SERVE_CALL_H
#define AMP_CLI_SERVE_CALL_H

#include <stddef.h>

#include "amp/amp.h"
#include "signature.h"

/* The error code of a call whose arguments do not match its signature. */
#define SERVE_BAD_ARGUMENTS "BAD_ARGUMENTS"

/* With a signature (sig->has_signature), does `args` match it? Every key
 * other than the protocol's (_ask, _command) must be a declared argument,
 * given once, whose value decodes as its declared type, and every argument
 * not marked optional must be there. 0, or -1 with a description naming
 * the first problem in msg. Without a signature: always 0. */
int serve_call_check(const signature *sig, const amp_box *args, char *msg, size_t msg_len);

/* The arguments without the protocol's keys, copied into one allocation
 * (free() frees all of it); its size in *held. NULL when out of memory. */
amp_box *serve_call_copy_args(const amp_box *args, size_t *held);

#endif
