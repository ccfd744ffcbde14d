/* amp-cli serve --exec: the protocol between a routed call and its child
 * process. The child reads the call as ONE JSON line on stdin,
 *   {"command": "Sum", "arguments": {"a": 1, "b": 2}}
 * (typed JSON by the command's signature; strings without one), and writes
 * the answer as a JSON object on the first line of its stdout: the answer's
 * keys, or {"error": "CODE", "description": "text"} to answer with an AMP
 * error. How the child ended decides the rest (see serve_exec_answer). */
#ifndef AMP_CLI_SERVE_EXEC_H
#define AMP_CLI_SERVE_EXEC_H

#include <stddef.h>

#include "amp/amp.h"
#include "exec_runner.h"
#include "signature.h"

/* The JSON line (with its '\n') for a call of sig->command with the box
 * `args` (reserved keys are left out; values typed by sig's arguments,
 * strings when undeclared). Returns malloc'ed text and its length in
 * *len, or NULL when out of memory. */
char *serve_exec_input(const signature *sig, const amp_box *args, size_t *len);

typedef struct serve_exec_limits {
    double timeout;    /* --exec-timeout, for the TIMEOUT description */
    size_t max_stdout; /* for the EXEC_BAD_OUTPUT description */
} serve_exec_limits;

/* Answer `req` (exactly once) from how its child ended:
 * - an error object on the first stdout line: that error (any exit status);
 * - killed by a signal, or a non-zero exit: EXEC_FAILED ("killed by signal
 *   9", "exit status 3: <first stderr line>");
 * - exit 0 with an answer object: its keys, converted to the types sig's
 *   response declares (undeclared keys: strings as they are, numbers as
 *   their text, booleans as True/False);
 * - output that is not one JSON object on the first line, a value that
 *   does not convert, a declared response field missing, a key starting
 *   with '_': EXEC_BAD_OUTPUT saying why;
 * - over the timeout: TIMEOUT; over max_stdout: EXEC_BAD_OUTPUT; not
 *   started: EXEC_FAILED; cancelled: SHUTTING_DOWN.
 * Returns what amp_request_answer()/amp_request_error() returned. */
amp_err serve_exec_answer(amp_request *req, const exec_result *r, const signature *sig,
                          const serve_exec_limits *lim);

#endif
