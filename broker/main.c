/* amp-broker: the AMP message bus daemon. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <ini.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "amp/amp.h"
#include "log.h"
#include "metrics.h"
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
};

/* The strings the settings own. */
static void settings_free(struct settings *s)
{
    for (int i = 0; i < s->nowned; i++)
        free(s->owned[i]);
    for (int i = 0; i < 4; i++)
        free(s->auth_str[i]);
    for (int i = 0; i < 3; i++)
        free(s->cert_match[i]);
    free(s->metrics_listen);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: amp-broker [--config FILE] [--listen ENDPOINT]... [--log-level LEVEL]\n"
            "                  [--help] [--version]\n"
            "\n"
            "The AMP message bus. Peers connect, register the commands they serve\n"
            "(amp.Register), call commands served by others, and publish and subscribe\n"
            "to events (calls without _ask; amp.Subscribe). See spec/amp.md, \"The bus\".\n"
            "\n"
            "  --listen ENDPOINT   listen here (repeatable; default " DEFAULT_LISTEN ")\n"
            "                      e.g. tcp:7760, unix:/run/amp.sock,\n"
            "                      ssl:7761:privateKey=key.pem:certKey=cert.pem\n"
            "  --config FILE       settings file (INI); see broker/amp-broker.conf\n"
            "  --log-level LEVEL   error, warn, info (default) or debug\n"
            "  --hash-password     read a password on stdin, print its line for a\n"
            "                      password file (PBKDF2-SHA256, random salt)\n"
            "\n"
            "Logs go to standard error. SIGTERM and SIGINT drain: listeners close, new\n"
            "calls get SHUTTING_DOWN, calls in flight finish (up to drain_timeout),\n"
            "then the broker exits 0; a second signal exits at once.\n");
}

/* A whole number in [min, max]: 0 and *out set, or -1. */
static int parse_size(const char *value, size_t min, size_t max, size_t *out)
{
    char *end;
    errno = 0;
    if (*value < '0' || *value > '9')
        return -1; /* no sign, no space: strtoull would take "-1" */
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* A whole number in [min, max] into *out; else a message and 0. */
static int count_setting(const char *name, const char *value, size_t min, size_t max,
                         size_t *out)
{
    if (!parse_size(value, min, max, out))
        return 1;
    fprintf(stderr, "amp-broker: %s must be a whole number from %zu to %zu\n", name, min, max);
    return 0;
}

/* [auth] settings past the files: certificates and login limits. */
static int auth_setting(struct settings *s, const char *name, const char *value)
{
    static const char *match_keys[] = {"cert_identity_suffix", "cert_identity_domain",
                                       "cert_identity_prefix"};
    router_config *rc = &s->router;
    size_t v;
    char *end;
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, match_keys[i])) {
            free(s->cert_match[i]);
            s->cert_match[i] = strdup(value);
            return 1;
        }
    if (!strcmp(name, "cert_identity")) {
        int m = cert_mode_parse(value);
        if (m < 0)
            fprintf(stderr, "amp-broker: cert_identity is cn, san-dns, san-email, san-uri or "
                            "none\n");
        rc->cert_identity.mode = m < 0 ? CERT_NONE : (enum cert_mode)m;
        return m >= 0;
    }
    if (!strcmp(name, "login_workers")) {
        if (!count_setting(name, value, 1, 64, &v))
            return 0;
        rc->login_workers = (int)v;
    } else if (!strcmp(name, "max_pending_logins")) {
        if (!count_setting(name, value, 1, 1000000, &v))
            return 0;
        rc->max_pending_logins = (size_t)v;
    } else if (!strcmp(name, "max_pending_logins_per_address")) {
        if (!count_setting(name, value, 1, 1000000, &v))
            return 0;
        rc->max_pending_logins_per_address = (size_t)v;
    } else if (!strcmp(name, "login_throttle_after")) {
        if (!count_setting(name, value, 1, 1000000, &v))
            return 0;
        rc->login_throttle_after = (unsigned)v;
    } else if (!strcmp(name, "max_connections_per_user")) {
        if (!count_setting(name, value, 1, 100000000, &v))
            return 0;
        rc->max_connections_per_user = (size_t)v;
    } else if (!strcmp(name, "login_throttle_max")) {
        rc->login_throttle_max = strtod(value, &end);
        if (end == value || *end || !(rc->login_throttle_max >= 0) ||
            rc->login_throttle_max > 86400) {
            fprintf(stderr, "amp-broker: login_throttle_max is seconds from 0 (off) to 86400\n");
            return 0;
        }
    } else {
        fprintf(stderr, "amp-broker: unknown setting '%s' in [auth]\n", name);
        return 0;
    }
    return 1;
}

