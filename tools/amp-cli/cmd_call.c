/* amp-cli call: one call to a peer; the answer as JSON. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"
#include "cli.h"
#include "json_text.h"
#include "typed_args.h"

static void call_usage(FILE *out)
{
    fprintf(out,
            "usage: amp-cli call [OPTIONS] ENDPOINT COMMAND [ARG]...\n"
            "\n"
            "Connect to ENDPOINT, call COMMAND with the arguments, print the answer as\n"
            "one JSON object (the response keys, as 'amp-cli decode' prints them).\n"
            "\n"
            "endpoints: tcp:HOST:PORT, tcp:host=HOST:port=PORT, unix:PATH,\n"
            "           ssl:host=HOST:port=PORT[:caCerts=CA.pem][:certKey=C.pem:privateKey=K.pem]\n"
            "arguments:\n%s"
            "options:\n"
            "  --timeout SECONDS   give up on the connection and the call (default 30)\n"
            "  --no-answer         send the call without _ask and exit\n"
            "  --starttls          StartTLS before the call; with --ca, --hostname,\n"
            "                      --cert, --key for the TLS settings. The server's\n"
            "                      certificate must chain to --ca (else the system's\n"
            "                      CAs) and name --hostname (else the host connected to)\n"
            "  --insecure          accept any server certificate for any name (StartTLS\n"
            "                      and ssl: endpoints): anyone on the path can read and\n"
            "                      change the connection. Prints a warning\n"
            "exit status: 0 answered; 4 the peer answered with an error (code and\n"
            "description on stderr); 5 connection failed or lost; 6 timed out;\n"
            "2 usage error; 1 a bad argument\n",
            typed_args_help);
}

int cmd_call(int argc, char **argv)
{
    static const struct option opts[] = {
        {"timeout", required_argument, 0, 't'}, {"no-answer", no_argument, 0, 'n'},
        {"starttls", no_argument, 0, 's'},      {"ca", required_argument, 0, 'a'},
        {"hostname", required_argument, 0, 'H'}, {"cert", required_argument, 0, 'c'},
        {"key", required_argument, 0, 'k'},     {"help", no_argument, 0, 'h'},
        {"insecure", no_argument, 0, 'I'},      {0, 0, 0, 0},
    };
    double timeout = 30;
    int no_answer = 0, starttls = 0, insecure = 0, c;
    amp_tls_config tls;
    memset(&tls, 0, sizeof tls); /* verifies the server's certificate and name */
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            timeout = atof(optarg);
            if (timeout <= 0) {
                fprintf(stderr, "amp-cli call: --timeout needs a positive number\n");
                return CLI_USAGE;
            }
            break;
        case 'n': no_answer = 1; break;
        case 's': starttls = 1; break;
        case 'a': tls.ca_file = optarg; break;
        case 'H': tls.hostname = optarg; break;
        case 'c': tls.cert = optarg; break;
        case 'k': tls.private_key = optarg; break;
        case 'I': insecure = 1; break;
        case 'h': call_usage(stdout); return CLI_OK;
        default: call_usage(stderr); return CLI_USAGE;
        }
    }
    if (argc - optind < 2) {
        call_usage(stderr);
        return CLI_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    const char *endpoint = argv[optind], *command = argv[optind + 1];
    char err[512];
    typed_args args;
    if (typed_args_parse(&args, argc - optind - 2, argv + optind + 2, err, sizeof err)) {
        fprintf(stderr, "amp-cli call: %s\n", err);
        typed_args_free(&args);
        return CLI_BAD_INPUT;
    }
    amp_endpoint ep;
    amp_err r = amp_endpoint_parse(endpoint, 0, &ep, err, sizeof err);
    if (r != AMP_OK) {
        fprintf(stderr, "amp-cli call: %s\n", err);
        typed_args_free(&args);
        return CLI_USAGE;
    }
    if (insecure) {
        fprintf(stderr, "amp-cli call: WARNING: --insecure: the server's certificate and name "
                        "are not checked; anyone on the path can read and change this "
                        "connection\n");
        tls.insecure_skip_verify = 1;
        ep.tls.insecure_skip_verify = 1;
    }
    amp_client *cl;
    r = amp_client_connect_endpoint(&cl, &ep, timeout, err, sizeof err);
    amp_endpoint_free(&ep);
    if (r != AMP_OK) {
        fprintf(stderr, "amp-cli call: %s\n", err);
        typed_args_free(&args);
        return r == AMP_E_ENDPOINT ? CLI_USAGE : r == AMP_E_TIMEOUT ? CLI_TIMEOUT : CLI_CONN;
    }
    int status = CLI_OK;
    if (starttls) {
        r = amp_client_start_tls(cl, &tls, timeout);
        if (r != AMP_OK) {
            const char *why = amp_client_error_text(cl);
            fprintf(stderr, "amp-cli call: StartTLS failed: %s\n", *why ? why : amp_strerror(r));
            status = r == AMP_E_TIMEOUT ? CLI_TIMEOUT : CLI_CONN;
            goto out;
        }
    }
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
