/* amp-broker's settings: what the command line and the configuration file
 * set, with the defaults of README's limits table.
 *
 * main.c calls settings_init, then sets what the command line gives
 * (listen, cli_listen), settings_read for --config, settings_finish, and
 * settings_auth at start and on every SIGHUP. Messages about bad settings go
 * to standard error (before logging starts) or the log. Main thread only;
 * the settings live as long as the daemon, settings_free at its end. */
#ifndef AMP_BROKER_SETTINGS_H
#define AMP_BROKER_SETTINGS_H

#include "amp/amp.h"
#include "auth.h"
#include "router.h"

#define DEFAULT_LISTEN "tcp:7760:interface=127.0.0.1"
#define MAX_LISTEN 16

struct settings {
    const char *listen[MAX_LISTEN];
    int nlisten;
    int cli_listen; /* --listen given: the config file's are ignored */
    router_config router;
    amp_conn_config conn;
    double drain_timeout;
    char *metrics_listen;
    int auth_on;             /* an [auth] section was given */
    char *auth_str[4];       /* password_file, tokens_file, acl_file, anonymous */
    char *cert_match[3];     /* cert_identity_suffix, _domain, _prefix */
    char *owned[MAX_LISTEN];
    int nowned;
    int max_connections_set; /* given in the file; else derived from RLIMIT_NOFILE */
    int line;                /* of the file, being read */
    int bad_line;            /* the first bad setting's line, and why */
    char why[256];
};

/* The defaults. */
void settings_init(struct settings *s);
/* The strings the settings own. */
void settings_free(struct settings *s);
/* Read the configuration file at `path` into s: 0, or -1 after a message
 * naming the file, the line and what the setting allows. */
int settings_read(struct settings *s, const char *path);
/* After reading: the default listener if none, every endpoint well-formed,
 * the settings consistent, max_connections fitted to the open files limit,
 * the certificate rule complete. 0, or -1 after a message (a bad
 * configuration: exit 2). */
int settings_finish(struct settings *s);
/* Users, tokens and the ACL from the [auth] files: NULL (logged) if they
 * cannot be read. */
auth *settings_auth(const struct settings *s);

#endif
