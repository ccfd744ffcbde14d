/* amp-cli shell: the bus's commands as amp.Commands lists them (cached),
 * and Tab completion from them: the first word completes to a shell
 * keyword or a command name, later words of a call to the argument names
 * of the command's signature ("name="), leaving out those already given. */
#ifndef AMP_CLI_SHELL_COMPLETE_H
#define AMP_CLI_SHELL_COMPLETE_H

#include <stddef.h>

#include "amp/amp.h"
#include "commands_list.h"
#include "shell_edit.h"
#include "signature.h"

/* At most this many commands are kept (the broker's own max_commands
 * default); the rest are left out. */
#define SHELL_CMDS_MAX COMMANDS_MAX_ITEMS

typedef struct shell_cmd {
    signature sig;  /* sig.command: the name; sig.has_signature 0: none declared */
    char *notation; /* the signature printed: 'Sum(a: Integer) -> (...)', or the name */
} shell_cmd;

typedef struct shell_cmds {
    shell_cmd *items;
    size_t count;
    int loaded; /* an amp.Commands answer is cached */
    int cut;    /* the broker had more than the caps of commands_list.h */
} shell_cmds;

/* The shell's own words, completed like command names. */
extern const char *const shell_keywords[];

/* Ask the broker (amp.Commands, every page: commands_list.h) and replace
 * the cache. Returns 0, or a cli.h status with a message in err (escaped;
 * the cache is then left as it was). */
int shell_cmds_refresh(shell_cmds *c, amp_client *cl, double timeout, char *err,
                       size_t err_len);
const shell_cmd *shell_cmds_find(const shell_cmds *c, const char *name);
void shell_cmds_free(shell_cmds *c);

/* Fill `out` for the line's `n` bytes before the cursor (see
 * shell_complete_fn); *word is the unquoted partial word (a static or a
 * string valid until the next call). `refresh(ud)` is called when a first
 * word finds nothing in the cache, to ask the broker again. */
void shell_complete(shell_cmds *c, const char *before, size_t n, const char **word,
                    shell_matches *out, void (*refresh)(void *), void *ud);

#endif
