/* amp-cli: connecting, StartTLS and logging in, shared by the verbs. */
#include "conn_opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "term_text.h"

const char conn_opts_help[] =
    "connection:\n"
    "  --server ENDPOINT   the peer (default: $AMP_URL); endpoints: tcp:HOST:PORT,\n"
    "                      tcp:host=HOST:port=PORT, unix:PATH,\n"
    "                      ssl:host=HOST:port=PORT[:caCerts=CA.pem][:certKey=C.pem:privateKey=K.pem]\n"
    "  --starttls          StartTLS after connecting; with --ca, --hostname,\n"
    "                      --cert, --key for the TLS settings. The server's\n"
    "                      certificate must chain to --ca (else the system's\n"
    "                      CAs) and name --hostname (else the host connected to)\n"
    "  --insecure          accept any server certificate for any name (StartTLS\n"
    "                      and ssl: endpoints): anyone on the path can read and\n"
    "                      change the connection. Prints a warning\n"
    "login (amp.Login with the broker, right after connecting):\n"
    "  --user NAME         with --password-file FILE (its first line) or the\n"
    "                      password in $AMP_PASSWORD\n"
    "  --token-file FILE   a token (its first line); or the token in $AMP_TOKEN\n"
    "                      when there is no --user. Secrets are never options.\n";

void conn_opts_init(conn_opts *o)
{
    memset(o, 0, sizeof *o); /* TLS verifies the server's certificate and name */
    const char *url = getenv("AMP_URL");
    o->server = url && *url ? url : NULL;
    o->timeout = 30;
}

int conn_opts_handle(conn_opts *o, int c, char *arg)
{
    switch (c) {
    case CONN_OPT_SERVER: o->server = arg; o->server_given = 1; return 1;
    case CONN_OPT_STARTTLS: o->starttls = 1; return 1;
    case CONN_OPT_CA: o->tls.ca_file = arg; return 1;
    case CONN_OPT_HOSTNAME: o->tls.hostname = arg; return 1;
    case CONN_OPT_CERT: o->tls.cert = arg; return 1;
    case CONN_OPT_KEY: o->tls.private_key = arg; return 1;
    case CONN_OPT_INSECURE: o->insecure = 1; return 1;
    case CONN_OPT_USER: o->user = arg; return 1;
    case CONN_OPT_PASSWORD_FILE: o->password_file = arg; return 1;
    case CONN_OPT_TOKEN_FILE: o->token_file = arg; return 1;
    default: return 0;
    }
}

int conn_opts_looks_like_endpoint(const char *arg)
{
    const char *colon = strchr(arg, ':'), *eq = strchr(arg, '=');
    return colon && (!eq || colon < eq);
}

static amp_pair pair_str(const char *key, const char *value)
{
    amp_pair p = {(const uint8_t *)key, strlen(key), (const uint8_t *)value, strlen(value)};
    return p;
}

