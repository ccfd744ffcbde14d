/* amp-cli commands: the broker's command table (amp.Commands) with each
 * command's signature, as a table for a person or JSON lines. */
#include <fnmatch.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"
#include "commands_list.h"
#include "cli.h"
#include "conn_opts.h"
#include "json_text.h"
#include "output.h"
#include "signature.h"
#include "term_text.h"

static void commands_usage(FILE *out)
{
    fprintf(out,
            "usage: amp-cli commands [OPTIONS] [PATTERN]\n"
            "\n"
            "List the broker's commands (amp.Commands): name, policy, number of\n"
            "providers and signature, as in\n"
            "  Sum(a: Integer, b: Integer?) -> (total: Integer) ! ZERO_DIVISION\n"
            "('?' an optional argument, '->' the response, '!' the declared errors).\n"
            "PATTERN is a shell-style wildcard ('chat.*', 'S?m'); a name without\n"
            "wildcards asks the broker for that command only. A table when stdout is\n"
            "a terminal; else, or with --json, one JSON object per command:\n"
            "{\"command\", \"policy\", \"providers\" (a number), \"signature\": null or\n"
            "{\"notation\", \"arguments\": [{\"name\", \"type\", \"optional\"}],\n"
            "\"response\": [{\"name\", \"type\"}], \"errors\": [...]}}.\n"
            "The list is asked page by page (amp.Commands after=NAME) and read up to\n"
            "%d commands or %d pages; past that it is cut, said on stderr.\n"
            "\n"
            "options:\n"
            "  --json              JSON lines even on a terminal\n"
            "  --timeout SECONDS   give up on the connection and the call (default 30)\n"
            "%s"
            "exit status: 0 listed (also when nothing matched); 1 the answer was\n"
            "malformed; 4 the broker answered with an error (OVERLOADED: too busy\n"
            "listing commands now, try again later); 5 connection failed or lost;\n"
            "6 timed out; 7 the login was refused; 2 usage error\n",
            COMMANDS_MAX_ITEMS, COMMANDS_MAX_PAGES, conn_opts_help);
}

struct listing {
    const char *pattern; /* NULL: all */
    output_mode mode;
    out_table table;
};

static void write_str(const char *s)
{
    json_write_bytes(stdout, (const uint8_t *)s, strlen(s));
}

static void write_fields_json(const sig_field *f, size_t n, int with_optional)
{
    putchar('[');
    for (size_t i = 0; i < n; i++) {
        char *type = sig_type_string(f[i].type);
        fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
        write_str(f[i].name);
        fputs(",\"type\":", stdout);
        write_str(type ? type : "");
        if (with_optional)
            printf(",\"optional\":%s", f[i].optional ? "true" : "false");
        putchar('}');
        free(type);
    }
    putchar(']');
}

static void write_signature_json(const signature *s)
{
    if (!s->has_signature) {
        fputs("null", stdout);
        return;
    }
    char *notation = signature_format(s);
    fputs("{\"notation\":", stdout);
    write_str(notation ? notation : "");
    free(notation);
    fputs(",\"arguments\":", stdout);
    write_fields_json(s->args, s->nargs, 1);
    fputs(",\"response\":", stdout);
    write_fields_json(s->response, s->nresponse, 0);
    fputs(",\"errors\":[", stdout);
    for (size_t i = 0; i < s->nerrors; i++) {
        if (i)
            putchar(',');
        write_str(s->errors[i]);
    }
    fputs("]}", stdout);
}

/* The text of an item's key ("" when absent), NUL-terminated in buf. */
static const char *field(const amp_box *item, const char *key, char *buf, size_t n)
{
    const amp_pair *p = amp_box_find_str(item, key);
    size_t len = p ? (p->value_len < n - 1 ? p->value_len : n - 1) : 0;
    if (len)
        memcpy(buf, p->value, len);
    buf[len] = 0;
    return buf;
}

