/* amp-cli listen: accept connections, print every call, answer as told. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"
#include "cli.h"
#include "term_text.h"
#include "output.h"
#include "typed_args.h"

struct listen_opts {
    typed_args answer;
    const char *error_code, *error_description;
    int fatal;
    long count, seen;
    amp_tls_config starttls;
    int serve_starttls;
    output_mode mode;
    struct ev_loop *loop;
    int write_errno; /* stdout failed (its reader went away): we are done */
};

static void listen_usage(FILE *out)
{
    fprintf(out,
            "usage: amp-cli listen [OPTIONS] ENDPOINT\n"
            "\n"
            "Accept connections on ENDPOINT (tcp:PORT[:interface=ADDR], unix:PATH,\n"
            "ssl:PORT:privateKey=KEY.pem[:certKey=CERT.pem]) and print every call that\n"
            "arrives: as one JSON line (keys in wire order, as 'amp-cli decode' prints\n"
            "them) when stdout is not a terminal or with --json, else as\n"
            "'NAME  key=value...'. Calls with _ask are answered: with an empty answer\n"
            "by default.\n"
            "The port actually bound is printed on stderr (useful with tcp:0).\n"
            "\n"
            "options:\n"
            "  --answer NAME[:TYPE]=VALUE   add this key to every answer (repeatable;\n"
            "                               types as for 'amp-cli call')\n"
            "  --error CODE[:DESCRIPTION]   answer every call with this error instead\n"
            "  --fatal                      ... and close the connection after it\n"
            "  --count N                    exit after N calls (not counting the\n"
            "                               amp.Commands look-up 'amp-cli call'\n"
            "                               sends first)\n"
            "  --json                       JSON lines even on a terminal\n"
            "  --starttls-cert FILE, --starttls-key FILE\n"
            "                               answer StartTLS and switch to TLS\n"
            "exit status: 0 --count calls, or stopped by SIGINT/SIGTERM; 3 the\n"
            "endpoint cannot be opened, or writing to stdout failed (its reader went\n"
            "away); 2 usage error\n");
}

static void on_call(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    struct listen_opts *o = ud;
    output_box_line(stdout, o->mode, args); /* flushes */
    if (ferror(stdout) && !o->write_errno) {
        o->write_errno = errno ? errno : EIO;
        ev_break(o->loop, EVBREAK_ALL);
    }
    if (o->error_code)
        amp_request_error(req, o->error_code, o->error_description, o->fatal);
    else
        amp_request_answer(req, o->answer.pairs, o->answer.count);
    /* 'amp-cli call' asks for a signature first: that look-up is shown and
     * answered, but --count counts the calls a user made */
    const amp_pair *cmd = amp_box_find_str(args, "_command");
    if (cmd && cmd->value_len == 12 && !memcmp(cmd->value, "amp.Commands", 12))
        return;
    if (o->count && ++o->seen >= o->count)
        ev_break(o->loop, EVBREAK_ALL);
}

static void on_accept(amp_listener *l, amp_conn *c, void *ud)
{
    struct listen_opts *o = ud;
    amp_session_serve_fallback(amp_conn_session(c), on_call, o);
    if (o->serve_starttls && amp_conn_serve_start_tls(c, &o->starttls) != AMP_OK)
        term_printf(stderr, "amp-cli listen: StartTLS setup failed: %s\n", amp_conn_error_text(c));
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

int cmd_listen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"answer", required_argument, 0, 'a'},        {"error", required_argument, 0, 'e'},
        {"fatal", no_argument, 0, 'f'},               {"count", required_argument, 0, 'n'},
        {"starttls-cert", required_argument, 0, 'C'}, {"starttls-key", required_argument, 0, 'K'},
        {"json", no_argument, 0, 'j'},                {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    struct listen_opts o;
    memset(&o, 0, sizeof o);
    char **answers = calloc((size_t)argc + 1, sizeof *answers);
    int nanswers = 0, c;
    char *error_spec = NULL;
    int json = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a': answers[nanswers++] = optarg; break;
        case 'e': error_spec = optarg; break;
        case 'f': o.fatal = 1; break;
        case 'n': o.count = atol(optarg); break;
        case 'C': o.starttls.cert = optarg; o.serve_starttls = 1; break;
        case 'K': o.starttls.private_key = optarg; o.serve_starttls = 1; break;
        case 'j': json = 1; break;
        case 'h': listen_usage(stdout); free(answers); return CLI_OK;
        default: listen_usage(stderr); free(answers); return CLI_USAGE;
        }
    }
    if (argc - optind != 1) {
        listen_usage(stderr);
        free(answers);
        return CLI_USAGE;
    }
    char err[512];
    if (typed_args_parse(&o.answer, nanswers, answers, err, sizeof err)) {
        fprintf(stderr, "amp-cli listen: --answer %s\n", err);
        typed_args_free(&o.answer);
        free(answers);
        return CLI_USAGE;
    }
    if (error_spec) {
        char *colon = strchr(error_spec, ':');
        if (colon)
            *colon = 0;
        o.error_code = error_spec;
        o.error_description = colon ? colon + 1 : "";
    }
    o.mode = output_pick(json);
    signal(SIGPIPE, SIG_IGN);
    o.loop = ev_default_loop(0);
    amp_listener *l;
    amp_err r = amp_listen(o.loop, argv[optind], NULL, on_accept, &o, &l, err, sizeof err);
    if (r != AMP_OK) {
        fprintf(stderr, "amp-cli listen: %s\n", err);
        typed_args_free(&o.answer);
        free(answers);
        return r == AMP_E_ENDPOINT ? CLI_USAGE : CLI_IO;
    }
    fprintf(stderr, "amp-cli listen: listening on %s (port %d)\n", argv[optind],
            amp_listener_port(l));
    ev_signal sigint, sigterm;
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_start(o.loop, &sigint);
    ev_signal_start(o.loop, &sigterm);
    ev_run(o.loop, 0);
    /* let the last answers go out */
    ev_run(o.loop, EVRUN_NOWAIT);
    amp_listener_free(l);
    typed_args_free(&o.answer);
    free(answers);
    if (o.write_errno) {
        if (o.write_errno != EPIPE) /* no reader: nothing to say, as most tools */
            fprintf(stderr, "amp-cli listen: writing to stdout: %s\n", strerror(o.write_errno));
        return CLI_IO;
    }
    return CLI_OK;
}
