/* amp-cli shell: what each line does (shell.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"
#include "json_text.h"
#include "shell.h"
#include "shell_words.h"
#include "typed_args.h"

static const char shell_lines_help[] =
    "  COMMAND [ARG]...       call COMMAND (also: call COMMAND [ARG]...)\n"
    "  pub NAME [ARG]...      publish the event NAME\n"
    "  sub PATTERN...         subscribe; events print as they arrive\n"
    "  sub                    list the subscriptions\n"
    "  unsub PATTERN          end a subscription\n"
    "  commands               the bus's commands with their signatures\n"
    "  help [COMMAND]         this text, or COMMAND's signature\n"
    "  quit, exit, Ctrl-D     leave\n"
    "ARG: name=value or name:type=value (types as in 'amp-cli call --help'); with\n"
    "a signature, name=value takes the declared type. Quote with '...' or \"...\".\n";

/* A remote error or a failed call, on stderr. */
static void report(shell *sh, const char *what, amp_err r, const amp_reply *reply)
{
    if (r == AMP_E_REMOTE)
        fprintf(stderr, "%.*s: %.*s\n", (int)reply->error_code->value_len,
                reply->error_code->value, (int)reply->error_description->value_len,
                reply->error_description->value);
    else if (r == AMP_E_TIMEOUT)
        fprintf(stderr, "amp-cli shell: %s timed out after %g s\n", what, sh->co.timeout);
    else if (r == AMP_E_CANCELLED)
        fprintf(stderr, "amp-cli shell: %s: interrupted (a late answer is dropped)\n", what);
    else
        fprintf(stderr, "amp-cli shell: %s: %s%s%s\n", what, amp_strerror(r),
                *amp_client_error_text(sh->cl) ? ": " : "", amp_client_error_text(sh->cl));
}

/* A call with one Unicode argument (amp.Subscribe, amp.Unsubscribe). */
static int call1(shell *sh, const char *command, const char *key, const char *value)
{
    amp_pair p = {(const uint8_t *)key, strlen(key), (const uint8_t *)value, strlen(value)};
    amp_reply *reply = NULL;
    amp_err r = shell_call(sh, command, &p, 1, &reply);
    if (r != AMP_OK)
        report(sh, command, r, reply);
    amp_reply_free(reply);
    return r == AMP_OK ? 0 : -1;
}

static void do_call(shell *sh, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "amp-cli shell: call needs a COMMAND\n");
        return;
    }
    char err[512];
    typed_args args;
    if (typed_args_parse(&args, argc - 1, argv + 1, err, sizeof err) ||
        typed_args_send_fds(&args, amp_client_conn(sh->cl), err, sizeof err)) {
        fprintf(stderr, "amp-cli shell: %s\n", err);
        typed_args_free(&args);
        return;
    }
    amp_reply *reply = NULL;
    amp_err r = shell_call(sh, argv[0], args.pairs, args.count, &reply);
    if (r == AMP_OK) {
        amp_pair *keep = malloc((reply->box.count + 1) * sizeof *keep);
        size_t k = 0;
        for (size_t i = 0; keep && i < reply->box.count; i++)
            if (!(reply->box.pairs[i].key_len == 7 &&
                  !memcmp(reply->box.pairs[i].key, "_answer", 7)))
                keep[k++] = reply->box.pairs[i];
        amp_box shown = {keep, k, 0};
        json_write_box(stdout, &shown);
        putchar('\n');
        fflush(stdout);
        free(keep);
    } else {
        report(sh, argv[0], r, reply);
    }
    amp_reply_free(reply);
    typed_args_free(&args);
}

static void do_pub(shell *sh, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "amp-cli shell: pub needs an event NAME\n");
        return;
    }
    char err[512];
    typed_args args;
    if (typed_args_parse(&args, argc - 1, argv + 1, err, sizeof err)) {
        fprintf(stderr, "amp-cli shell: %s\n", err);
    } else {
        amp_err r = amp_conn_send(amp_client_conn(sh->cl), argv[0], args.pairs, args.count);
        if (r != AMP_OK)
            fprintf(stderr, "amp-cli shell: pub %s: %s\n", argv[0], amp_strerror(r));
        amp_client_step(sh->cl); /* on its way now rather than at the next wait */
    }
    typed_args_free(&args);
}

static int find_sub(const shell *sh, const char *pattern)
{
    for (size_t i = 0; i < sh->nsubs; i++)
        if (!strcmp(sh->subs[i], pattern))
            return (int)i;
    return -1;
}

