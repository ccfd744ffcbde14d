/* amp-cli shell: an interactive prompt on one connection to the bus. */
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "amp/amp.h"
#include "cli.h"
#include "term_text.h"
#include "shell.h"
#include "shell_words.h"

static void shell_usage(FILE *out)
{
    fprintf(out,
            "usage: amp-cli shell [OPTIONS] [ENDPOINT]\n"
            "\n"
            "Connect once to ENDPOINT (else --server, else $AMP_URL), log in as told,\n"
            "then read lines, each one of:\n"
            "  COMMAND [ARG]...       call COMMAND and print its answer (also\n"
            "                         'call COMMAND [ARG]...')\n"
            "  pub NAME [ARG]...      publish the event NAME\n"
            "  sub PATTERN...         subscribe ('*' one token, '>' the rest); events\n"
            "                         print as they arrive, between prompts\n"
            "  sub                    list this shell's subscriptions\n"
            "  unsub PATTERN          end a subscription\n"
            "  commands               the bus's commands with their signatures\n"
            "  help [COMMAND]         the lines, or COMMAND's signature\n"
            "  quit, exit, Ctrl-D     leave\n"
            "Words split as in a POSIX shell: '...' and \"...\" quote, \\ escapes.\n"
            "ARG is name=value or name:type=value as for 'amp-cli call'; when the\n"
            "command has a signature, name=value takes the declared type.\n"
            "\n"
            "On a terminal: a prompt 'amp> ' with line editing (emacs keys, ~/.editrc),\n"
            "up-arrow history saved in $AMP_HISTORY (default ~/.amp_cli_history, mode\n"
            "0600, the last 1000 lines), Tab completion of keywords, command names\n"
            "(from amp.Commands) and argument names (from signatures), Ctrl-C drops\n"
            "the line or cancels the wait for an answer, Ctrl-Z stops the shell\n"
            "until 'fg'. When stdin is not a terminal, lines are read plainly: no\n"
            "prompt, no history.\n"
            "Answers and events print as readable text on a terminal, as JSON lines\n"
            "when stdout is not a terminal or with --json. Errors of a line print on\n"
            "stderr and the shell goes on.\n"
            "\n"
            "options:\n"
            "  --json              JSON lines even on a terminal\n"
            "  --timeout SECONDS   give up on the connection and on each call\n"
            "                      (default 30)\n"
            "%s"
            "exit status: 0 at quit or end of input (whatever the lines' outcomes);\n"
            "5 connection failed or lost; 6 the connection timed out; 7 the login\n"
            "was refused; 2 usage error\n",
            conn_opts_help);
}

/* Signals: blocked except while waiting (ppoll) and during a call, so a
 * signal cannot fall between checking the flags and waiting. */
static volatile sig_atomic_t got_int, got_end, got_winch, got_tstp, in_call, woken;
static amp_client *volatile signal_client;

static void on_signal(int sig)
{
    if (sig == SIGINT) {
        if (in_call && signal_client) {
            amp_client_wakeup(signal_client); /* async-signal-safe */
            woken = 1;
        } else {
            got_int = 1;
        }
    } else if (sig == SIGWINCH) {
        got_winch = 1;
    } else if (sig == SIGTSTP) {
        got_tstp = 1;
    } else {
        got_end = 1;
        if (in_call && signal_client) {
            amp_client_wakeup(signal_client);
            woken = 1;
        }
    }
}

static sigset_t wait_mask; /* the mask while waiting: these signals let through */

static void setup_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP};
    sigset_t block;
    sigemptyset(&block);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        sigaddset(&block, sigs[i]);
        sigaction(sigs[i], &sa, NULL);
    }
    sigprocmask(SIG_BLOCK, &block, &wait_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigdelset(&wait_mask, sigs[i]);
    signal(SIGPIPE, SIG_IGN);
}

static sigset_t call_mask; /* the mask outside calls, while one runs */

void shell_wait_begin(shell *sh)
{
    (void)sh;
    got_int = 0;
    in_call = 1;
    sigprocmask(SIG_SETMASK, &wait_mask, &call_mask);
}

void shell_wait_end(shell *sh)
{
    sigprocmask(SIG_SETMASK, &call_mask, NULL);
    in_call = 0;
    if (woken) {
        /* A wakeup that came when no call was waiting (while an answer was
         * printed, say) stays pending and would cancel the next line's
         * call: spend it on a call of our own, which returns at once when
         * one is pending, else after 1 ms (its late answer is dropped). */
        amp_reply *reply = NULL;
        amp_client_call(sh->cl, "amp.Stats", NULL, 0, 0.001, &reply);
        amp_reply_free(reply);
        woken = 0;
    }
}

