/* amp-cli: shared declarations of the verbs. */
#ifndef AMP_CLI_H
#define AMP_CLI_H

/* Exit statuses shared by every verb (documented in --help and README). */
enum {
    CLI_OK = 0,
    CLI_BAD_INPUT = 1, /* malformed AMP stream or JSON line */
    CLI_USAGE = 2,     /* bad command line */
    CLI_IO = 3,        /* cannot open / read / write */
    CLI_REMOTE = 4,    /* the peer answered with an error box */
    CLI_CONN = 5,      /* the connection failed or was lost */
    CLI_TIMEOUT = 6,   /* the connection or the call timed out; too few events */
    CLI_AUTH = 7       /* the broker refused the login (AUTH_FAILED, ...) */
};

/* --OPTION's value as a number above 0 (at most 1e9), the whole argument
 * parsed: 0, or -1 after "amp-cli VERB: --OPTION needs a positive number"
 * on stderr (then exit CLI_USAGE). */
int cli_positive(const char *verb, const char *option, const char *arg, double *out);
/* The same for a whole number above 0. */
int cli_positive_count(const char *verb, const char *option, const char *arg, long *out);

int cmd_decode(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_call(int argc, char **argv);
int cmd_listen(int argc, char **argv);
int cmd_sub(int argc, char **argv);
int cmd_pub(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_shell(int argc, char **argv);
int cmd_commands(int argc, char **argv);
int cmd_stats(int argc, char **argv);

#endif