static void do_sub(shell *sh, int argc, char **argv)
{
    if (argc == 0) {
        for (size_t i = 0; i < sh->nsubs; i++)
            printf("%s\n", sh->subs[i]);
        fflush(stdout);
        return;
    }
    for (int i = 0; i < argc; i++) {
        if (call1(sh, "amp.Subscribe", "pattern", argv[i]) != 0 || find_sub(sh, argv[i]) >= 0)
            continue;
        if (sh->nsubs == SHELL_SUBS_MAX)
            continue; /* subscribed all the same; only not listed */
        char **subs = realloc(sh->subs, (sh->nsubs + 1) * sizeof *subs);
        char *copy = strdup(argv[i]);
        if (subs)
            sh->subs = subs;
        if (!subs || !copy) {
            free(copy);
            continue;
        }
        sh->subs[sh->nsubs++] = copy;
    }
}

static void do_unsub(shell *sh, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "amp-cli shell: unsub needs a PATTERN\n");
        return;
    }
    for (int i = 0; i < argc; i++) {
        if (call1(sh, "amp.Unsubscribe", "pattern", argv[i]) != 0)
            continue;
        int at = find_sub(sh, argv[i]);
        if (at >= 0) {
            free(sh->subs[at]);
            sh->subs[at] = sh->subs[--sh->nsubs];
        }
    }
}

/* A command as 'commands' and 'help' show it: its signature, else its name. */
static void print_cmd(const shell_cmd *c)
{
    printf("%s\n", c->notation ? c->notation : c->name);
}

static int refresh(shell *sh)
{
    char err[256];
    if (shell_cmds_refresh(&sh->cmds, sh->cl, sh->co.timeout, err, sizeof err) != AMP_OK) {
        fprintf(stderr, "amp-cli shell: %s\n", err);
        return -1;
    }
    return 0;
}

static void do_commands(shell *sh)
{
    if (refresh(sh) != 0)
        return;
    for (size_t i = 0; i < sh->cmds.count; i++)
        print_cmd(&sh->cmds.items[i]);
    fflush(stdout);
}

static void do_help(shell *sh, int argc, char **argv)
{
    if (argc == 0) {
        printf("lines:\n%s", shell_lines_help);
        if (refresh(sh) == 0 && sh->cmds.count) {
            printf("commands on the bus:\n");
            for (size_t i = 0; i < sh->cmds.count; i++) {
                printf("  ");
                print_cmd(&sh->cmds.items[i]);
            }
        }
        fflush(stdout);
        return;
    }
    for (int i = 0; i < argc; i++) {
        const shell_cmd *c = shell_cmds_find(&sh->cmds, argv[i]);
        if (!c && refresh(sh) == 0)
            c = shell_cmds_find(&sh->cmds, argv[i]);
        if (c)
            print_cmd(c);
        else
            fprintf(stderr, "amp-cli shell: help: no command '%s' on the bus\n", argv[i]);
    }
    fflush(stdout);
}

int shell_run_line(shell *sh, const char *line)
{
    char err[128];
    shell_words w;
    if (shell_words_split(line, strlen(line), 0, &w, err, sizeof err) != 0) {
        fprintf(stderr, "amp-cli shell: %s\n", err);
        return 0;
    }
    int quit = 0;
    char **v = w.argv;
    if (!amp_client_conn(sh->cl))
        quit = 1; /* lost while earlier lines ran: the caller says so */
    else if (w.count == 0 || v[0][0] == '#')
        ; /* blank lines and comments (scripts) */
    else if (!strcmp(v[0], "quit") || !strcmp(v[0], "exit"))
        quit = 1;
    else if (!strcmp(v[0], "help"))
        do_help(sh, w.count - 1, v + 1);
    else if (!strcmp(v[0], "commands"))
        do_commands(sh);
    else if (!strcmp(v[0], "pub"))
        do_pub(sh, w.count - 1, v + 1);
    else if (!strcmp(v[0], "sub"))
        do_sub(sh, w.count - 1, v + 1);
    else if (!strcmp(v[0], "unsub"))
        do_unsub(sh, w.count - 1, v + 1);
    else if (!strcmp(v[0], "call"))
        do_call(sh, w.count - 1, v + 1);
    else
        do_call(sh, w.count, v);
    shell_words_free(&w);
    return quit;
}

void shell_lines_free(shell *sh)
{
    for (size_t i = 0; i < sh->nsubs; i++)
        free(sh->subs[i]);
    free(sh->subs);
    sh->subs = NULL;
    sh->nsubs = 0;
    shell_cmds_free(&sh->cmds);
}
