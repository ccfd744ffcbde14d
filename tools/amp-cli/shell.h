/* amp-cli shell: the state of one session, shared by its parts:
 * cmd_shell.c (options, connection, input loop) and shell_lines.c (what
 * each line does). */
#ifndef AMP_CLI_SHELL_H
#define AMP_CLI_SHELL_H

#include <signal.h>

#include "amp/amp.h"
#include "conn_opts.h"
#include "output.h"
#include "shell_complete.h"
#include "shell_edit.h"

/* At most this many subscriptions are remembered for 'sub' to list (the
 * broker's max_subscriptions default per connection). */
#define SHELL_SUBS_MAX 1000

typedef struct shell {
    amp_client *cl;
    conn_opts co;
    output_mode mode; /* answers and events: readable text or JSON lines */
    shell_edit *ed;  /* the terminal's editor; NULL when reading plain lines */
    shell_cmds cmds; /* amp.Commands, cached for completion and help */
    char **subs;     /* the patterns subscribed, for 'sub' to list */
    size_t nsubs;
} shell;

/* Run one line. Returns 1 when the line ends the shell (quit, exit), else
 * 0 (its errors are printed on stderr). */
int shell_run_line(shell *sh, const char *line);
/* Around a wait for the peer (a call): Ctrl-C (and SIGTERM) then cancel
 * the wait (amp_client_wakeup) instead of waiting for the prompt. */
void shell_wait_begin(shell *sh);
void shell_wait_end(shell *sh);
/* Free what the lines made (subscriptions list, command cache). */
void shell_lines_free(shell *sh);

#endif
