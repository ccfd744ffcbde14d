/* Command-line arguments "name=value" and "name:type=value" as AMP pairs. */
#ifndef AMP_CLI_TYPED_ARGS_H
#define AMP_CLI_TYPED_ARGS_H

#include <stddef.h>

#include "amp/amp.h"

typedef struct typed_args {
    amp_pair *pairs;
    size_t count;
    amp_buf *values; /* one buffer per pair */
    char **fd_paths; /* Descriptor arguments: the file to open, or NULL */
    size_t cap;
} typed_args;

/* The types, for --help. */
extern const char typed_args_help[];

/* Parse argv into pairs. Returns 0, or -1 with a message in err. */
int typed_args_parse(typed_args *out, int argc, char **argv, char *err, size_t err_len);
/* Open each Descriptor argument's file and send it over `conn`, writing the
 * ordinal into the value. Returns 0, or -1 with a message. */
int typed_args_send_fds(typed_args *a, amp_conn *conn, char *err, size_t err_len);
void typed_args_free(typed_args *a);

#endif
