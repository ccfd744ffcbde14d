/* amp-cli serve: provide commands through the broker, answering each routed
 * call with fixed values (--answer) or by running a command (--exec).
 *
 * One process, one thread, one libev loop (the default one: libev reaps
 * children there). The broker connection is the blocking client of
 * conn_opts (connection settings and login shared with every verb), driven
 * from this loop by client_loop, so that children, signals and calls all
 * wait in one place and no call blocks another. */
#include <ev.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"
#include "cli.h"
#include "client_loop.h"
#include "conn_opts.h"
#include "exec_runner.h"
#include "serve_call.h"
#include "serve_usage.h"
#include "serve_exec.h"
#include "signature.h"
#include "term_text.h"
#include "typed_args.h"

#define STOP_GRACE 5.0           /* seconds running children get on SIGINT/SIGTERM */
#define MAX_STDOUT (1024 * 1024) /* bytes of a child's stdout read */
#define MAX_STDERR 4096          /* bytes of a child's stderr passed through per call */
#define MAX_QUEUE_BYTES (64u * 1024 * 1024) /* --max-queue-bytes default */

typedef struct served {
    signature sig;     /* the name, and what it declares (if anything) */
    typed_args answer; /* --answer values */
    struct serve_state *st;
} served;

typedef struct serve_state {
    struct ev_loop *loop;
    amp_client *cl;
    served *cmds;
    int ncmds;
    const char *policy;
    exec_runner *runner; /* --exec, else NULL */
    serve_exec_limits limits;
    long count, answered;
    int stopping, status;
    client_loop broker;
    ev_timer grace;
    ev_signal sigint, sigterm;
} serve_state;

/* A call waiting for its child: its arguments (a copy, until the child
 * starts and they become its input). */
typedef struct pending_call {
    served *cmd;
    amp_request *req;
    amp_box *args;
} pending_call;

static void answered(serve_state *st)
{
    st->answered++;
    if (st->count && st->answered >= st->count)
        ev_break(st->loop, EVBREAK_ALL);
}

/* The child's input, built as it starts (a waiting call holds only its
 * arguments, not their JSON, which can be several times larger). */
static char *exec_input(void *ud, size_t *len)
{
    pending_call *pc = ud;
    char *input = serve_exec_input(&pc->cmd->sig, pc->args, len);
    free(pc->args);
    pc->args = NULL;
    return input;
}

static void on_exec_done(const exec_result *r, void *ud)
{
    pending_call *pc = ud;
    serve_state *st = pc->cmd->st;
    serve_exec_answer(pc->req, r, &pc->cmd->sig, &st->limits);
    free(pc->args);
    free(pc);
    answered(st);
    if (st->stopping && !exec_runner_running(st->runner) && !exec_runner_queued(st->runner))
        ev_break(st->loop, EVBREAK_ALL);
}

static void on_call(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    served *cmd = ud;
    serve_state *st = cmd->st;
    if (st->stopping) {
        amp_request_error(req, "SHUTTING_DOWN", "amp-cli serve is stopping", 0);
        return;
    }
    char msg[256];
    if (serve_call_check(&cmd->sig, args, msg, sizeof msg)) {
        amp_request_error(req, SERVE_BAD_ARGUMENTS, msg, 0);
        answered(st);
        return;
    }
    if (!st->runner) {
        amp_request_answer(req, cmd->answer.pairs, cmd->answer.count);
        answered(st);
        return;
    }
    size_t held = 0;
    pending_call *pc = malloc(sizeof *pc);
    amp_box *copy = serve_call_copy_args(args, &held);
    if (!copy || !pc) {
        amp_request_error(req, "EXEC_FAILED", "out of memory", 0);
        free(copy);
        free(pc);
        return;
    }
    /* the request keeps its tag and command name (each at most 255 bytes) */
    held += sizeof *pc + 1024;
    *pc = (pending_call){cmd, req, copy};
    if (exec_runner_submit(st->runner, exec_input, held, cmd->sig.command, on_exec_done, pc) == 0)
        return;
    snprintf(msg, sizeof msg, "%zu calls running and %zu waiting holding %zu bytes "
                              "(--max-concurrent, --max-queue, --max-queue-bytes); this call "
                              "holds %zu", exec_runner_running(st->runner),
             exec_runner_queued(st->runner), exec_runner_queued_bytes(st->runner), held);
    amp_request_error(req, "OVERLOADED", msg, 0);
    free(copy);
    free(pc);
}

/* The broker connection is gone: exit 5 (running children are ended and
 * their calls dropped on the way out). */
