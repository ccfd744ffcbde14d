/* amp-cli call: one call to a peer; the answer as JSON. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"
#include "cli.h"
#include "conn_opts.h"
#include "call_run.h"
#include "typed_args.h"

static void call_usage(FILE *out)
{
    fprintf(out,
            "usage: amp-cli call [OPTIONS] [ENDPOINT] COMMAND [ARG]...\n"
            "\n"
            "Connect to ENDPOINT (else --server, else $AMP_URL), call COMMAND with the\n"
            "arguments, print the answer: as one JSON object (the response keys) when\n"
            "stdout is not a terminal or with --json, else as 'key = value' lines.\n"
            "Without --server, a first argument with a ':' before any '=' is the\n"
            "ENDPOINT.\n"
            "\n"
            "First asks the peer for COMMAND's signature (amp.Commands command=NAME;\n"
            "a peer that is not a broker has none). With one, name=value takes the\n"
            "argument's declared type (an explicit name:type=value wins), an unknown\n"
            "or a missing required argument is an error (exit 1), and the answer is\n"
            "typed JSON (numbers as numbers); without one, values are strings.\n"
            "\n"
            "arguments:\n%s"
            "options:\n"
            "  --timeout SECONDS   give up on the connection and the call (default 30)\n"
            "  --no-answer         send the call without _ask and exit (no signature)\n"
            "  --json              JSON even when stdout is a terminal\n"
            "  --no-signature      do not ask for the signature: values as typed here\n"
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
        {"json", no_argument, 0, 'j'},          {"no-signature", no_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},          CONN_OPTS_LONG,
        {0, 0, 0, 0},
    };
    conn_opts co;
    conn_opts_init(&co);
    int no_answer = 0, json = 0, no_signature = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (conn_opts_handle(&co, c, optarg))
            continue;
        switch (c) {
        case 't':
            if (cli_positive("call", "timeout", optarg, &co.timeout))
                return CLI_USAGE;
            break;
        case 'n': no_answer = 1; break;
        case 'j': json = 1; break;
        case 'S': no_signature = 1; break;
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
    signal(SIGPIPE, SIG_IGN);
    call_opts o = {"call", argv[optind], argc - optind - 1, argv + optind + 1, co.timeout,
                   no_signature, no_answer, output_pick(json)};
    /* malformed arguments are refused before connecting */
    char err[512];
    typed_args args;
    int bad = typed_args_parse(&args, o.argc, o.argv, err, sizeof err);
    typed_args_free(&args);
    if (bad) {
        fprintf(stderr, "amp-cli call: %s\n", err);
        return CLI_BAD_INPUT;
    }
    amp_client *cl;
    int status = conn_opts_connect(&co, endpoint, "call", &cl);
    if (status != CLI_OK)
        return status;
    status = call_run(cl, &o);
    amp_client_free(cl);
    return status;
}
