/* amp-cli: the connection settings every verb that talks to a peer shares:
 * the endpoint (--server, else AMP_URL, else a positional ENDPOINT), the TLS
 * options and the broker login (amp.Login). Secrets are read from files or
 * the environment only, never from the command line, where any local user
 * could read them in the process list. */
#ifndef AMP_CLI_CONN_OPTS_H
#define AMP_CLI_CONN_OPTS_H

#include <getopt.h>
#include <stdio.h>

#include "amp/amp.h"

typedef struct conn_opts {
    const char *server; /* --server, else AMP_URL; NULL: positional */
    int server_given;   /* --server was on the command line */
    double timeout;     /* connection, StartTLS and login, seconds */
    int starttls, insecure;
    amp_tls_config tls;
    const char *user, *password_file, *token_file;
} conn_opts;

/* getopt_long codes of the shared options (above any character). */
enum {
    CONN_OPT_SERVER = 0x100,
    CONN_OPT_STARTTLS,
    CONN_OPT_CA,
    CONN_OPT_HOSTNAME,
    CONN_OPT_CERT,
    CONN_OPT_KEY,
    CONN_OPT_INSECURE,
    CONN_OPT_USER,
    CONN_OPT_PASSWORD_FILE,
    CONN_OPT_TOKEN_FILE,
};

/* The entries to put in a verb's option table. */
#define CONN_OPTS_LONG                                                                      \
    {"server", required_argument, 0, CONN_OPT_SERVER},                                      \
        {"starttls", no_argument, 0, CONN_OPT_STARTTLS},                                    \
        {"ca", required_argument, 0, CONN_OPT_CA},                                          \
        {"hostname", required_argument, 0, CONN_OPT_HOSTNAME},                              \
        {"cert", required_argument, 0, CONN_OPT_CERT},                                      \
        {"key", required_argument, 0, CONN_OPT_KEY},                                        \
        {"insecure", no_argument, 0, CONN_OPT_INSECURE},                                    \
        {"user", required_argument, 0, CONN_OPT_USER},                                      \
        {"password-file", required_argument, 0, CONN_OPT_PASSWORD_FILE},                    \
        {"token-file", required_argument, 0, CONN_OPT_TOKEN_FILE}

/* The options' --help text. */
extern const char conn_opts_help[];

/* Defaults: AMP_URL from the environment, verified TLS, no login, 30 s. */
void conn_opts_init(conn_opts *o);
/* Take a getopt_long result: 1 if it was a connection option. */
int conn_opts_handle(conn_opts *o, int c, char *arg);
/* Is `arg` an endpoint rather than a command name (it has a ':' before any
 * '=')? Lets 'call' keep its positional ENDPOINT beside AMP_URL. */
int conn_opts_looks_like_endpoint(const char *arg);
/* Connect to `endpoint` (NULL: o->server), StartTLS and log in as told.
 * Returns CLI_OK with *out set, or an exit status after a message on stderr
 * prefixed with "amp-cli VERB: ". */
int conn_opts_connect(conn_opts *o, const char *endpoint, const char *verb, amp_client **out);

#endif
