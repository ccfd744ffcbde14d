/* amp-cli: ad hoc AMP commands. */
#include <stdio.h>
#include <string.h>

#include "amp/amp.h"
#include "cli.h"

static const struct verb {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} verbs[] = {
    {"decode", cmd_decode, "print a raw AMP byte stream as JSON lines, one box per line"},
    {"encode", cmd_encode, "write JSON lines as the exact AMP bytes"},
    {"call", cmd_call, "call a command on a peer and print the answer"},
    {"listen", cmd_listen, "accept connections, print every box, answer calls"},
    {"sub", cmd_sub, "subscribe through a broker, print each event as a JSON line"},
    {"pub", cmd_pub, "publish events through a broker"},
    {"serve", cmd_serve, "provide commands through a broker: fixed answers or a program"},
    {"shell", cmd_shell, "an interactive prompt on the bus: calls, pub, sub, help"},
    {"commands", cmd_commands, "the broker's commands with their signatures"},
    {"stats", cmd_stats, "the broker's counters"},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: amp-cli [--version] [--help] VERB [ARGS]\n"
            "\n"
            "Ad hoc tools for AMP, the Asynchronous Messaging Protocol.\n"
            "\n"
            "verbs:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(out, "  %-9s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(out,
            "\n"
            "'amp-cli VERB --help' describes a verb.\n"
            "exit status: 0 success, 1 malformed input, 2 usage error, 3 I/O error,\n"
            "4 the peer answered with an error, 5 connection failed, 6 timed out (or too\n"
            "few events), 7 the broker refused the login\n"
            "environment: AMP_URL the default endpoint; AMP_PASSWORD, AMP_TOKEN the\n"
            "login's secret (see 'amp-cli call --help')\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("amp-cli %s (libamp %s)\n", AMP_VERSION_STRING, amp_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(argv[1], verbs[i].name))
            return verbs[i].run(argc - 1, argv + 1);
    fprintf(stderr, "amp-cli: unknown verb '%s' (try 'amp-cli --help')\n", argv[1]);
    return CLI_USAGE;
}