static int one_item(const amp_box *item, void *ud, char *err, size_t err_len)
{
    struct listing *l = ud;
    signature sig;
    if (signature_from_item(item, &sig, err, err_len))
        return -1;
    if (l->pattern && fnmatch(l->pattern, sig.command, 0) != 0) {
        signature_free(&sig);
        return 0;
    }
    char policy[64], providers[32];
    field(item, "policy", policy, sizeof policy);
    field(item, "providers", providers, sizeof providers);
    /* the name's own bytes (sig.command ends at a NUL) */
    const amp_pair *name = amp_box_find_str(item, "command");
    const uint8_t *nb = name ? name->value : (const uint8_t *)"";
    size_t nn = name ? name->value_len : 0;
    if (l->mode == OUTPUT_JSON) {
        fputs("{\"command\":", stdout);
        json_write_bytes(stdout, nb, nn);
        fputs(",\"policy\":", stdout);
        write_str(policy);
        fputs(",\"providers\":", stdout);
        const amp_pair *pv = amp_box_find_str(item, "providers");
        if (pv && amp_bigint_check(pv->value, pv->value_len) == AMP_OK)
            fputs(providers, stdout);
        else
            write_str(providers);
        fputs(",\"signature\":", stdout);
        write_signature_json(&sig);
        fputs("}\n", stdout);
    } else {
        char *tail = signature_format_tail(&sig);
        const char *shown = tail && *tail ? tail : "-";
        const uint8_t *row[] = {nb, (const uint8_t *)policy, (const uint8_t *)providers,
                                (const uint8_t *)shown};
        size_t lens[] = {nn, strlen(policy), strlen(providers), strlen(shown)};
        out_table_add_bytes(&l->table, row, lens); /* escaped there (output.h) */
        free(tail);
    }
    signature_free(&sig);
    return 0;
}

static int list_commands(amp_client *cl, const char *pattern, double timeout, output_mode mode)
{
    /* a plain name: the broker's filter (one request); else every page */
    int exact = pattern && !strpbrk(pattern, "*?[\\");
    struct listing l = {pattern, mode, {0}};
    out_table_init(&l.table, 4);
    const char *head[] = {"COMMAND", "POLICY", "PROVIDERS", "SIGNATURE"};
    out_table_add(&l.table, head);
    commands_info info;
    char err[1024];
    int status = commands_list(cl, exact ? pattern : NULL, timeout, one_item, &l, &info, err,
                               sizeof err);
    if (status == CLI_REMOTE) /* the broker's error, as call prints one */
        term_printf(stderr, "%s\n", err);
    else if (status != CLI_OK)
        term_printf(stderr, "amp-cli commands: %s\n", err);
    if (status == CLI_OK && mode == OUTPUT_TEXT) {
        if (l.table.nrows > 1)
            out_table_print(&l.table, stdout);
        else if (pattern) /* a bare header would read as a broken listing */
            term_printf(stdout, "no command matches '%s' (or none you may see)\n", pattern);
        else
            fputs("no commands on the bus (or none you may see)\n", stdout);
    }
    fflush(stdout);
    if (status == CLI_OK && info.cut)
        fprintf(stderr,
                "amp-cli commands: the list is cut after %zu commands in %zu pages (the "
                "broker has more; a PATTERN without wildcards asks for one)\n",
                info.items, info.pages);
    out_table_free(&l.table);
    return status;
}

int cmd_commands(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'}, {"timeout", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'}, CONN_OPTS_LONG,
        {0, 0, 0, 0},
    };
    conn_opts co;
    conn_opts_init(&co);
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (conn_opts_handle(&co, c, optarg))
            continue;
        switch (c) {
        case 'j': json = 1; break;
        case 't':
            if (cli_positive("commands", "timeout", optarg, &co.timeout))
                return CLI_USAGE;
            break;
        case 'h': commands_usage(stdout); return CLI_OK;
        default: commands_usage(stderr); return CLI_USAGE;
        }
    }
    if (argc - optind > 1) {
        commands_usage(stderr);
        return CLI_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    amp_client *cl;
    int status = conn_opts_connect(&co, NULL, "commands", &cl);
    if (status != CLI_OK)
        return status;
    status = list_commands(cl, optind < argc ? argv[optind] : NULL, co.timeout,
                           output_pick(json));
    amp_client_free(cl);
    return status;
}
