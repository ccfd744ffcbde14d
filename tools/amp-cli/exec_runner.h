/* amp-cli: child processes on a libev loop, for 'serve --exec'.
 *
 * Each job runs one shell command (/bin/sh -c CMD) in a process group of its
 * own, with its input written to its stdin (then closed), its stdout
 * collected (up to a cap) and its stderr passed through to ours (up to a cap
 * per job). At most `max_running` jobs run at once; further jobs wait in a
 * FIFO of at most `max_queue` jobs holding at most `max_queue_bytes` (what
 * each declares it holds while it waits), and beyond that submitting fails.
 * A job's input is built only when it starts, so a waiting job holds no
 * more than its caller keeps for it. A job that runs longer than `timeout`
 * has its process group killed.
 *
 * Contract
 * - One process, one thread: everything runs on `loop`, which must be the
 *   default loop (libev watches children there only).
 * - Descriptors: every pipe is close-on-exec; a child gets only its stdin,
 *   stdout and stderr. Our own 0, 1 and 2 must be open (else a pipe could
 *   take one of those numbers, and the child's dup2() calls would
 *   overwrite each other). The child starts with default signal dispositions and
 *   an empty signal mask (we ignore SIGPIPE; a shell pipeline must not).
 * - Every child is reaped (libev's SIGCHLD handler waits for it): no zombies.
 * - Each submitted job's callback runs exactly once, from the loop, never
 *   from inside exec_runner_submit(); after it returns the job is gone.
 * - Environment: the child gets ours, plus AMP_COMMAND=<name>, minus the
 *   login secrets AMP_PASSWORD and AMP_TOKEN (a script does not need them). */
#ifndef AMP_CLI_EXEC_RUNNER_H
#define AMP_CLI_EXEC_RUNNER_H

#include <stddef.h>

struct ev_loop;
typedef struct exec_runner exec_runner;

typedef enum exec_outcome {
    EXEC_EXITED,      /* exited: `code` is its exit status */
    EXEC_SIGNALED,    /* killed by signal `code` */
    EXEC_TIMED_OUT,   /* ran past the timeout: its process group was killed */
    EXEC_TOO_MUCH,    /* wrote more than max_stdout bytes: its group was killed */
    EXEC_SPAWN_FAILED,/* could not start: `code` is the errno */
    EXEC_CANCELLED    /* exec_runner_cancel(): never started, or killed */
} exec_outcome;

typedef struct exec_result {
    exec_outcome outcome;
    int code;
    const char *out;      /* what it wrote on stdout (not NUL-terminated) */
    size_t out_len;
    const char *err_line; /* the first line of its stderr, capped; "" if none */
} exec_result;

/* `r` and what it points to are valid during the call only. */
typedef void (*exec_done_cb)(const exec_result *r, void *user_data);

typedef struct exec_runner_config {
    const char *command; /* for /bin/sh -c; must outlive the runner */
    double timeout;      /* seconds per job, from its start; 0: none */
    size_t max_stdout;   /* bytes kept; more: EXEC_TOO_MUCH */
    size_t max_stderr;   /* bytes passed through per job, then "... (truncated)" */
    int max_running;     /* >= 1 */
    size_t max_queue;    /* jobs waiting to start; 0: none wait */
    size_t max_queue_bytes; /* the sum of `held` over waiting jobs */
} exec_runner_config;

/* A job's stdin bytes, built when the job starts: malloc'ed (the runner
 * frees them) with their length in *len, or NULL when out of memory (the
 * job then ends as EXEC_SPAWN_FAILED with ENOMEM). */
typedef char *(*exec_input_fn)(void *user_data, size_t *len);

exec_runner *exec_runner_new(struct ev_loop *loop, const exec_runner_config *cfg);

/* Start a job now, or queue it. input(user_data) is called once, when it
 * starts, for what goes to its stdin; `held` is the bytes the caller keeps
 * for it until then (counted against max_queue_bytes while it waits);
 * `name` (copied) goes to AMP_COMMAND. Returns 0, or -1 when it would wait
 * beyond max_queue jobs or max_queue_bytes, or memory ran out: then
 * neither `input` nor `cb` is ever called. */
int exec_runner_submit(exec_runner *r, exec_input_fn input, size_t held, const char *name,
                       exec_done_cb cb, void *user_data);

size_t exec_runner_running(const exec_runner *r);
size_t exec_runner_queued(const exec_runner *r);
size_t exec_runner_queued_bytes(const exec_runner *r); /* the sum of their `held` */

/* Every queued job ends with EXEC_CANCELLED (callbacks run from here). */
void exec_runner_cancel_queued(exec_runner *r);
/* Kill every running job's process group (SIGKILL) and stop reading its
 * pipes; each ends with EXEC_CANCELLED once its child is reaped. */
void exec_runner_kill_running(exec_runner *r);

/* Kills what still runs without calling back, and frees. */
void exec_runner_free(exec_runner *r);

#endif
