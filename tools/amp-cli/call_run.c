/* One call on a connected client: signature, arguments, answer (call_run.h). */
#include "call_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "term_text.h"
#include "typed_args.h"

struct find_item {
    const char *command;
    signature *out;
    char err[256];
    int found, bad;
};

static int match_item(const amp_box *item, void *ud)
{
    struct find_item *f = ud;
    const amp_pair *c = amp_box_find_str(item, "command");
    if (!c || c->value_len != strlen(f->command) || memcmp(c->value, f->command, c->value_len))
        return 0;
    f->found = 1;
    if (signature_from_item(item, f->out, f->err, sizeof f->err))
        f->bad = 1;
    return 1;
}

int call_fetch_signature(amp_client *cl, const char *command, double timeout, const char *verb,
                         signature *out)
{
    memset(out, 0, sizeof *out);
    if (!strncmp(command, "amp.", 4))
        return CLI_OK;
    amp_pair arg = {(const uint8_t *)"command", 7, (const uint8_t *)command, strlen(command)};
    amp_reply *reply = NULL;
    amp_err r = amp_client_call(cl, "amp.Commands", &arg, 1, timeout, &reply);
    int status = CLI_OK;
    if (r == AMP_OK) {
        const amp_pair *list = amp_box_find_str(&reply->box, "commands");
        struct find_item f = {command, out, "", 0, 0};
        char err[128];
        if (list && amplist_foreach(list->value, list->value_len, match_item, &f, err,
                                    sizeof err) < 0)
            term_printf(stderr, "amp-cli %s: amp.Commands: %s; calling without a signature\n", verb,
                        err);
        else if (f.bad)
            term_printf(stderr, "amp-cli %s: %s's signature: %s; calling without it\n", verb,
                        command, f.err);
        if (f.bad || !f.found)
            signature_free(out);
    } else if (r == AMP_E_TIMEOUT) {
        fprintf(stderr, "amp-cli %s: amp.Commands (the signature of %s) timed out after %g s\n",
                verb, command, timeout);
        status = CLI_TIMEOUT;
    } else if (r != AMP_E_REMOTE) { /* an error answer: the peer has none to give */
        term_printf(stderr, "amp-cli %s: amp.Commands: %s%s%s\n", verb, amp_strerror(r),
                *amp_client_error_text(cl) ? ": " : "", amp_client_error_text(cl));
        status = CLI_CONN;
    }
    amp_reply_free(reply);
    return status;
}

/* Send without _ask, then close once it is written. */
static int send_only(amp_client *cl, const call_opts *o, const typed_args *args)
{
    amp_err r = amp_conn_send(amp_client_conn(cl), o->command, args->pairs, args->count);
    if (r != AMP_OK) {
        fprintf(stderr, "amp-cli %s: %s\n", o->verb, amp_strerror(r));
        return CLI_CONN;
    }
    amp_conn_close(amp_client_conn(cl));
    while (amp_client_conn(cl))
        amp_client_step(cl);
    return CLI_OK;
}

int call_plain(amp_client *cl, const char *verb, const char *command, const amp_pair *args,
               size_t nargs, double timeout, amp_reply **out)
{
    amp_reply *reply = NULL;
    amp_err r = amp_client_call(cl, command, args, nargs, timeout, &reply);
    int status = CLI_OK;
    if (r == AMP_OK) {
        *out = reply;
        return CLI_OK;
    }
    if (r == AMP_E_REMOTE) {
        term_error_line(stderr, "", reply->error_code, reply->error_description);
        status = CLI_REMOTE;
    } else if (r == AMP_E_TIMEOUT) {
        fprintf(stderr, "amp-cli %s: %s timed out after %g s\n", verb, command, timeout);
        status = CLI_TIMEOUT;
    } else {
        term_printf(stderr, "amp-cli %s: %s: %s%s%s\n", verb, command, amp_strerror(r),
                *amp_client_error_text(cl) ? ": " : "", amp_client_error_text(cl));
        status = r == AMP_E_CLOSED ? CLI_CONN : CLI_BAD_INPUT;
    }
    amp_reply_free(reply);
    *out = NULL;
    return status;
}

int call_run_with(amp_client *cl, const call_opts *o, const signature *sig)
{
    char err[1024];
    typed_args args;
    int status = CLI_OK;
    if (typed_args_parse_sig(&args, o->argc, o->argv, sig, err, sizeof err) ||
        typed_args_send_fds(&args, amp_client_conn(cl), err, sizeof err)) {
        term_printf(stderr, "amp-cli %s: %s\n", o->verb, err); /* may quote a signature */
        status = CLI_BAD_INPUT;
    } else if (o->no_answer) {
        status = send_only(cl, o, &args);
    } else {
        amp_reply *reply;
        status = call_plain(cl, o->verb, o->command, args.pairs, args.count, o->timeout, &reply);
        if (status == CLI_OK)
            output_answer(stdout, o->mode, &reply->box, sig);
        amp_reply_free(reply);
    }
    typed_args_free(&args);
    return status;
}

int call_run(amp_client *cl, const call_opts *o)
{
    signature sig;
    memset(&sig, 0, sizeof sig);
    int status = CLI_OK;
    if (!o->no_signature && !o->no_answer)
        status = call_fetch_signature(cl, o->command, o->timeout, o->verb, &sig);
    if (status == CLI_OK)
        status = call_run_with(cl, o, &sig);
    signature_free(&sig);
    return status;
}
