/* amp-cli shell: the line editor on a terminal (libedit): the prompt,
 * editing keys (emacs bindings, ~/.editrc), history with up-arrow recall,
 * Tab completion, and output printed above the line being edited.
 *
 * The editor never blocks on the terminal by itself: before reading each
 * key it calls the owner's wait function, which services the connection
 * (and prints its events through shell_edit_pause/resume) until the
 * terminal has input. */
#ifndef AMP_CLI_SHELL_EDIT_H
#define AMP_CLI_SHELL_EDIT_H

#include <stddef.h>

/* What a wait function returns. */
enum {
    SHELL_IN_READY,     /* stdin has input */
    SHELL_IN_END,       /* stop reading (connection lost, SIGTERM, SIGHUP) */
    SHELL_IN_INTERRUPT, /* Ctrl-C: drop the line being edited */
    SHELL_IN_RESIZED,   /* the window changed size: wait again */
};
typedef int (*shell_wait_fn)(void *ud);

/* Completion: the owner fills `out` for the line's bytes before the
 * cursor. Each candidate replaces the whole word being completed, whose
 * (unquoted) text is `word`; `suffix` ("" or " ") follows a unique match. */
typedef struct shell_matches {
    char **items;
    size_t count, cap;
    const char *suffix;
} shell_matches;
typedef void (*shell_complete_fn)(void *ud, const char *before, size_t n, const char **word,
                                  shell_matches *out);

/* Add a copy of `s` (of n bytes) to the matches; 0 or -1 (out of memory;
 * the cap of completions on one Tab is SHELL_MATCHES_MAX, further ones are
 * dropped). */
#define SHELL_MATCHES_MAX 4096
int shell_matches_add(shell_matches *m, const char *s, size_t n);
void shell_matches_free(shell_matches *m);

typedef struct shell_edit shell_edit;

/* Start editing on stdin, drawing on `out` (a terminal). `history`: the
 * file to load now and save by shell_edit_close() (NULL: none). */
shell_edit *shell_edit_open(const char *prompt, const char *history_file, void *out_stream,
                            shell_wait_fn wait, shell_complete_fn complete, void *ud);
/* The next line, without its newline, valid until the next call; "" after
 * Ctrl-C; NULL at Ctrl-D on an empty line or when the wait function said
 * SHELL_IN_END. */
const char *shell_edit_read(shell_edit *ed);
/* Remember a line for up-arrow recall and the history file. */
void shell_edit_remember(shell_edit *ed, const char *line);
/* Around output printed while a line is being edited: clear the line,
 * then draw the prompt and the line again below the output. Outside
 * shell_edit_read() both do nothing. */
void shell_edit_pause(shell_edit *ed);
void shell_edit_resume(shell_edit *ed);
/* Around stopping the process (Ctrl-Z): the terminal back to its own
 * settings, then after SIGCONT the editor's, and the line drawn again.
 * Outside shell_edit_read() both do nothing. */
void shell_edit_leave(shell_edit *ed);
void shell_edit_enter(shell_edit *ed);
/* Save the history (mode 0600, at most SHELL_HISTORY_MAX entries) and
 * restore the terminal. Returns 0, or -1 if the history could not be
 * written (a message is printed). */
#define SHELL_HISTORY_MAX 1000
int shell_edit_close(shell_edit *ed);

#endif