/* cert_identity and the one setting its mode needs, consistent. */
static int cert_rule_setup(struct settings *s)
{
    cert_rule *r = &s->router.cert_identity;
    int wanted = r->mode == CERT_SAN_DNS ? 0 : r->mode == CERT_SAN_EMAIL ? 1
                 : r->mode == CERT_SAN_URI ? 2 : -1;
    static const char *keys[] = {"cert_identity_suffix", "cert_identity_domain",
                                 "cert_identity_prefix"};
    for (int i = 0; i < 3; i++)
        if (s->cert_match[i] && i != wanted) {
            fprintf(stderr, "amp-broker: %s does not go with cert_identity = %s\n", keys[i],
                    cert_mode_name(r->mode));
            return -1;
        }
    r->match = wanted >= 0 ? s->cert_match[wanted] : NULL;
    const char *why = cert_rule_check(r);
    if (why) {
        fprintf(stderr, "amp-broker: %s\n", why);
        return -1;
    }
    return 0;
}

static int on_setting(void *ud, const char *section, const char *name, const char *value)
{
    struct settings *s = ud;
    char *end;
    if (!strcmp(section, "auth")) {
        static const char *keys[] = {"password_file", "tokens_file", "acl_file", "anonymous"};
        s->auth_on = 1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(name, keys[i])) {
                free(s->auth_str[i]);
                s->auth_str[i] = strdup(value);
                return 1;
            }
        if (!strcmp(name, "login_timeout")) {
            s->router.login_timeout = strtod(value, &end);
            return !*end && s->router.login_timeout > 0;
        }
        return auth_setting(s, name, value);
    }
    if (strcmp(section, "broker") && strcmp(section, "")) {
        fprintf(stderr, "amp-broker: unknown section [%s]\n", section);
        return 0;
    }
    if (!strcmp(name, "listen")) {
        if (s->cli_listen)
            return 1;
        if (s->nlisten == MAX_LISTEN || s->nowned == MAX_LISTEN)
            return 0;
        s->listen[s->nlisten++] = s->owned[s->nowned++] = strdup(value);
    } else if (!strcmp(name, "call_timeout")) {
        s->router.call_timeout = strtod(value, &end);
        if (*end || s->router.call_timeout <= 0)
            return 0;
    } else if (!strcmp(name, "max_call_timeout")) {
        s->router.max_call_timeout = strtod(value, &end);
        if (*end || s->router.max_call_timeout <= 0)
            return 0;
    } else if (!strcmp(name, "event_queue_bytes")) {
        s->router.event_queue_bytes = strtoull(value, &end, 10);
        if (*end || !s->router.event_queue_bytes)
            return 0;
    } else if (!strcmp(name, "slow_consumer")) {
        if (!strcmp(value, "drop"))
            s->router.slow_consumer = SLOW_DROP;
        else if (!strcmp(value, "disconnect"))
            s->router.slow_consumer = SLOW_DISCONNECT;
        else
            return 0;
    } else if (!strcmp(name, "max_box_bytes")) {
        s->conn.limits.max_box_bytes = strtoull(value, &end, 10);
        if (*end || s->conn.limits.max_box_bytes < 2)
            return 0;
    } else if (!strcmp(name, "max_keys")) {
        s->conn.limits.max_keys = strtoull(value, &end, 10);
        if (*end || !s->conn.limits.max_keys)
            return 0;
    } else if (!strcmp(name, "output_hard_cap")) {
        s->conn.output_hard_cap = strtoull(value, &end, 10);
        if (*end || !s->conn.output_hard_cap)
            return 0;
    } else if (!strcmp(name, "max_calls_in_flight")) {
        s->router.max_calls_in_flight = strtoull(value, &end, 10);
        if (*end)
            return 0;
    } else if (!strcmp(name, "keepalive")) {
        s->router.keepalive = strtod(value, &end);
        if (*end || s->router.keepalive < 0)
            return 0;
    } else if (!strcmp(name, "login_max_box_bytes")) {
        s->router.login_limits.max_box_bytes = strtoull(value, &end, 10);
        if (*end || s->router.login_limits.max_box_bytes < 2)
            return 0;
    } else if (!strcmp(name, "output_soft_cap")) {
        s->router.output_soft_cap = strtoull(value, &end, 10);
        if (*end)
            return 0;
    } else if (!strcmp(name, "output_soft_seconds")) {
        s->router.output_soft_seconds = strtod(value, &end);
        if (*end || s->router.output_soft_seconds <= 0)
            return 0;
    } else if (!strcmp(name, "max_connections")) {
        s->router.max_connections = strtoull(value, &end, 10);
        if (*end || !s->router.max_connections)
            return 0;
        s->max_connections_set = 1;
    } else if (!strcmp(name, "max_commands")) {
        return !parse_size(value, 1, SIZE_MAX, &s->router.max_commands);
    } else if (!strcmp(name, "max_registrations")) {
        return !parse_size(value, 1, SIZE_MAX, &s->router.max_registrations);
    } else if (!strcmp(name, "max_subscriptions")) {
        return !parse_size(value, 1, SIZE_MAX, &s->router.max_subscriptions);
    } else if (!strcmp(name, "max_queued_bytes")) {
        return !parse_size(value, 1, SIZE_MAX, &s->router.max_queued_bytes);
    } else if (!strcmp(name, "box_timeout")) {
        s->conn.box_timeout = strtod(value, &end);
        return !*end && s->conn.box_timeout > 0;
    } else if (!strcmp(name, "max_command_name")) {
        return !parse_size(value, 1, AMP_MAX_VALUE_LEN, &s->router.max_command_name);
    } else if (!strcmp(name, "handshake_timeout")) {
        s->conn.handshake_timeout = strtod(value, &end);
        if (*end || s->conn.handshake_timeout <= 0)
            return 0;
    } else if (!strcmp(name, "drain_timeout")) {
        s->drain_timeout = strtod(value, &end);
        if (*end || s->drain_timeout < 0)
            return 0;
    } else if (!strcmp(name, "metrics_listen")) {
        free(s->metrics_listen);
        s->metrics_listen = strdup(value);
    } else if (!strcmp(name, "log_level")) {
        int l = log_level_parse(value);
        if (l < 0)
            return 0;
        log_threshold = (enum log_level)l;
    } else {
        fprintf(stderr, "amp-broker: unknown setting '%s'\n", name);
        return 0;
    }
    return 1;
}

