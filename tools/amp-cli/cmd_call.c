/* amp-cli call: one call to a peer; the answer as JSON. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"
#include "cli.h"
#include "conn_opts.h"
#include "json_text.h"
#include "typed_args.h"

static void call_usage(FILE *out)
{
    fprintf(out,
            "usage: amp-cli call [OPTIONS] [ENDPOINT] COMMAND [ARG]...\n"
            "\n"
            "Connect to ENDPOINT (else --server, else $AMP_URL), call COMMAND with the\n"
            "arguments, print the answer as one JSON object (the response keys, as\n"
            "'amp-cli decode' prints them). Without --server, a first argument with a\n"
            "':' before any '=' is the ENDPOINT.\n"
            "\n"
            "arguments:\n%s"
            "options:\n"
            "  --timeout SECONDS   give up on the connection and the call (default 30)\n"
            "  --no-answer         send the call without _ask and exit\n"
            "%s"
            "exit status: 0 answered; 4 the peer answered with an error (code and\n"
            "description on stderr); 5 connection failed or lost; 6 timed out;\n"
            "7 the login was refused; 2 usage error; 1 a bad argument\n",
            typed_args_help, conn_opts_help);
}

int cmd_call(int argc, char **argv)
{
    static const struct option opts[] = {
        {"timeout", required_argument, 0, 't'}, {"no-answer", no_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},          CONN_OPTS_LONG,
        {0, 0, 0, 0},
    };
    conn_opts co;
    conn_opts_init(&co);
    int no_answer = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (conn_opts_handle(&co, c, optarg))
            continue;
        switch (c) {
        case 't':
            co.timeout = atof(optarg);
            if (co.timeout <= 0) {
                fprintf(stderr, "amp-cli call: --timeout needs a positive number\n");
                return CLI_USAGE;
            }
            break;
        case 'n': no_answer = 1; break;
        case 'h': call_usage(stdout); return CLI_OK;
        default: call_usage(stderr); return CLI_USAGE;
        }
    }
    /* the positional ENDPOINT, as before --server and AMP_URL */
    const char *endpoint = NULL;
    if (optind < argc && (!co.server || (!co.server_given &&
                                         conn_opts_looks_like_endpoint(argv[optind]))))
        endpoint = argv[optind++];
    if (argc - optind < 1 || (!endpoint && !co.server)) {
        call_usage(stderr);
        return CLI_USAGE;
    }
    double timeout = co.timeout;
    signal(SIGPIPE, SIG_IGN);
    const char *command = argv[optind];
    char err[512];
    typed_args args;
    if (typed_args_parse(&args, argc - optind - 1, argv + optind + 1, err, sizeof err)) {
        fprintf(stderr, "amp-cli call: %s\n", err);
        typed_args_free(&args);
        return CLI_BAD_INPUT;
    }
    amp_client *cl;
    int status = conn_opts_connect(&co, endpoint, "call", &cl);
    if (status != CLI_OK) {
        typed_args_free(&args);
        return status;
    }
    amp_err r;
    if (typed_args_send_fds(&args, amp_client_conn(cl), err, sizeof err)) {
        fprintf(stderr, "amp-cli call: %s\n", err);
        status = CLI_BAD_INPUT;
        goto out;
    }
    if (no_answer) {
        r = amp_conn_send(amp_client_conn(cl), command, args.pairs, args.count);
        if (r == AMP_OK) { /* write it before closing */
            amp_conn_close(amp_client_conn(cl));
            while (amp_client_conn(cl))
                amp_client_step(cl);
        }
        if (r != AMP_OK) {
            fprintf(stderr, "amp-cli call: %s\n", amp_strerror(r));
            status = CLI_CONN;
        }
        goto out;
    }
    amp_reply *reply = NULL;
    r = amp_client_call(cl, command, args.pairs, args.count, timeout, &reply);
    if (r == AMP_OK) {
        /* the response keys, without _answer */
        amp_pair *keep = malloc((reply->box.count + 1) * sizeof *keep);
        size_t k = 0;
        for (size_t i = 0; i < reply->box.count; i++)
            if (!(reply->box.pairs[i].key_len == 7 &&
                  !memcmp(reply->box.pairs[i].key, "_answer", 7)))
                keep[k++] = reply->box.pairs[i];
        amp_box shown = {keep, k, 0};
        json_write_box(stdout, &shown);
        putchar('\n');
        free(keep);
    } else if (r == AMP_E_REMOTE) {
        fprintf(stderr, "%.*s: %.*s\n", (int)reply->error_code->value_len,
                reply->error_code->value, (int)reply->error_description->value_len,
                reply->error_description->value);
        status = CLI_REMOTE;
    } else if (r == AMP_E_TIMEOUT) {
        fprintf(stderr, "amp-cli call: %s timed out after %g s\n", command, timeout);
        status = CLI_TIMEOUT;
    } else {
        fprintf(stderr, "amp-cli call: %s: %s%s%s\n", command, amp_strerror(r),
                *amp_client_error_text(cl) ? ": " : "", amp_client_error_text(cl));
        status = r == AMP_E_CLOSED ? CLI_CONN : CLI_BAD_INPUT;
    }
    amp_reply_free(reply);
out:
    amp_client_free(cl);
    typed_args_free(&args);
    return status;
}
