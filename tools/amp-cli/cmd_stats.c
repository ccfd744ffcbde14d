/* amp-cli stats: the broker's counters (amp.Stats), as a two-column table
 * for a person or one JSON object. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"
#include "call_run.h"
#include "cli.h"
#include "conn_opts.h"
#include "json_text.h"
#include "output.h"
#include "signature.h"

static void stats_usage(FILE *out)
{
    fprintf(out,
            "usage: amp-cli stats [OPTIONS]\n"
            "\n"
            "Print the broker's counters (amp.Stats): a two-column table (counter,\n"
            "value) when stdout is a terminal, then the error counts by code; else,\n"
            "or with --json, one JSON object: integers as numbers, \"errors\" as an\n"
            "object of code: count.\n"
            "\n"
            "options:\n"
            "  --json              JSON even on a terminal\n"
            "  --timeout SECONDS   give up on the connection and the call (default 30)\n"
            "%s"
            "exit status: 0 printed; 1 the answer was malformed; 4 the broker answered\n"
            "with an error; 5 connection failed or lost; 6 timed out; 7 the login was\n"
            "refused; 2 usage error\n",
            conn_opts_help);
}

static int is_int(const amp_pair *p)
{
    return amp_bigint_check(p->value, p->value_len) == AMP_OK;
}

/* A row of two byte strings, each cut at `cap` bytes (a peer's 64 KiB value
 * would make the table unreadable); the table escapes them (output.h). */
static void add_row(out_table *t, const uint8_t *a, size_t an, const uint8_t *b, size_t bn,
                    size_t cap)
{
    const uint8_t *cells[] = {a, b};
    size_t lens[] = {an < cap ? an : cap, bn < cap ? bn : cap};
    out_table_add_bytes(t, cells, lens);
}

struct errors_out {
    output_mode mode;
    out_table *table;
    int first;
};

static int one_error(const amp_box *e, void *ud)
{
    struct errors_out *o = ud;
    const amp_pair *code = amp_box_find_str(e, "code"), *count = amp_box_find_str(e, "count");
    if (!code || !count)
        return -1;
    if (o->mode == OUTPUT_JSON) {
        if (!o->first)
            putchar(',');
        json_write_bytes(stdout, code->value, code->value_len);
        putchar(':');
        if (is_int(count))
            fwrite(count->value, 1, count->value_len, stdout);
        else
            json_write_bytes(stdout, count->value, count->value_len);
    } else {
        add_row(o->table, code->value, code->value_len, count->value, count->value_len, 127);
    }
    o->first = 0;
    return 0;
}

static int print_stats(const amp_box *box, output_mode mode)
{
    out_table counters, errors;
    out_table_init(&counters, 2);
    out_table_init(&errors, 2);
    const char *head[] = {"COUNTER", "VALUE"}, *ehead[] = {"ERROR", "COUNT"};
    out_table_add(&counters, head);
    out_table_add(&errors, ehead);
    struct errors_out eo = {mode, &errors, 1};
    int status = CLI_OK, first = 1;
    if (mode == OUTPUT_JSON)
        putchar('{');
    for (size_t i = 0; i < box->count && status == CLI_OK; i++) {
        const amp_pair *p = &box->pairs[i];
        if (p->key_len && p->key[0] == '_')
            continue;
        int is_errors = p->key_len == 6 && !memcmp(p->key, "errors", 6);
        if (mode == OUTPUT_JSON) {
            fputs(first ? "" : ",", stdout);
            json_write_bytes(stdout, p->key, p->key_len);
            putchar(':');
        }
        first = 0;
        if (is_errors) {
            char err[128];
            if (mode == OUTPUT_JSON)
                putchar('{');
            if (amplist_foreach(p->value, p->value_len, one_error, &eo, err, sizeof err)) {
                fprintf(stderr, "amp-cli stats: a malformed 'errors' list\n");
                status = CLI_BAD_INPUT;
            }
            if (mode == OUTPUT_JSON)
                putchar('}');
        } else if (mode == OUTPUT_JSON) {
            if (is_int(p))
                fwrite(p->value, 1, p->value_len, stdout);
            else
                json_write_bytes(stdout, p->value, p->value_len);
        } else {
            add_row(&counters, p->key, p->key_len, p->value, p->value_len, 255);
        }
    }
    if (mode == OUTPUT_JSON) {
        fputs("}\n", stdout);
    } else if (status == CLI_OK) {
        out_table_print(&counters, stdout);
        if (errors.nrows > 1) {
            putchar('\n');
            out_table_print(&errors, stdout);
        }
    }
    fflush(stdout);
    out_table_free(&counters);
    out_table_free(&errors);
    return status;
}

int cmd_stats(int argc, char **argv)
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
            if (cli_positive("stats", "timeout", optarg, &co.timeout))
                return CLI_USAGE;
            break;
        case 'h': stats_usage(stdout); return CLI_OK;
        default: stats_usage(stderr); return CLI_USAGE;
        }
    }
    if (optind != argc) {
        stats_usage(stderr);
        return CLI_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    amp_client *cl;
    int status = conn_opts_connect(&co, NULL, "stats", &cl);
    if (status != CLI_OK)
        return status;
    amp_reply *reply;
    status = call_plain(cl, "stats", "amp.Stats", NULL, 0, co.timeout, &reply);
    if (status == CLI_OK)
        status = print_stats(&reply->box, output_pick(json));
    amp_reply_free(reply);
    amp_client_free(cl);
    return status;
}