/* inih cuts lines at 200 characters and reads the rest as a new line: refuse
 * such files rather than misread them. */
static int config_lines_too_long(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0; /* ini_parse reports it */
    int c, col = 0, line = 1, bad = 0;
    while (!bad && (c = getc(f)) != EOF) {
        if (c == '\n') {
            line++;
            col = 0;
        } else if (++col >= 200) {
            fprintf(stderr, "amp-broker: %s:%d: line longer than 199 characters\n", path, line);
            bad = 1;
        }
    }
    fclose(f);
    return bad;
}

/* Settings that only make sense together; 0 if they do, else -1 with a
 * message. */
static int check_limits(const struct settings *s)
{
    const router_config *rc = &s->router;
    size_t box = s->conn.limits.max_box_bytes ? s->conn.limits.max_box_bytes : 4u << 20;
    if (rc->output_soft_cap && rc->output_soft_cap >= rc->event_queue_bytes) {
        /* events stop being queued at event_queue_bytes: a subscriber that
         * does not read would never reach the soft cap, and never be closed */
        fprintf(stderr, "amp-broker: output_soft_cap (%zu) must be below event_queue_bytes "
                "(%zu), or a subscriber that stops reading is never closed\n",
                rc->output_soft_cap, rc->event_queue_bytes);
        return -1;
    }
    if (rc->max_queued_bytes < rc->event_queue_bytes || rc->max_queued_bytes / 2 < box) {
        fprintf(stderr, "amp-broker: max_queued_bytes (%zu) must hold at least "
                "event_queue_bytes (%zu) and two boxes of max_box_bytes (%zu)\n",
                rc->max_queued_bytes, rc->event_queue_bytes, box);
        return -1;
    }
    return 0;
}

