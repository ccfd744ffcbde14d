/* amp-cli: starting one child of serve --exec. */
#ifndef AMP_CLI_EXEC_SPAWN_H
#define AMP_CLI_EXEC_SPAWN_H

#include <sys/types.h>

/* Run /bin/sh -c COMMAND in a process group of its own, with default signal
 * handling and no signal blocked, fds[0][0], fds[1][1], fds[2][1] as its
 * stdin, stdout and stderr (every other descriptor of ours is close-on-exec
 * and stays behind), and our environment with AMP_COMMAND=NAME and without
 * AMP_PASSWORD or AMP_TOKEN. Returns 0 with *pid set, or an errno value. */
int exec_spawn(const char *command, const char *name, int fds[3][2], pid_t *pid);

#endif
