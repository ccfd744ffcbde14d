/* One call on a connected amp_client, as 'amp-cli call' makes it (also used
 * by the shell): look up the command's signature, convert the arguments by
 * their declared types, call, print the answer, map the outcome to an exit
 * status of cli.h. Messages go to stderr as "amp-cli VERB: ...". */
#ifndef AMP_CLI_CALL_RUN_H
#define AMP_CLI_CALL_RUN_H

#include "amp/amp.h"
#include "output.h"
#include "signature.h"

typedef struct call_opts {
    const char *verb;    /* for messages: "call" -> "amp-cli call: ..." */
    const char *command; /* the command to call */
    int argc;            /* its arguments: name=value, name:type=value */
    char **argv;
    double timeout;   /* the signature look-up and the call, seconds */
    int no_signature; /* 1: do not ask amp.Commands; every name=value a String */
    int no_answer;    /* 1: send without _ask, print nothing (no look-up) */
    output_mode mode; /* how to print the answer */
} call_opts;

/* Ask the peer for `command`'s signature with `amp.Commands command=NAME`
 * (the item whose `command` matches, also from a broker that ignores the
 * argument and lists everything). Returns CLI_OK with *out filled:
 * has_signature 0 when the peer has none to give (an error answer such as
 * UNHANDLED from a peer that is not a broker, or PERMISSION_DENIED; no such
 * item; an item without signature; a malformed one, after a warning on
 * stderr). Or CLI_TIMEOUT / CLI_CONN after a message: the connection is
 * unusable. Commands named amp.* belong to the broker and have none: not
 * asked. *out is always safe to signature_free. */
int call_fetch_signature(amp_client *cl, const char *command, double timeout, const char *verb,
                         signature *out);

/* Make the call: the signature look-up (unless no_signature or no_answer),
 * the arguments (an unknown name or a missing required argument with a
 * signature: CLI_BAD_INPUT, the message listing the declared ones), any
 * Descriptor passed, the call, the answer printed on stdout in o->mode.
 * Returns the exit status: CLI_OK, CLI_BAD_INPUT, CLI_REMOTE (code and
 * description on stderr), CLI_TIMEOUT, CLI_CONN. */
int call_run(amp_client *cl, const call_opts *o);

/* A plain call whose answer the caller reads: CLI_OK with *out set (free
 * with amp_reply_free), or an exit status after the message on stderr (an
 * error answer: "CODE: description", CLI_REMOTE; CLI_TIMEOUT; CLI_CONN). */
int call_plain(amp_client *cl, const char *verb, const char *command, const amp_pair *args,
               size_t nargs, double timeout, amp_reply **out);

/* The same with the signature already known (sig NULL: none); no look-up. */
int call_run_with(amp_client *cl, const call_opts *o, const signature *sig);

#endif
