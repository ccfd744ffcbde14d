/* amp-cli pub: publish events through a broker. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amp/amp.h"
#include "cli.h"
#include "term_text.h"
#include "conn_opts.h"
#include "typed_args.h"

static void pub_usage(FILE *out)
{
    fprintf(out,
            "usage: amp-cli pub [OPTIONS] NAME [ARG]...\n"
            "\n"
            "Publish the event NAME with the arguments (a call without _ask: the\n"
            "broker hands it to every subscriber whose pattern matches NAME), then\n"
            "wait for the broker to answer an amp.Stats call, so that every event\n"
            "has been read by the broker before exiting.\n"
            "\n"
            "arguments:\n%s"
            "options:\n"
            "  --count N           publish the event N times (default 1)\n"
            "  --rate R            at most R events per second (default: as fast as\n"
            "                      the connection takes them)\n"
            "  --timeout SECONDS   give up on the connection (default 30)\n"
            "%s"
            "exit status: 0 published; 5 connection failed or lost; 6 timed out;\n"
            "7 the login was refused; 2 usage error; 1 a bad argument\n",
            typed_args_help, conn_opts_help);
}

/* Sleep until `t` (monotonic), letting the connection write meanwhile. */
static void pace(amp_client *cl, const struct timespec *t)
{
    amp_client_step(cl);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL))
        ;
}

/* The broker answers calls in order: once amp.Stats is answered, every
 * event sent before it has been read (an error answer, e.g. from an ACL
 * that denies amp.Stats, proves the same). */
static int barrier(amp_client *cl, double timeout)
{
    amp_reply *reply = NULL;
    amp_err r = amp_client_call(cl, "amp.Stats", NULL, 0, timeout, &reply);
    amp_reply_free(reply);
    if (r == AMP_OK || r == AMP_E_REMOTE)
        return CLI_OK;
    term_printf(stderr, "amp-cli pub: %s%s%s\n", amp_strerror(r),
            *amp_client_error_text(cl) ? ": " : "", amp_client_error_text(cl));
    return r == AMP_E_TIMEOUT ? CLI_TIMEOUT : CLI_CONN;
}

int cmd_pub(int argc, char **argv)
{
    static const struct option opts[] = {
        {"count", required_argument, 0, 'n'},   {"rate", required_argument, 0, 'r'},
        {"timeout", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
        CONN_OPTS_LONG,                         {0, 0, 0, 0},
    };
    conn_opts co;
    conn_opts_init(&co);
    long count = 1;
    double rate = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (conn_opts_handle(&co, c, optarg))
            continue;
        switch (c) {
        case 'n':
            if (cli_positive_count("pub", "count", optarg, &count))
                return CLI_USAGE;
            break;
        case 'r':
            if (cli_positive("pub", "rate", optarg, &rate))
                return CLI_USAGE;
            break;
        case 't':
            if (cli_positive("pub", "timeout", optarg, &co.timeout))
                return CLI_USAGE;
            break;
        case 'h': pub_usage(stdout); return CLI_OK;
        default: pub_usage(stderr); return CLI_USAGE;
        }
    }
    if (optind >= argc) {
        pub_usage(stderr);
        return CLI_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    const char *name = argv[optind];
    char err[512];
    typed_args args;
    if (typed_args_parse(&args, argc - optind - 1, argv + optind + 1, err, sizeof err)) {
        fprintf(stderr, "amp-cli pub: %s\n", err);
        typed_args_free(&args);
        return CLI_BAD_INPUT;
    }
    amp_client *cl;
    int status = conn_opts_connect(&co, NULL, "pub", &cl);
    if (status != CLI_OK) {
        typed_args_free(&args);
        return status;
    }
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    /* the gap between events, at most a year (a tiny --rate must not
     * overflow the conversion) */
    double gap = rate > 0 ? 1e9 / rate : 0;
    long gap_ns = gap > 3.2e16 ? 32000000000000000L : (long)gap;
    for (long i = 0; i < count && status == CLI_OK; i++) {
        if (!amp_client_conn(cl)) {
            term_printf(stderr, "amp-cli pub: connection lost after %ld event(s): %s\n", i,
                    amp_client_error_text(cl));
            status = CLI_CONN;
            break;
        }
        amp_err r = amp_conn_send(amp_client_conn(cl), name, args.pairs, args.count);
        if (r != AMP_OK) {
            fprintf(stderr, "amp-cli pub: %s: %s\n", name, amp_strerror(r));
            status = CLI_CONN;
            break;
        }
        if (gap_ns) {
            next.tv_nsec += gap_ns % 1000000000L;
            next.tv_sec += gap_ns / 1000000000L + next.tv_nsec / 1000000000L;
            next.tv_nsec %= 1000000000L;
            pace(cl, &next);
        } else {
            amp_client_step(cl); /* write as we go rather than buffer them all */
        }
    }
    if (status == CLI_OK)
        status = barrier(cl, co.timeout);
    amp_client_free(cl);
    typed_args_free(&args);
    return status;
}