static void on_lost(client_loop *cw, void *ud)
{
    serve_state *st = ud;
    const char *why = amp_client_error_text(st->cl);
    term_printf(stderr, "amp-cli serve: connection lost%s%s\n", *why ? ": " : "", why);
    st->status = CLI_CONN;
    ev_break(st->loop, EVBREAK_ALL);
}

/* ---- stopping ---------------------------------------------------------- */

static void on_grace(struct ev_loop *loop, ev_timer *w, int revents)
{
    serve_state *st = w->data;
    exec_runner_kill_running(st->runner);
}

static void unregister_done(amp_session *s, uint64_t call_id, const amp_result *r, void *ud)
{
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    serve_state *st = w->data;
    if (st->stopping || !st->runner || !exec_runner_running(st->runner)) {
        if (st->runner)
            exec_runner_kill_running(st->runner);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    /* let the broker route new calls elsewhere while ours finish */
    st->stopping = 1;
    exec_runner_cancel_queued(st->runner);
    amp_conn *c = amp_client_conn(st->cl);
    for (int i = 0; c && i < st->ncmds; i++) {
        const char *name = st->cmds[i].sig.command;
        amp_pair p = {(const uint8_t *)"command", 7, (const uint8_t *)name, strlen(name)};
        amp_conn_call(c, "amp.Unregister", &p, 1, STOP_GRACE, unregister_done, NULL, NULL);
    }
    ev_timer_set(&st->grace, STOP_GRACE, 0);
    ev_timer_start(loop, &st->grace);
}

/* Every call still with a child is answered (SHUTTING_DOWN) before we go:
 * a request must be answered exactly once, and its child must not outlive
 * us unreaped. Killed children are reaped at once. */
static void end_children(serve_state *st)
{
    if (!st->runner)
        return;
    st->count = 0; /* answering these must not break the loop below */
    exec_runner_cancel_queued(st->runner);
    exec_runner_kill_running(st->runner);
    while (exec_runner_running(st->runner))
        ev_run(st->loop, EVRUN_ONCE);
}

/* ---- setup -------------------------------------------------------------- */

/* amp.Register with the policy and the signature, if given. */
static int register_one(serve_state *st, served *cmd, double timeout)
{
    const char *name = cmd->sig.command;
    sig_wire wire;
    char err[512];
    if (signature_to_wire(&cmd->sig, &wire, err, sizeof err)) {
        fprintf(stderr, "amp-cli serve: %s: %s\n", name, err);
        sig_wire_free(&wire);
        return CLI_USAGE;
    }
    amp_pair p[5] = {{(const uint8_t *)"command", 7, (const uint8_t *)name, strlen(name)}};
    size_t n = 1;
    if (st->policy)
        p[n++] = (amp_pair){(const uint8_t *)"policy", 6, (const uint8_t *)st->policy,
                            strlen(st->policy)};
    for (size_t i = 0; i < wire.count; i++)
        p[n++] = wire.pairs[i];
    amp_reply *reply = NULL;
    amp_err r = amp_client_call(st->cl, "amp.Register", p, n, timeout, &reply);
    sig_wire_free(&wire);
    int status = CLI_OK;
    if (r == AMP_E_REMOTE) {
        char *prefix = NULL;
        if (asprintf(&prefix, "amp-cli serve: registering %s refused: ", name) >= 0)
            term_error_line(stderr, prefix, reply->error_code, reply->error_description);
        free(prefix);
        status = CLI_REMOTE;
    } else if (r == AMP_E_TIMEOUT) {
        fprintf(stderr, "amp-cli serve: registering %s timed out\n", name);
        status = CLI_TIMEOUT;
    } else if (r != AMP_OK) {
        term_printf(stderr, "amp-cli serve: registering %s: %s%s%s\n", name, amp_strerror(r),
                *amp_client_error_text(st->cl) ? ": " : "", amp_client_error_text(st->cl));
        status = CLI_CONN;
    }
    amp_reply_free(reply);
    return status;
}

/* Serve every command on the session first (a call may follow its
 * registration's answer at once), then register them in order. */
static int register_all(serve_state *st, double timeout)
{
    amp_session *s = amp_conn_session(amp_client_conn(st->cl));
    for (int i = 0; i < st->ncmds; i++)
        if (amp_session_serve_str(s, st->cmds[i].sig.command, on_call, &st->cmds[i]) != AMP_OK) {
            fprintf(stderr, "amp-cli serve: %s given twice\n", st->cmds[i].sig.command);
            return CLI_USAGE;
        }
    for (int i = 0; i < st->ncmds; i++) {
        int status = register_one(st, &st->cmds[i], timeout);
        if (status != CLI_OK)
            return status;
    }
    fprintf(stderr, "amp-cli serve: serving");
    for (int i = 0; i < st->ncmds; i++)
        fprintf(stderr, " %s", st->cmds[i].sig.command);
    fprintf(stderr, "\n");
    return CLI_OK;
}

static void run_loop(serve_state *st)
{
    struct ev_loop *loop = st->loop;
    client_loop_start(&st->broker, loop, st->cl, on_lost, st);
    ev_timer_init(&st->grace, on_grace, 0, 0);
    st->grace.data = st;
    /* calls answered while registering may have reached --count already */
    if (!st->count || st->answered < st->count)
        ev_run(loop, 0);
    end_children(st);
    client_loop_flush(st->cl, 5);
    client_loop_stop(&st->broker);
    ev_timer_stop(loop, &st->grace);
}

/* The --answer values for one command: name=value takes the type its
 * response declares for name (an explicit :type wins; undeclared names are
 * Strings), and every declared response field must be there. 0, or -1
 * after a message. */
static int build_answer(served *cmd, int n, char **answers)
{
    char err[512];
    const signature *sig = &cmd->sig;
    if (typed_args_parse(&cmd->answer, n, answers, err, sizeof err)) {
        fprintf(stderr, "amp-cli serve: --answer %s\n", err);
        return -1;
    }
    for (size_t i = 0; i < cmd->answer.count; i++) {
        amp_pair *p = &cmd->answer.pairs[i];
        if (cmd->answer.fd_paths[i]) {
            fprintf(stderr, "amp-cli serve: --answer %s: a Descriptor cannot be answered "
                            "through the broker\n", answers[i]);
            return -1;
        }
        const sig_field *f = signature_find_response(sig, (const char *)p->key, p->key_len);
        if (!f || p->key[p->key_len] == ':') /* the key points into answers[i] */
            continue;
        const char *text = (const char *)p->key + p->key_len + 1;
        amp_buf *v = &cmd->answer.values[i];
        v->len = 0;
        if (typed_args_encode_text(f->type, text, strlen(text), v, err, sizeof err)) {
            fprintf(stderr, "amp-cli serve: --answer %s: %s\n", answers[i], err);
            return -1;
        }
        if (v->len > AMP_MAX_VALUE_LEN) {
            fprintf(stderr, "amp-cli serve: --answer %s: over 65535 bytes\n", answers[i]);
            return -1;
        }
        p->value = v->data ? v->data : (const uint8_t *)"";
        p->value_len = v->len;
    }
    for (size_t f = 0; f < sig->nresponse; f++) {
        const char *name = sig->response[f].name;
        size_t i = 0;
        while (i < cmd->answer.count && !(cmd->answer.pairs[i].key_len == strlen(name) &&
                                          !memcmp(cmd->answer.pairs[i].key, name, strlen(name))))
            i++;
        if (i == cmd->answer.count) {
            char *decl = signature_format(sig);
            fprintf(stderr, "amp-cli serve: %s's response declares '%s': give --answer %s=VALUE "
                            "or --exec (declared: %s)\n", sig->command, name, name,
                    decl ? decl : sig->command);
            free(decl);
            return -1;
        }
    }
    return 0;
}

/* Started with 0, 1 or 2 closed, the next descriptor opened (the broker's
 * socket, a child's pipe) would take that number: our messages and the
 * children's stderr would go into the AMP connection, and a child's pipes
 * would be mixed up. /dev/null fills the gaps first. */
static int open_stdio(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
            return -1;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"answer", required_argument, 0, 'a'},       {"exec", required_argument, 0, 'e'},
        {"exec-timeout", required_argument, 0, 'T'}, {"max-concurrent", required_argument, 0, 'c'},
        {"max-queue", required_argument, 0, 'q'},    {"policy", required_argument, 0, 'p'},
        {"max-queue-bytes", required_argument, 0, 'Q'},
        {"count", required_argument, 0, 'n'},        {"timeout", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},               CONN_OPTS_LONG,
        {0, 0, 0, 0},
    };
    if (open_stdio())
        return CLI_IO;
    conn_opts co;
    conn_opts_init(&co);
    serve_state st;
    memset(&st, 0, sizeof st);
    exec_runner_config ec = {NULL, 30, MAX_STDOUT, MAX_STDERR, 16, 1024, MAX_QUEUE_BYTES};
    char **answers = calloc((size_t)argc + 1, sizeof *answers);
    int nanswers = 0, c, status = CLI_USAGE;
    double num;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (conn_opts_handle(&co, c, optarg))
            continue;
        switch (c) {
        case 'a': answers[nanswers++] = optarg; continue;
        case 'e': ec.command = optarg; continue;
        case 'p': st.policy = optarg; continue;
        case 'h': serve_usage(stdout, STOP_GRACE); free(answers); return CLI_OK;
        case 'T': case 'c': case 'q': case 'Q': case 'n': case 't': break;
        default: serve_usage(stderr, STOP_GRACE); free(answers); return CLI_USAGE;
        }
        const char *name = c == 'T' ? "exec-timeout" : c == 'c' ? "max-concurrent"
                         : c == 'q' ? "max-queue" : c == 'Q' ? "max-queue-bytes"
                         : c == 'n' ? "count" : "timeout";
        int zero_ok = (c == 'q' || c == 'Q') && !strcmp(optarg, "0");
        if (!zero_ok && cli_positive("serve", name, optarg, &num)) {
            free(answers);
            return CLI_USAGE;
        }
        if (zero_ok)
            num = 0;
        if ((c == 'c' || c == 'q' || c == 'n') && (num != (long)num || num > 1e9)) {
            fprintf(stderr, "amp-cli serve: --%s needs a whole number\n", name);
            free(answers);
            return CLI_USAGE;
        }
        switch (c) {
        case 'T': ec.timeout = num; break;
        case 'c': ec.max_running = (int)num; break;
        case 'q': ec.max_queue = (size_t)num; break;
        case 'Q':
            if (num != (long long)num || num > 1e15) {
                fprintf(stderr, "amp-cli serve: --max-queue-bytes needs a whole number\n");
                free(answers);
                return CLI_USAGE;
            }
            ec.max_queue_bytes = (size_t)num;
            break;
        case 'n': st.count = (long)num; break;
        default: co.timeout = num; break;
        }
    }
    if (optind >= argc) {
        serve_usage(stderr, STOP_GRACE);
        free(answers);
        return CLI_USAGE;
    }
    if (ec.command && nanswers) {
        fprintf(stderr, "amp-cli serve: --answer and --exec do not go together\n");
        free(answers);
        return CLI_USAGE;
    }
    st.ncmds = argc - optind;
    st.cmds = calloc((size_t)st.ncmds, sizeof *st.cmds);
    char err[512];
    for (int i = 0; i < st.ncmds; i++) {
        served *cmd = &st.cmds[i];
        cmd->st = &st;
        sig_wire wire; /* over the broker's size cap: found before connecting */
        int bad = signature_parse(argv[optind + i], &cmd->sig, err, sizeof err) ||
                  signature_to_wire(&cmd->sig, &wire, err, sizeof err);
        if (!bad)
            sig_wire_free(&wire);
        if (bad) {
            fprintf(stderr, "amp-cli serve: '%s': %s\n", argv[optind + i], err);
            goto out;
        }
        if (!ec.command && build_answer(cmd, nanswers, answers))
            goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    st.loop = ev_default_loop(0);
    st.limits = (serve_exec_limits){ec.timeout, ec.max_stdout};
    if (ec.command && !(st.runner = exec_runner_new(st.loop, &ec))) {
        fprintf(stderr, "amp-cli serve: out of memory\n");
        status = CLI_IO;
        goto out;
    }
    status = conn_opts_connect(&co, NULL, "serve", &st.cl);
    if (status != CLI_OK)
        goto out;
    /* from now on a signal stops us cleanly, also one that arrives while
     * registering (it waits in the loop until it runs) */
    ev_signal_init(&st.sigint, on_stop_signal, SIGINT);
    ev_signal_init(&st.sigterm, on_stop_signal, SIGTERM);
    st.sigint.data = st.sigterm.data = &st;
    ev_signal_start(st.loop, &st.sigint);
    ev_signal_start(st.loop, &st.sigterm);
    status = register_all(&st, co.timeout);
    if (status == CLI_OK)
        run_loop(&st);
    if (status == CLI_OK)
        status = st.status;
    amp_client_free(st.cl);
    ev_signal_stop(st.loop, &st.sigint);
    ev_signal_stop(st.loop, &st.sigterm);
out:
    exec_runner_free(st.runner);
    for (int i = 0; i < st.ncmds; i++) {
        typed_args_free(&st.cmds[i].answer);
        signature_free(&st.cmds[i].sig);
    }
    free(st.cmds);
    free(answers);
    return status;
}
