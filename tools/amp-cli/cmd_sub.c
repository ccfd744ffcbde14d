/* amp-cli sub: subscribe through a broker, print each event as a JSON line. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amp/amp.h"
#include "cli.h"
#include "conn_opts.h"
#include "output.h"
#include "term_text.h"

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

struct sub_state {
    long count, seen;
    output_mode mode;
    int write_errno; /* stdout failed (its reader went away): we are done */
};

static void sub_usage(FILE *out)
{
    fprintf(out,
            "usage: amp-cli sub [OPTIONS] PATTERN...\n"
            "\n"
            "Subscribe through the broker (amp.Subscribe, one per PATTERN: '*' one\n"
            "token, '>' the rest) and print each event: as one JSON line, its name as\n"
            "\"_command\" and its keys in wire order, as 'amp-cli decode' prints them,\n"
            "when stdout is not a terminal or with --json; else as 'NAME  key=value...'.\n"
            "Once every subscription is in place, prints 'amp-cli sub: subscribed' on\n"
            "stderr.\n"
            "\n"
            "options:\n"
            "  --json              JSON lines even on a terminal\n"
            "  --count N           exit 0 after N events\n"
            "  --timeout SECONDS   stop waiting after that long: exit 6 if fewer than\n"
            "                      --count events (without --count: none) arrived\n"
            "%s"
            "exit status: 0 done, or stopped by SIGINT/SIGTERM; 4 a subscription was\n"
            "refused; 5 connection failed or lost; 6 timed out; 7 the login was\n"
            "refused; 3 writing to stdout failed (its reader went away); 2 usage\n"
            "error\n",
            conn_opts_help);
}

static void on_event(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    struct sub_state *st = ud;
    if (st->write_errno || (st->count && st->seen >= st->count)) { /* not asked for */
        amp_request_answer(req, NULL, 0);
        return;
    }
    output_box_line(stdout, st->mode, args); /* flushes */
    if (ferror(stdout))
        st->write_errno = errno ? errno : EIO;
    st->seen++;
    amp_request_answer(req, NULL, 0); /* an event's request: its answer is dropped */
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int subscribe(amp_client *cl, const char *pattern, double timeout)
{
    amp_pair p = {(const uint8_t *)"pattern", 7, (const uint8_t *)pattern, strlen(pattern)};
    amp_reply *reply = NULL;
    amp_err r = amp_client_call(cl, "amp.Subscribe", &p, 1, timeout, &reply);
    int status = CLI_OK;
    if (r == AMP_E_REMOTE) {
        char *prefix = NULL;
        if (asprintf(&prefix, "amp-cli sub: %s: ", pattern) >= 0)
            term_error_line(stderr, prefix, reply->error_code, reply->error_description);
        free(prefix);
        status = CLI_REMOTE;
    } else if (r == AMP_E_TIMEOUT) {
        fprintf(stderr, "amp-cli sub: amp.Subscribe timed out\n");
        status = CLI_TIMEOUT;
    } else if (r != AMP_OK) {
        fprintf(stderr, "amp-cli sub: amp.Subscribe: %s\n", amp_strerror(r));
        status = CLI_CONN;
    }
    amp_reply_free(reply);
    return status;
}

/* Wait for events until --count, --timeout, a signal or the end of the
 * connection. Signals are blocked except inside ppoll(), so one arriving
 * between the check and the wait still ends the wait. */
static int wait_events(amp_client *cl, struct sub_state *st, double timeout,
                       const sigset_t *waitmask)
{
    double deadline = timeout > 0 ? now() + timeout : 0;
    for (;;) {
        if (st->write_errno) {
            if (st->write_errno != EPIPE) /* no reader: nothing to say, as most tools */
                fprintf(stderr, "amp-cli sub: writing to stdout: %s\n",
                        strerror(st->write_errno));
            return CLI_IO;
        }
        if (stop_signal || (st->count && st->seen >= st->count))
            return CLI_OK;
        if (!amp_client_conn(cl)) {
            const char *why = amp_client_error_text(cl);
            term_printf(stderr, "amp-cli sub: connection lost%s%s\n", *why ? ": " : "", why);
            return CLI_CONN;
        }
        double wait = amp_client_timeout(cl);
        if (deadline) {
            double left = deadline - now();
            if (left <= 0) {
                if (st->count ? st->seen < st->count : st->seen == 0) {
                    fprintf(stderr, "amp-cli sub: %ld event(s) in %g s\n", st->seen, timeout);
                    return CLI_TIMEOUT;
                }
                return CLI_OK;
            }
            if (wait < 0 || left < wait)
                wait = left;
        }
        struct pollfd pfd = {amp_client_fd(cl), POLLIN, 0};
        struct timespec ts, *tsp = NULL;
        if (wait >= 0) {
            ts.tv_sec = (time_t)wait;
            ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
            tsp = &ts;
        }
        if (ppoll(&pfd, 1, tsp, waitmask) < 0 && errno != EINTR) {
            perror("amp-cli sub: poll");
            return CLI_IO;
        }
        amp_client_step(cl);
    }
}

int cmd_sub(int argc, char **argv)
{
    static const struct option opts[] = {
        {"count", required_argument, 0, 'n'}, {"timeout", required_argument, 0, 't'},
        {"json", no_argument, 0, 'j'},        {"help", no_argument, 0, 'h'},
        CONN_OPTS_LONG,
        {0, 0, 0, 0},
    };
    conn_opts co;
    conn_opts_init(&co);
    struct sub_state st = {0, 0, OUTPUT_JSON, 0};
    double timeout = 0;
    int c, json = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (conn_opts_handle(&co, c, optarg))
            continue;
        switch (c) {
        case 'n':
            if (cli_positive_count("sub", "count", optarg, &st.count))
                return CLI_USAGE;
            break;
        case 't':
            if (cli_positive("sub", "timeout", optarg, &timeout))
                return CLI_USAGE;
            break;
        case 'j': json = 1; break;
        case 'h': sub_usage(stdout); return CLI_OK;
        default: sub_usage(stderr); return CLI_USAGE;
        }
    }
    if (optind >= argc) {
        sub_usage(stderr);
        return CLI_USAGE;
    }
    st.mode = output_pick(json);
    signal(SIGPIPE, SIG_IGN);
    sigset_t stops, waitmask;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigprocmask(SIG_BLOCK, &stops, &waitmask);
    sigdelset(&waitmask, SIGINT);
    sigdelset(&waitmask, SIGTERM);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    amp_client *cl;
    int status = conn_opts_connect(&co, NULL, "sub", &cl);
    if (status != CLI_OK)
        return status;
    amp_session_serve_fallback(amp_conn_session(amp_client_conn(cl)), on_event, &st);
    for (int i = optind; i < argc && status == CLI_OK; i++)
        status = subscribe(cl, argv[i], co.timeout);
    if (status == CLI_OK) {
        /* for scripts: events published from now on arrive */
        fprintf(stderr, "amp-cli sub: subscribed (%d pattern(s))\n", argc - optind);
        status = wait_events(cl, &st, timeout, &waitmask);
    }
    amp_client_free(cl);
    return status;
}
