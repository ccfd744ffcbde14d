/* amp-cli: child processes on a libev loop (see exec_runner.h). */
#include "exec_runner.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_spawn.h"

#define ERR_LINE_MAX 200 /* the first stderr line kept for a description */
static const char truncated_note[] = "... (truncated)\n";

typedef struct job {
    struct job *prev, *next; /* in the running list or the queue */
    exec_runner *r;
    char *input, *name;
    size_t input_len, input_off;
    exec_input_fn make_input;
    size_t held; /* counted in queued_bytes while it waits */
    exec_done_cb cb;
    void *user_data;
    pid_t pid;
    int in_fd, out_fd, err_fd;
    ev_child child;
    ev_io in_w, out_w, err_w;
    ev_timer timer;
    char *out;
    size_t out_len, out_cap;
    size_t err_passed;
    char err_last; /* the last byte passed through */
    char err_line[ERR_LINE_MAX + 1];
    size_t err_line_len;
    int err_line_done;
    int reaped, status, spawn_errno;
    int forced; /* an exec_outcome that overrides the exit status, or -1 */
} job;

typedef struct job_list {
    job *head, *tail;
    size_t n;
} job_list;

struct exec_runner {
    struct ev_loop *loop;
    exec_runner_config cfg;
    job_list running, queue;
    size_t queued_bytes;
};

static void list_push(job_list *l, job *j)
{
    j->next = NULL;
    j->prev = l->tail;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->n++;
}

static void list_remove(job_list *l, job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        l->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        l->tail = j->prev;
    l->n--;
}

static void close_watched(exec_runner *r, ev_io *w, int *fd)
{
    if (*fd < 0)
        return;
    ev_io_stop(r->loop, w);
    close(*fd);
    *fd = -1;
}

static void close_pipes(job *j)
{
    close_watched(j->r, &j->in_w, &j->in_fd);
    close_watched(j->r, &j->out_w, &j->out_fd);
    close_watched(j->r, &j->err_w, &j->err_fd);
}

static void job_free(job *j)
{
    close_pipes(j);
    ev_timer_stop(j->r->loop, &j->timer);
    ev_child_stop(j->r->loop, &j->child);
    free(j->input);
    free(j->name);
    free(j->out);
    free(j);
}

/* Kill the job's whole process group: the shell and whatever it started.
 * The group id is the child's pid (its own group, made at spawn). */
static void kill_group(job *j)
{
    if (j->pid > 0)
        killpg(j->pid, SIGKILL);
}

static void start_next(exec_runner *r);

/* Done once the child is reaped and both output pipes are closed (a
 * background process of the script can hold them after the shell exits:
 * the timeout then ends the wait). */
static void maybe_finish(job *j)
{
    if (!j->reaped || j->out_fd >= 0 || j->err_fd >= 0)
        return;
    exec_runner *r = j->r;
    exec_result res = {EXEC_EXITED, 0, j->out, j->out_len, j->err_line};
    if (j->spawn_errno) {
        res.outcome = EXEC_SPAWN_FAILED;
        res.code = j->spawn_errno;
    } else if (j->forced >= 0) {
        res.outcome = (exec_outcome)j->forced;
    } else if (WIFSIGNALED(j->status)) {
        res.outcome = EXEC_SIGNALED;
        res.code = WTERMSIG(j->status);
    } else {
        res.code = WEXITSTATUS(j->status);
    }
    list_remove(&r->running, j);
    j->cb(&res, j->user_data);
    job_free(j);
    start_next(r);
}

/* End a running job early: kill its group, stop reading; the outcome is
 * reported when the child is reaped. */
static void force_end(job *j, exec_outcome why)
{
    /* a timeout after the exit only ends the wait for stragglers that hold
     * the pipes: the exit status stands */
    if (j->forced < 0 && !(why == EXEC_TIMED_OUT && j->reaped))
        j->forced = (int)why;
    kill_group(j);
    close_pipes(j);
    maybe_finish(j);
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
    job *j = w->data;
    ev_child_stop(loop, w);
    j->reaped = 1;
    j->status = w->rstatus;
    maybe_finish(j);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    job *j = w->data;
    if (j->spawn_errno) { /* the deferred report of a failed start */
        maybe_finish(j);
        return;
    }
    /* exited already: only stragglers hold the pipes; the exit status counts */
    force_end(j, EXEC_TIMED_OUT);
}