/* Descriptors kept out of max_connections' reach: listeners, the metrics
 * endpoint and its clients, log and password files, libev's own. */
#define FD_RESERVE 64

/* max_connections must leave descriptors for everything else, or a flood of
 * connections locks out the metrics endpoint and logins. Without a setting
 * it is derived from the open files limit; a setting above what the limit
 * allows is lowered to it, with a warning. 0 if usable, -1 if the limit
 * leaves no room for connections at all. */
static int fit_connections(struct settings *s)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY) {
        log_msg(LOG_INFO, "max_connections %zu", s->router.max_connections);
        return 0;
    }
    size_t limit = (size_t)rl.rlim_cur;
    /* small limits (tests, containers) keep a quarter */
    size_t reserve = limit >= 4 * FD_RESERVE ? FD_RESERVE : limit / 4;
    size_t fit = limit - reserve;
    if (fit < 1) {
        log_msg(LOG_ERROR, "the open files limit (%zu) leaves no room for connections", limit);
        return -1;
    }
    if (!s->max_connections_set) {
        if (s->router.max_connections > fit)
            s->router.max_connections = fit;
    } else if (s->router.max_connections > fit) {
        log_msg(LOG_WARN, "max_connections = %zu is more than the open files limit allows "
                "(%zu, %zu kept in reserve): using %zu; raise the limit (ulimit -n, "
                "LimitNOFILE=) to allow more", s->router.max_connections, limit, reserve, fit);
        s->router.max_connections = fit;
    }
    log_msg(LOG_INFO, "max_connections %zu (open files limit %zu, %zu kept in reserve)",
            s->router.max_connections, limit, reserve);
    return 0;
}

static auth *load_auth(const struct settings *s)
{
    auth_files f = {s->auth_str[0], s->auth_str[1], s->auth_str[2], s->auth_str[3]};
    char err[512];
    auth *a = auth_load(&f, err, sizeof err);
    if (!a)
        log_msg(LOG_ERROR, "authentication: %s", err);
    else if (s->auth_str[3] && auth_allow_everyone_rules(a))
        log_msg(LOG_WARN, "authentication: %zu 'allow *' rule(s) apply to anonymous peers too "
                "('*' is every peer); write 'authenticated' for logged-in peers only",
                auth_allow_everyone_rules(a));
    return a;
}

struct reload {
    struct settings *s;
    router *r;
};

/* SIGHUP: read users, tokens and the ACL again; keep the old ones if the
 * new files are broken. */
static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct reload *rl = w->data;
    if (!rl->s->auth_on) {
        log_msg(LOG_INFO, "SIGHUP: no [auth] configured, nothing to reload");
        return;
    }
    auth *a = load_auth(rl->s);
    if (!a) {
        log_msg(LOG_ERROR, "SIGHUP: reload failed, keeping the previous users and ACL");
        return;
    }
    if (router_set_auth(rl->r, a) == 0)
        log_msg(LOG_INFO, "SIGHUP: users and ACL reloaded");
}