/* The first line of `path`, without its line end, in buf. */
static int read_secret(const char *path, char *buf, size_t len, const char *verb)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "amp-cli %s: %s: %s\n", verb, path, strerror(errno));
        return CLI_IO;
    }
    int ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    buf[ok ? strcspn(buf, "\r\n") : 0] = 0;
    if (!*buf) {
        fprintf(stderr, "amp-cli %s: %s: no secret on its first line\n", verb, path);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Which secret to send: fills pairs (2 at most) and returns their count, or
 * -status on an error. */
static int login_pairs(const conn_opts *o, const char *verb, char *secret, size_t len,
                       amp_pair *pairs)
{
    const char *env;
    if (o->user) {
        if (o->token_file) {
            fprintf(stderr, "amp-cli %s: --user goes with a password, not --token-file\n", verb);
            return -CLI_USAGE;
        }
        if (o->password_file) {
            int st = read_secret(o->password_file, secret, len, verb);
            if (st)
                return -st;
        } else if ((env = getenv("AMP_PASSWORD")) && *env) {
            snprintf(secret, len, "%s", env);
        } else {
            fprintf(stderr, "amp-cli %s: --user needs --password-file FILE or AMP_PASSWORD\n",
                    verb);
            return -CLI_USAGE;
        }
        pairs[0] = pair_str("username", o->user);
        pairs[1] = pair_str("password", secret);
        return 2;
    }
    if (o->password_file) {
        fprintf(stderr, "amp-cli %s: --password-file needs --user NAME\n", verb);
        return -CLI_USAGE;
    }
    if (o->token_file) {
        int st = read_secret(o->token_file, secret, len, verb);
        if (st)
            return -st;
    } else if ((env = getenv("AMP_TOKEN")) && *env) {
        snprintf(secret, len, "%s", env);
    } else {
        return 0; /* no login */
    }
    pairs[0] = pair_str("token", secret);
    return 1;
}

static int login(conn_opts *o, amp_client *cl, const char *verb, const amp_pair *pairs, int n)
{
    amp_reply *reply = NULL;
    amp_err r = amp_client_call(cl, "amp.Login", pairs, (size_t)n, o->timeout, &reply);
    int status = CLI_OK;
    const char *who = o->user ? o->user : "the token's user";
    if (r == AMP_E_REMOTE) {
        char *prefix = NULL;
        if (asprintf(&prefix, "amp-cli %s: login as %s refused: ", verb, who) >= 0)
            term_error_line(stderr, prefix, reply->error_code, reply->error_description);
        free(prefix);
        status = CLI_AUTH;
    } else if (r == AMP_E_TIMEOUT) {
        fprintf(stderr, "amp-cli %s: login timed out after %g s\n", verb, o->timeout);
        status = CLI_TIMEOUT;
    } else if (r != AMP_OK) {
        term_printf(stderr, "amp-cli %s: login: %s%s%s\n", verb, amp_strerror(r),
                *amp_client_error_text(cl) ? ": " : "", amp_client_error_text(cl));
        status = CLI_CONN;
    }
    amp_reply_free(reply);
    return status;
}

int conn_opts_connect(conn_opts *o, const char *endpoint, const char *verb, amp_client **out)
{
    char err[512], secret[1024];
    amp_pair creds[2];
    *out = NULL;
    if (!endpoint)
        endpoint = o->server;
    if (!endpoint) {
        fprintf(stderr, "amp-cli %s: no endpoint: give --server ENDPOINT or set AMP_URL\n", verb);
        return CLI_USAGE;
    }
    int ncreds = login_pairs(o, verb, secret, sizeof secret, creds);
    if (ncreds < 0)
        return -ncreds;
    amp_endpoint ep;
    amp_err r = amp_endpoint_parse(endpoint, 0, &ep, err, sizeof err);
    int status = CLI_OK;
    amp_client *cl = NULL;
    if (r != AMP_OK) {
        fprintf(stderr, "amp-cli %s: %s\n", verb, err);
        status = CLI_USAGE;
        goto out;
    }
    if (o->insecure) {
        fprintf(stderr, "amp-cli %s: WARNING: --insecure: the server's certificate and name "
                        "are not checked; anyone on the path can read and change this "
                        "connection\n", verb);
        o->tls.insecure_skip_verify = 1;
        ep.tls.insecure_skip_verify = 1;
    }
    r = amp_client_connect_endpoint(&cl, &ep, o->timeout, err, sizeof err);
    amp_endpoint_free(&ep);
    if (r != AMP_OK) {
        fprintf(stderr, "amp-cli %s: %s\n", verb, err);
        status = r == AMP_E_ENDPOINT ? CLI_USAGE : r == AMP_E_TIMEOUT ? CLI_TIMEOUT : CLI_CONN;
        goto out;
    }
    if (o->starttls) {
        r = amp_client_start_tls(cl, &o->tls, o->timeout);
        if (r != AMP_OK) {
            const char *why = amp_client_error_text(cl);
            term_printf(stderr, "amp-cli %s: StartTLS failed: %s\n", verb,
                    *why ? why : amp_strerror(r));
            status = r == AMP_E_TIMEOUT ? CLI_TIMEOUT : CLI_CONN;
            goto out;
        }
    }
    if (ncreds > 0)
        status = login(o, cl, verb, creds, ncreds);
out:
    explicit_bzero(secret, sizeof secret);
    if (status != CLI_OK && cl)
        amp_client_free(cl);
    else
        *out = cl;
    return status;
}