/* Ctrl-Z: stop as the default action would (so not at all in an orphaned
 * process group, where nobody could continue us), with the terminal in its
 * own settings meanwhile. The connection is not serviced while stopped. */
static void stop_self(shell *sh)
{
    struct sigaction dfl, ours;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    shell_edit_leave(sh->ed);
    sigaction(SIGTSTP, &dfl, &ours);
    sigset_t tstp, old;
    sigemptyset(&tstp);
    sigaddset(&tstp, SIGTSTP);
    raise(SIGTSTP); /* pending while blocked; delivered by the unblocking */
    sigprocmask(SIG_UNBLOCK, &tstp, &old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    sigaction(SIGTSTP, &ours, NULL);
    shell_edit_enter(sh->ed);
}

/* Keep the connection going until stdin has input (see shell_wait_fn). */
static int wait_input(void *ud)
{
    shell *sh = ud;
    for (;;) {
        if (got_end || !amp_client_conn(sh->cl))
            return SHELL_IN_END;
        if (got_int) {
            got_int = 0;
            return SHELL_IN_INTERRUPT;
        }
        if (got_winch) {
            got_winch = 0;
            return SHELL_IN_RESIZED;
        }
        if (got_tstp) {
            got_tstp = 0;
            stop_self(sh);
            return SHELL_IN_RESIZED; /* perhaps it was, meanwhile */
        }
        struct pollfd p[2] = {{STDIN_FILENO, POLLIN, 0}, {amp_client_fd(sh->cl), POLLIN, 0}};
        double wait = amp_client_timeout(sh->cl);
        struct timespec ts, *tsp = NULL;
        if (wait >= 0) {
            ts.tv_sec = (time_t)wait;
            ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
            tsp = &ts;
        }
        int r = ppoll(p, 2, tsp, &wait_mask);
        if (r < 0 && errno != EINTR) {
            perror("amp-cli shell: poll");
            got_end = 1;
            continue;
        }
        amp_client_step(sh->cl);
        if (r > 0 && p[0].revents)
            return SHELL_IN_READY;
    }
}

/* Around output between prompts: the line being edited moves below it. */
static void output_begin(shell *sh)
{
    shell_edit_pause(sh->ed);
}

static void output_end(shell *sh)
{
    fflush(stdout);
    shell_edit_resume(sh->ed);
}

/* An event from a subscription (the broker's call without _ask). */
static void on_event(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    (void)s;
    shell *sh = ud;
    output_begin(sh);
    output_box_line(stdout, sh->mode, args);
    output_end(sh);
    amp_request_answer(req, NULL, 0); /* an event's request: its answer is dropped */
}

/* Lines from a pipe or a file: no prompt, no history; the connection is
 * kept going between lines all the same. */
typedef struct plain_input {
    char *buf;
    size_t len, cap;
    int eof;
} plain_input;

/* The next line (NUL-terminated, without its newline) or NULL at the end.
 * A line over SHELL_LINE_MAX is reported and skipped. */
static char *plain_read(shell *sh, plain_input *in, size_t *consumed)
{
    memmove(in->buf, in->buf + *consumed, in->len - *consumed);
    in->len -= *consumed;
    *consumed = 0;
    int skipping = 0;
    for (;;) {
        char *nl = memchr(in->buf, '\n', in->len);
        if (nl || (in->eof && in->len)) {
            size_t n = nl ? (size_t)(nl - in->buf) : in->len;
            in->buf[n] = 0; /* the cap leaves room for it */
            *consumed = nl ? n + 1 : n;
            if (!skipping)
                return in->buf;
            skipping = 0;
            memmove(in->buf, in->buf + *consumed, in->len - *consumed);
            in->len -= *consumed;
            *consumed = 0;
            continue;
        }
        if (in->eof)
            return NULL;
        if (in->len == in->cap) { /* a line longer than the cap: drop it */
            if (!skipping)
                fprintf(stderr, "amp-cli shell: a line over %d bytes, skipped\n",
                        SHELL_LINE_MAX);
            skipping = 1;
            in->len = 0;
        }
        int w = wait_input(sh);
        if (w == SHELL_IN_END || w == SHELL_IN_INTERRUPT) /* Ctrl-C ends a script */
            return NULL;
        if (w != SHELL_IN_READY)
            continue;
        ssize_t r = read(STDIN_FILENO, in->buf + in->len, in->cap - in->len);
        if (r < 0 && errno != EINTR && errno != EAGAIN) {
            perror("amp-cli shell: stdin");
            in->eof = 1;
        } else if (r == 0) {
            in->eof = 1;
        } else if (r > 0) {
            in->len += (size_t)r;
        }
    }
}

static void read_plain(shell *sh)
{
    plain_input in = {malloc(SHELL_LINE_MAX + 1), 0, SHELL_LINE_MAX, 0};
    size_t consumed = 0;
    char *line;
    if (!in.buf) {
        fprintf(stderr, "amp-cli shell: out of memory\n");
        return;
    }
    while ((line = plain_read(sh, &in, &consumed)))
        if (shell_run_line(sh, line))
            break;
    free(in.buf);
}

/* $AMP_HISTORY, else ~/.amp_cli_history; NULL when neither can be named. */
static char *history_path(void)
{
    const char *env = getenv("AMP_HISTORY"), *home = getenv("HOME");
    if (env && *env)
        return strdup(env);
    if (!home || !*home)
        return NULL;
    size_t n = strlen(home) + sizeof "/.amp_cli_history";
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/.amp_cli_history", home);
    return p;
}

static void refresh_cmds(void *ud)
{
    shell *sh = ud;
    char err[1024];
    shell_wait_begin(sh);
    shell_cmds_refresh(&sh->cmds, sh->cl, sh->co.timeout, err, sizeof err);
    shell_wait_end(sh);
    sh->cmds.loaded = 1; /* a failure is not retried on every Tab */
}

static void complete(void *ud, const char *before, size_t n, const char **word,
                     shell_matches *out)
{
    shell *sh = ud;
    shell_complete(&sh->cmds, before, n, word, out, refresh_cmds, sh);
}

static int read_edited(shell *sh)
{
    char *hist = history_path();
    /* the editor draws on the terminal: stdout, or stderr when stdout is
     * piped elsewhere (the answers then go there as JSON) */
    sh->ed = shell_edit_open("amp> ", hist, isatty(STDOUT_FILENO) ? stdout : stderr,
                             wait_input, complete, sh);
    free(hist);
    if (!sh->ed) {
        fprintf(stderr, "amp-cli shell: cannot set up the line editor\n");
        return CLI_IO;
    }
    const char *line;
    while ((line = shell_edit_read(sh->ed))) {
        shell_edit_remember(sh->ed, line);
        if (shell_run_line(sh, line))
            break;
    }
    if (!line && !got_end && amp_client_conn(sh->cl))
        fputc('\n', isatty(STDOUT_FILENO) ? stdout : stderr); /* Ctrl-D: end the prompt's line */
    shell_edit_close(sh->ed);
    sh->ed = NULL;
    return CLI_OK;
}

/* Close after writing what is queued (a pub just before the end of
 * input must still reach the broker). */
static void close_gracefully(amp_client *cl, double timeout)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (amp_client_conn(cl))
        amp_conn_close(amp_client_conn(cl));
    while (amp_client_conn(cl)) {
        struct pollfd p = {amp_client_fd(cl), POLLIN, 0};
        poll(&p, 1, 100);
        amp_client_step(cl);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > timeout)
            break;
    }
}