static void on_accept(amp_listener *l, amp_conn *c, void *ud)
{
    router_accept(ud, c);
}

/* SIGTERM or SIGINT: stop accepting, answer new calls with SHUTTING_DOWN,
 * let forwarded calls finish until drain_timeout, then exit. A second
 * signal exits at once. */
struct drain {
    router *r;
    amp_listener **listeners;
    int nlisten;
    double deadline;
    ev_timer poll;
    int started;
};

static void drain_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct drain *d = w->data;
    if (router_inflight(d->r) == 0 || ev_now(loop) >= d->deadline) {
        if (router_inflight(d->r))
            log_msg(LOG_WARN, "drain timeout: %zu calls still in flight",
                    router_inflight(d->r));
        ev_break(loop, EVBREAK_ALL);
    }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct drain *d = w->data;
    if (d->started) {
        log_msg(LOG_INFO, "signal %d again: stopping now", w->signum);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    d->started = 1;
    log_msg(LOG_INFO, "signal %d: draining (%zu calls in flight)", w->signum,
            router_inflight(d->r));
    for (int i = 0; i < d->nlisten; i++) {
        if (d->listeners[i])
            router_listener_gone(d->r, d->listeners[i]);
        amp_listener_free(d->listeners[i]);
        d->listeners[i] = NULL;
    }
    router_drain(d->r);
    d->deadline += ev_now(loop);
    ev_timer_start(loop, &d->poll);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, 0, 'l'},   {"config", required_argument, 0, 'c'},
        {"log-level", required_argument, 0, 'L'}, {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},        {"hash-password", no_argument, 0, 'P'},
        {0, 0, 0, 0},
    };
    struct settings s;
    memset(&s, 0, sizeof s);
    s.router.call_timeout = 30;
    s.router.max_call_timeout = 300;
    s.router.event_queue_bytes = 8u << 20;
    s.router.slow_consumer = SLOW_DROP;
    s.router.max_connections = 65536; /* lowered to fit RLIMIT_NOFILE */
    s.router.max_registrations = 1000;
    s.router.max_commands = 10000;
    s.router.max_subscriptions = 1000;
    s.router.max_command_name = 256;
    /* Queued output and partial input across all connections: 64 boxes of
     * the largest size (max_box_bytes) at once, a small share of a server's
     * memory; raise it with the memory the broker may use. */
    s.router.max_queued_bytes = 256u << 20;
    s.conn.box_timeout = 30;
    s.router.login_timeout = 2;
    s.router.max_calls_in_flight = 10000;
    s.router.keepalive = 60;
    s.router.output_soft_cap = 4u << 20; /* below event_queue_bytes: see check_limits */
    s.router.output_soft_seconds = 10;
    s.router.login_limits.max_keys = 16;
    s.router.login_limits.max_box_bytes = 4096;
    s.drain_timeout = 10;
    s.router.login_workers = 2;
    s.router.max_pending_logins = 64;
    s.router.max_pending_logins_per_address = 4;
    s.router.login_throttle_after = 5;
    s.router.login_throttle_max = 30;
    s.router.max_connections_per_user = 256;
    const char *config = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (s.nlisten == MAX_LISTEN) {
                fprintf(stderr, "amp-broker: at most %d --listen\n", MAX_LISTEN);
                return 2;
            }
            s.listen[s.nlisten++] = optarg;
            s.cli_listen = 1;
            break;
        case 'c': config = optarg; break;
        case 'L': {
            int l = log_level_parse(optarg);
            if (l < 0) {
                fprintf(stderr, "amp-broker: unknown log level '%s'\n", optarg);
                return 2;
            }
            log_threshold = (enum log_level)l;
            break;
        }
        case 'h': usage(stdout); return 0;
        case 'V': printf("amp-broker %s\n", amp_version()); return 0;
        case 'P': {
            char pw[1024], out[256];
            if (!fgets(pw, sizeof pw, stdin)) {
                fprintf(stderr, "amp-broker: --hash-password reads the password from stdin\n");
                return 2;
            }
            pw[strcspn(pw, "\r\n")] = 0;
            if (auth_hash_password(pw, out, sizeof out))
                return 1;
            printf("%s\n", out);
            return 0;
        }
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (config && config_lines_too_long(config))
        return 2;
    if (config) {
        int line = ini_parse(config, on_setting, &s);
        if (line) {
            if (line < 0)
                fprintf(stderr, "amp-broker: cannot read %s: %s\n", config, strerror(errno));
            else
                fprintf(stderr, "amp-broker: %s:%d: bad setting\n", config, line);
            settings_free(&s);
            return 2;
        }
    }
    if (!s.nlisten)
        s.listen[s.nlisten++] = DEFAULT_LISTEN;

    s.router.limits = s.conn.limits;
    if (check_limits(&s) || fit_connections(&s) || cert_rule_setup(&s)) {
        settings_free(&s);
        return 2;
    }
    auth *a = NULL;
    if (s.auth_on && !(a = load_auth(&s))) { /* never fall back to allowing all */
        settings_free(&s);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_default_loop(0);
    router *r = router_new(loop, &s.router);
    if (router_set_auth(r, a)) {
        router_free(r);
        settings_free(&s);
        return 1;
    }
    s.conn.usage = router_usage(r); /* every session counts toward max_queued_bytes */
    amp_listener *listeners[MAX_LISTEN] = {0};
    router_count_listeners(r, listeners, MAX_LISTEN);
    int status = 0;
    for (int i = 0; i < s.nlisten && !status; i++) {
        char err[512];
        if (amp_listen(loop, s.listen[i], &s.conn, on_accept, r, &listeners[i], err,
                       sizeof err) != AMP_OK) {
            log_msg(LOG_ERROR, "%s", err);
            status = 1;
            break;
        }
        int port = amp_listener_port(listeners[i]);
        if (port >= 0)
            log_msg(LOG_INFO, "listening on %s (port %d)", s.listen[i], port);
        else
            log_msg(LOG_INFO, "listening on %s", s.listen[i]);
    }
    metrics_server *metrics = NULL;
    if (!status && s.metrics_listen) {
        char err[512];
        metrics = metrics_listen(loop, s.metrics_listen, r, err, sizeof err);
        if (!metrics) {
            log_msg(LOG_ERROR, "%s", err);
            status = 1;
        } else {
            log_msg(LOG_INFO, "metrics on http://%s (port %d)/metrics", s.metrics_listen,
                    metrics_port(metrics));
        }
    }
    if (!status) {
        struct drain d = {r, listeners, s.nlisten, s.drain_timeout, {0}, 0};
        ev_timer_init(&d.poll, drain_poll, 0, 0.02);
        d.poll.data = &d;
        ev_signal sigint, sigterm;
        ev_signal_init(&sigint, on_signal, SIGINT);
        ev_signal_init(&sigterm, on_signal, SIGTERM);
        sigint.data = sigterm.data = &d;
        ev_signal_start(loop, &sigint);
        ev_signal_start(loop, &sigterm);
        struct reload rl = {&s, r};
        ev_signal sighup;
        ev_signal_init(&sighup, on_hup, SIGHUP);
        sighup.data = &rl;
        ev_signal_start(loop, &sighup);
        log_msg(LOG_INFO, "amp-broker %s ready", amp_version());
        ev_run(loop, 0);
        ev_signal_stop(loop, &sigint);
        ev_signal_stop(loop, &sigterm);
        ev_signal_stop(loop, &sighup);
        ev_timer_stop(loop, &d.poll);
    }
    metrics_free(metrics);
    router_count_listeners(r, NULL, 0);
    for (int i = 0; i < s.nlisten; i++)
        amp_listener_free(listeners[i]);
    router_free(r);
    settings_free(&s);
    if (!status)
        log_msg(LOG_INFO, "stopped");
    return status;
}