static void on_stdin(struct ev_loop *loop, ev_io *w, int revents)
{
    job *j = w->data;
    while (j->input_off < j->input_len) {
        ssize_t n = write(j->in_fd, j->input + j->input_off, j->input_len - j->input_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) /* EPIPE: it does not read its input; its exit says the rest */
            break;
        j->input_off += (size_t)n;
    }
    close_watched(j->r, &j->in_w, &j->in_fd);
}

static void on_stdout(struct ev_loop *loop, ev_io *w, int revents)
{
    job *j = w->data;
    size_t cap = j->r->cfg.max_stdout;
    for (;;) {
        if (j->out_len == j->out_cap) {
            /* one byte past the cap tells "too much" from "exactly the cap" */
            size_t ncap = j->out_cap ? j->out_cap * 2 : 4096;
            if (ncap > cap + 1)
                ncap = cap + 1;
            char *p = ncap > j->out_cap ? realloc(j->out, ncap) : NULL;
            if (!p) {
                force_end(j, EXEC_TOO_MUCH);
                return;
            }
            j->out = p;
            j->out_cap = ncap;
        }
        ssize_t n = read(j->out_fd, j->out + j->out_len, j->out_cap - j->out_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            close_watched(j->r, w, &j->out_fd);
            maybe_finish(j);
            return;
        }
        j->out_len += (size_t)n;
        if (j->out_len > cap) {
            j->out_len = cap;
            force_end(j, EXEC_TOO_MUCH);
            return;
        }
    }
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Keep the first line (for an error description) and pass the bytes
 * through to our stderr, up to the cap. */
static void take_stderr(job *j, const char *p, size_t n)
{
    for (size_t i = 0; i < n && !j->err_line_done; i++) {
        if (p[i] == '\n' || j->err_line_len == ERR_LINE_MAX)
            j->err_line_done = 1;
        else
            j->err_line[j->err_line_len++] = p[i];
    }
    size_t max = j->r->cfg.max_stderr;
    if (j->err_passed > max)
        return;
    size_t pass = n < max - j->err_passed ? n : max - j->err_passed;
    write_all(STDERR_FILENO, p, pass);
    j->err_passed += pass;
    if (pass)
        j->err_last = p[pass - 1];
    if (pass < n) {
        if (j->err_last != '\n')
            write_all(STDERR_FILENO, "\n", 1);
        write_all(STDERR_FILENO, truncated_note, sizeof truncated_note - 1);
        j->err_passed = max + 1;
    }
}

static void on_stderr(struct ev_loop *loop, ev_io *w, int revents)
{
    job *j = w->data;
    char buf[4096];
    for (;;) {
        ssize_t n = read(j->err_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            close_watched(j->r, w, &j->err_fd);
            maybe_finish(j);
            return;
        }
        take_stderr(j, buf, (size_t)n);
    }
}

static void start_watchers(job *j)
{
    struct ev_loop *loop = j->r->loop;
    ev_child_set(&j->child, j->pid, 0);
    ev_child_start(loop, &j->child);
    ev_io_set(&j->in_w, j->in_fd, EV_WRITE);
    ev_io_set(&j->out_w, j->out_fd, EV_READ);
    ev_io_set(&j->err_w, j->err_fd, EV_READ);
    ev_io_start(loop, &j->in_w);
    ev_io_start(loop, &j->out_w);
    ev_io_start(loop, &j->err_w);
    if (j->r->cfg.timeout > 0) {
        ev_timer_set(&j->timer, j->r->cfg.timeout, 0);
        ev_timer_start(loop, &j->timer);
    }
}

static void start_job(exec_runner *r, job *j)
{
    int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    list_push(&r->running, j);
    int err = 0;
    j->input = j->make_input(j->user_data, &j->input_len);
    if (!j->input)
        err = ENOMEM;
    for (int i = 0; i < 3 && !err; i++)
        if (pipe2(fds[i], O_CLOEXEC))
            err = errno;
    if (!err)
        err = exec_spawn(j->r->cfg.command, j->name, fds, &j->pid);
    /* the child's ends are the child's now; ours are non-blocking */
    int child_end[3] = {fds[0][0], fds[1][1], fds[2][1]};
    for (int i = 0; i < 3; i++)
        if (child_end[i] >= 0)
            close(child_end[i]);
    j->in_fd = fds[0][1];
    j->out_fd = fds[1][0];
    j->err_fd = fds[2][0];
    if (err) {
        /* report from the loop, as promised, not from inside submit */
        close_pipes(j);
        j->spawn_errno = err;
        j->reaped = 1;
        ev_timer_set(&j->timer, 0, 0);
        ev_timer_start(r->loop, &j->timer);
        return;
    }
    for (int i = 0; i < 3; i++)
        fcntl(i == 0 ? j->in_fd : i == 1 ? j->out_fd : j->err_fd, F_SETFL, O_NONBLOCK);
    start_watchers(j);
}

static void start_next(exec_runner *r)
{
    while (r->queue.head && r->running.n < (size_t)r->cfg.max_running) {
        job *j = r->queue.head;
        list_remove(&r->queue, j);
        r->queued_bytes -= j->held;
        start_job(r, j);
    }
}

exec_runner *exec_runner_new(struct ev_loop *loop, const exec_runner_config *cfg)
{
    exec_runner *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->loop = loop;
    r->cfg = *cfg;
    if (r->cfg.max_running < 1)
        r->cfg.max_running = 1;
    return r;
}

int exec_runner_submit(exec_runner *r, exec_input_fn input, size_t held, const char *name,
                       exec_done_cb cb, void *user_data)
{
    int now = r->running.n < (size_t)r->cfg.max_running;
    if (!now && (r->queue.n >= r->cfg.max_queue ||
                 held > r->cfg.max_queue_bytes - r->queued_bytes))
        return -1;
    job *j = calloc(1, sizeof *j);
    if (!j)
        return -1;
    j->name = strdup(name);
    if (!j->name) {
        free(j);
        return -1;
    }
    j->make_input = input;
    j->held = held;
    j->r = r;
    j->cb = cb;
    j->user_data = user_data;
    j->in_fd = j->out_fd = j->err_fd = -1;
    j->forced = -1;
    ev_child_init(&j->child, on_child, 0, 0);
    ev_io_init(&j->in_w, on_stdin, -1, EV_WRITE);
    ev_io_init(&j->out_w, on_stdout, -1, EV_READ);
    ev_io_init(&j->err_w, on_stderr, -1, EV_READ);
    ev_init(&j->timer, on_timeout);
    j->child.data = j->in_w.data = j->out_w.data = j->err_w.data = j->timer.data = j;
    if (now)
        start_job(r, j);
    else {
        list_push(&r->queue, j);
        r->queued_bytes += held;
    }
    return 0;
}

size_t exec_runner_running(const exec_runner *r)
{
    return r->running.n;
}

size_t exec_runner_queued(const exec_runner *r)
{
    return r->queue.n;
}

size_t exec_runner_queued_bytes(const exec_runner *r)
{
    return r->queued_bytes;
}

void exec_runner_cancel_queued(exec_runner *r)
{
    while (r->queue.head) {
        job *j = r->queue.head;
        list_remove(&r->queue, j);
        r->queued_bytes -= j->held;
        exec_result res = {EXEC_CANCELLED, 0, "", 0, ""};
        j->cb(&res, j->user_data);
        job_free(j);
    }
}

void exec_runner_kill_running(exec_runner *r)
{
    /* force_end may finish (and free) the job, and a finished job starts
     * the next queued one (appended here, and killed in turn): keep `next`
     * before the call */
    for (job *j = r->running.head, *next; j; j = next) {
        next = j->next;
        if (j->spawn_errno)
            continue; /* reported from its zero timer */
        force_end(j, EXEC_CANCELLED);
    }
}

void exec_runner_free(exec_runner *r)
{
    if (!r)
        return;
    while (r->queue.head) {
        job *j = r->queue.head;
        list_remove(&r->queue, j);
        job_free(j);
    }
    while (r->running.head) {
        job *j = r->running.head;
        list_remove(&r->running, j);
        if (!j->reaped)
            kill_group(j);
        job_free(j);
    }
    free(r);
}