int cmd_shell(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'}, {"timeout", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'}, CONN_OPTS_LONG,
        {0, 0, 0, 0},
    };
    shell sh;
    memset(&sh, 0, sizeof sh);
    conn_opts_init(&sh.co);
    int c, json = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (conn_opts_handle(&sh.co, c, optarg))
            continue;
        switch (c) {
        case 'j': json = 1; break;
        case 't':
            if (cli_positive("shell", "timeout", optarg, &sh.co.timeout))
                return CLI_USAGE;
            break;
        case 'h': shell_usage(stdout); return CLI_OK;
        default: shell_usage(stderr); return CLI_USAGE;
        }
    }
    if (argc - optind > 1) {
        shell_usage(stderr);
        return CLI_USAGE;
    }
    const char *endpoint = optind < argc ? argv[optind] : NULL;
    int interactive = isatty(STDIN_FILENO);
    sh.mode = output_pick(json);
    setlocale(LC_CTYPE, ""); /* the editor's idea of characters */
    setup_signals();
    int status = conn_opts_connect(&sh.co, endpoint, "shell", &sh.cl);
    if (status != CLI_OK)
        return status;
    signal_client = sh.cl;
    amp_session_serve_fallback(amp_conn_session(amp_client_conn(sh.cl)), on_event, &sh);
    if (interactive)
        status = read_edited(&sh);
    else
        read_plain(&sh);
    if (status == CLI_OK && !amp_client_conn(sh.cl)) {
        const char *why = amp_client_error_text(sh.cl);
        term_printf(stderr, "amp-cli shell: connection lost%s%s\n", *why ? ": " : "", why);
        status = CLI_CONN;
    } else {
        close_gracefully(sh.cl, sh.co.timeout);
    }
    signal_client = NULL;
    amp_client_free(sh.cl);
    shell_lines_free(&sh);
    return status;
}
