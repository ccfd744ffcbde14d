/* amp-cli: starting one child of serve --exec (see exec_spawn.h). */
#include "exec_spawn.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* Our environment for the child, with AMP_COMMAND set and the login
 * secrets left out. The strings are shared with environ except the one. */
static char **child_env(const char *name, char **own)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = malloc((n + 2) * sizeof *env);
    size_t len = strlen(name);
    *own = malloc(len + sizeof "AMP_COMMAND=");
    if (!env || !*own) {
        free(env);
        free(*own);
        return NULL;
    }
    memcpy(*own, "AMP_COMMAND=", 12);
    memcpy(*own + 12, name, len + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "AMP_COMMAND=", 12) && strncmp(environ[i], "AMP_PASSWORD=", 13) &&
            strncmp(environ[i], "AMP_TOKEN=", 10))
            env[k++] = environ[i];
    env[k++] = *own;
    env[k] = NULL;
    return env;
}

int exec_spawn(const char *command, const char *name, int fds[3][2], pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, defaults;
    int err = posix_spawn_file_actions_init(&fa);
    if (err)
        return err;
    if ((err = posix_spawnattr_init(&attr))) {
        posix_spawn_file_actions_destroy(&fa);
        return err;
    }
    sigemptyset(&none);
    sigemptyset(&defaults);
    static const int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1,
                               SIGUSR2, SIGALRM};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&defaults, sigs[i]);
    posix_spawn_file_actions_adddup2(&fa, fds[0][0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, fds[1][1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, fds[2][1], STDERR_FILENO);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, &none);
    char *own = NULL;
    char **env = child_env(name, &own);
    char *argv[] = {"sh", "-c", (char *)command, NULL};
    err = env ? posix_spawn(pid, "/bin/sh", &fa, &attr, argv, env) : ENOMEM;
    free(env);
    free(own);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return err;
}

