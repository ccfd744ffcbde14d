/* amp-cli shell: what each line does (shell.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"
#include "call_run.h"
#include "cli.h"
#include "shell.h"
#include "shell_words.h"
#include "term_text.h"
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

/* A call with one argument (amp.Subscribe, amp.Unsubscribe): 0 answered,
 * -1 after a message. */
static int call1(shell *sh, const char *command, const char *key, const char *value)
{
    amp_pair p = {(const uint8_t *)key, strlen(key), (const uint8_t *)value, strlen(value)};
    amp_reply *reply = NULL;
    shell_wait_begin(sh);
    int status = call_plain(sh->cl, "shell", command, &p, 1, sh->co.timeout, &reply);
    shell_wait_end(sh);
    amp_reply_free(reply);
    return status == CLI_OK ? 0 : -1;
}

/* A call as 'amp-cli call' makes it: the signature looked up (so it is
 * never stale), arguments converted by it, the answer printed typed. */
static void do_call(shell *sh, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "amp-cli shell: call needs a COMMAND\n");
        return;
    }
    call_opts o;
    memset(&o, 0, sizeof o);
    o.verb = "shell";
    o.command = argv[0];
    o.argc = argc - 1;
    o.argv = argv + 1;
    o.timeout = sh->co.timeout;
    o.mode = sh->mode;
    shell_wait_begin(sh);
    call_run(sh->cl, &o);
    shell_wait_end(sh);
    fflush(stdout);
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
            term_printf(stdout, "%s\n", sh->subs[i]);
        fflush(stdout);
        return;
    }
    for (int i = 0; i < argc; i++) {
        if (call1(sh, "amp.Subscribe", "pattern", argv[i]) != 0)
            continue;
        if (sh->ed) /* at a prompt: say so, as 'amp-cli sub' does */
            term_printf(stderr, "amp-cli shell: subscribed to %s\n", argv[i]);
        if (find_sub(sh, argv[i]) >= 0)
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
    term_printf(stdout, "%s\n", c->notation);
}

static int refresh(shell *sh)
{
    char err[1024];
    shell_wait_begin(sh);
    int r = shell_cmds_refresh(&sh->cmds, sh->cl, sh->co.timeout, err, sizeof err);
    shell_wait_end(sh);
    if (r != CLI_OK) {
        term_printf(stderr, "amp-cli shell: %s%s\n", r == CLI_REMOTE ? "amp.Commands: " : "", err);
        return -1;
    }
    return 0;
}

static void say_if_cut(const shell *sh)
{
    if (sh->cmds.cut)
        fprintf(stderr, "amp-cli shell: the list is cut after %zu commands (the broker has more)\n",
                sh->cmds.count);
}

static void do_commands(shell *sh)
{
    if (refresh(sh) != 0)
        return;
    for (size_t i = 0; i < sh->cmds.count; i++)
        print_cmd(&sh->cmds.items[i]);
    fflush(stdout);
    say_if_cut(sh);
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
            fflush(stdout);
            say_if_cut(sh);
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
            term_printf(stderr, "amp-cli shell: help: no command '%s' on the bus\n", argv[i]);
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
