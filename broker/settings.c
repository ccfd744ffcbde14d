/* amp-broker's settings: defaults, the configuration file (INI, through
 * inih) read into them with every value checked, and the checks of settings
 * that only make sense together. */
#include "settings.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "log.h"
#include "subindex.h"

void settings_init(struct settings *s)
{
    memset(s, 0, sizeof *s);
    amp_conn_config_init(&s->conn);
    s->router.call_timeout = 30;
    s->router.max_call_timeout = 300;
    s->router.event_queue_bytes = 8u << 20;
    s->router.slow_consumer = SLOW_DROP;
    s->router.max_connections = 65536; /* lowered to fit RLIMIT_NOFILE */
    s->router.max_registrations = 1000;
    s->router.max_commands = 10000;
    s->router.max_subscriptions = 1000;
    s->router.max_subscriptions_total = 100000;
    s->router.max_subscriptions_per_user = 10000;
    s->router.max_registrations_per_user = 2000;
    s->router.max_pattern_tokens = 16;
    s->router.max_command_name = 256;
    s->router.commands_list_budget = 100000;
    /* Queued output and partial input across all connections: 64 boxes of
     * the largest size (max_box_bytes) at once, a small share of a server's
     * memory; raise it with the memory the broker may use. */
    s->router.max_queued_bytes = 256u << 20;
    s->conn.box_timeout = 30;
    s->router.login_timeout = 2;
    s->router.max_calls_in_flight = 10000;
    s->router.keepalive = 60;
    s->router.output_soft_cap = 4u << 20; /* below event_queue_bytes: see check_limits */
    s->router.output_soft_seconds = 10;
    s->router.login_limits.max_keys = 16;
    s->router.login_limits.max_box_bytes = 4096;
    s->drain_timeout = 10;
    s->router.login_workers = 2;
    s->router.max_pending_logins = 64;
    s->router.max_pending_logins_per_address = 4;
    s->router.login_throttle_after = 5;
    s->router.login_throttle_max = 30;
    s->router.max_connections_per_user = 256;
}

void settings_free(struct settings *s)
{
    for (int i = 0; i < s->nowned; i++)
        free(s->owned[i]);
    for (int i = 0; i < 4; i++)
        free(s->auth_str[i]);
    for (int i = 0; i < 3; i++)
        free(s->cert_match[i]);
    free(s->metrics_listen);
}

/* The first bad setting of the file: its line and a message that names it
 * and says what is allowed. Returns 0, for the handler to return. */
static int refuse(struct settings *s, const char *fmt, ...)
{
    if (!s->bad_line) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->why, sizeof s->why, fmt, ap);
        va_end(ap);
        s->bad_line = s->line;
    }
    return 0;
}

/* A whole number in [min, max]: 0 and *out set, or -1. Digits only: no
 * sign (strtoull would read "-1" as 2^64 - 1), no space, not empty. */
static int parse_size(const char *value, size_t min, size_t max, size_t *out)
{
    char *end;
    errno = 0;
    if (*value < '0' || *value > '9')
        return -1;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* A whole number in [min, max] into *out; else refused, 0. */
static int count_setting(struct settings *s, const char *name, const char *value, size_t min,
                         size_t max, size_t *out)
{
    if (!parse_size(value, min, max, out))
        return 1;
    return refuse(s, "%s must be a whole number from %zu to %zu", name, min, max);
}

#define MAX_SECONDS 86400.0 /* a day: longer is a mistake, not a wish */

/* Seconds from 0 (zero_means set: allowed, and what 0 does) or above 0 (zero_means NULL)
 * up to MAX_SECONDS, as a plain decimal number: no sign, no hex, no nan or
 * inf, nothing that overflows (1e400). 1 and *out set, else refused, 0. */
static int seconds_setting(struct settings *s, const char *name, const char *value,
                           const char *zero_means, double *out)
{
    char *end;
    errno = 0;
    double v = (*value >= '0' && *value <= '9') || *value == '.' ? strtod(value, &end) : -1;
    if (v >= 0 && !errno && !*end && !strpbrk(value, "xX") && isfinite(v) &&
        v <= MAX_SECONDS && (v > 0 || zero_means)) {
        *out = v;
        return 1;
    }
    if (zero_means)
        return refuse(s, "%s must be a number of seconds from 0 (%s) to %.0f", name,
                      zero_means, MAX_SECONDS);
    return refuse(s, "%s must be a number of seconds above 0, at most %.0f", name, MAX_SECONDS);
}

/* [auth] settings past the files: certificates and login limits. */
static int auth_setting(struct settings *s, const char *name, const char *value)
{
    static const char *match_keys[] = {"cert_identity_suffix", "cert_identity_domain",
                                       "cert_identity_prefix"};
    router_config *rc = &s->router;
    size_t v;
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, match_keys[i])) {
            free(s->cert_match[i]);
            s->cert_match[i] = strdup(value);
            return 1;
        }
    if (!strcmp(name, "cert_identity")) {
        int m = cert_mode_parse(value);
        if (m < 0)
            return refuse(s, "cert_identity is cn, san-dns, san-email, san-uri or none");
        rc->cert_identity.mode = (enum cert_mode)m;
        return 1;
    }
    if (!strcmp(name, "login_timeout"))
        return seconds_setting(s, name, value, NULL, &rc->login_timeout);
    if (!strcmp(name, "login_throttle_max"))
        return seconds_setting(s, name, value, "off", &rc->login_throttle_max);
    if (!strcmp(name, "login_workers")) {
        if (!count_setting(s, name, value, 1, 64, &v))
            return 0;
        rc->login_workers = (int)v;
    } else if (!strcmp(name, "max_pending_logins")) {
        return count_setting(s, name, value, 1, 1000000, &rc->max_pending_logins);
    } else if (!strcmp(name, "max_pending_logins_per_address")) {
        return count_setting(s, name, value, 1, 1000000, &rc->max_pending_logins_per_address);
    } else if (!strcmp(name, "login_throttle_after")) {
        if (!count_setting(s, name, value, 1, 1000000, &v))
            return 0;
        rc->login_throttle_after = (unsigned)v;
    } else if (!strcmp(name, "max_connections_per_user")) {
        return count_setting(s, name, value, 1, 100000000, &rc->max_connections_per_user);
    } else {
        return refuse(s, "unknown setting '%s' in [auth]", name);
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

#define BYTES_MAX ((size_t)1 << 40) /* 1 TiB: any byte count above is a typo */

/* [broker] settings that are a whole number in a range (0 allowed only
 * where it means off), and those that are seconds. */
static int number_setting(struct settings *s, const char *name, const char *value)
{
    router_config *rc = &s->router;
    const struct {
        const char *name;
        size_t *dst;
        size_t min, max;
    } counts[] = {
        {"event_queue_bytes", &rc->event_queue_bytes, 1, BYTES_MAX},
        {"max_box_bytes", &s->conn.limits.max_box_bytes, 2, BYTES_MAX},
        {"max_keys", &s->conn.limits.max_keys, 1, 1000000},
        {"output_hard_cap", &s->conn.output_hard_cap, 1, BYTES_MAX},
        {"max_calls_in_flight", &rc->max_calls_in_flight, 1, 100000000},
        {"login_max_box_bytes", &rc->login_limits.max_box_bytes, 2, BYTES_MAX},
        {"output_soft_cap", &rc->output_soft_cap, 0, BYTES_MAX}, /* 0: off */
        {"max_connections", &rc->max_connections, 1, 1 << 20},
        {"max_commands", &rc->max_commands, 1, 100000000},
        {"max_registrations", &rc->max_registrations, 1, 100000000},
        {"max_subscriptions", &rc->max_subscriptions, 1, 100000000},
        {"max_subscriptions_total", &rc->max_subscriptions_total, 1, 100000000},
        {"max_subscriptions_per_user", &rc->max_subscriptions_per_user, 1, 100000000},
        {"max_registrations_per_user", &rc->max_registrations_per_user, 1, 100000000},
        {"max_pattern_tokens", &rc->max_pattern_tokens, 1, SUBINDEX_MAX_TOKENS},
        {"max_queued_bytes", &rc->max_queued_bytes, 1, BYTES_MAX},
        {"max_command_name", &rc->max_command_name, 1, AMP_MAX_VALUE_LEN},
        {"commands_list_budget", &rc->commands_list_budget, 1, 100000000},
    };
    const struct {
        const char *name;
        double *dst;
        const char *zero_means; /* NULL: must be above 0 */
    } seconds[] = {
        {"call_timeout", &rc->call_timeout, NULL},
        {"max_call_timeout", &rc->max_call_timeout, NULL},
        {"output_soft_seconds", &rc->output_soft_seconds, NULL},
        {"box_timeout", &s->conn.box_timeout, NULL},
        {"handshake_timeout", &s->conn.handshake_timeout, NULL},
        {"drain_timeout", &s->drain_timeout, "exit at once"},
    };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (!strcmp(name, counts[i].name)) {
            s->max_connections_set |= counts[i].dst == &rc->max_connections;
            return count_setting(s, name, value, counts[i].min, counts[i].max, counts[i].dst);
        }
    for (size_t i = 0; i < sizeof seconds / sizeof seconds[0]; i++)
        if (!strcmp(name, seconds[i].name))
            return seconds_setting(s, name, value, seconds[i].zero_means, seconds[i].dst);
    if (!strcmp(name, "keepalive")) { /* whole seconds: TCP_KEEPIDLE takes 1 to 32767 */
        size_t v;
        if (parse_size(value, 0, 32767, &v))
            return refuse(s, "keepalive must be whole seconds from 0 (off) to 32767");
        rc->keepalive = (double)v;
        return 1;
    }
    return refuse(s, "unknown setting '%s'", name);
}

static int on_setting(void *ud, const char *section, const char *name, const char *value)
{
    struct settings *s = ud;
    if (!strcmp(section, "auth")) {
        static const char *keys[] = {"password_file", "tokens_file", "acl_file", "anonymous"};
        s->auth_on = 1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(name, keys[i])) {
                free(s->auth_str[i]);
                s->auth_str[i] = strdup(value);
                return 1;
            }
        return auth_setting(s, name, value);
    }
    if (strcmp(section, "broker") && strcmp(section, ""))
        return refuse(s, "unknown section [%s] (the sections are [broker] and [auth])",
                      section);
    if (!strcmp(name, "listen")) {
        if (s->cli_listen)
            return 1;
        if (s->nlisten == MAX_LISTEN || s->nowned == MAX_LISTEN)
            return refuse(s, "listen: at most %d endpoints", MAX_LISTEN);
        s->listen[s->nlisten++] = s->owned[s->nowned++] = strdup(value);
    } else if (!strcmp(name, "slow_consumer")) {
        if (!strcmp(value, "drop"))
            s->router.slow_consumer = SLOW_DROP;
        else if (!strcmp(value, "disconnect"))
            s->router.slow_consumer = SLOW_DISCONNECT;
        else
            return refuse(s, "slow_consumer is drop or disconnect");
    } else if (!strcmp(name, "metrics_listen")) {
        free(s->metrics_listen);
        s->metrics_listen = strdup(value);
    } else if (!strcmp(name, "log_level")) {
        int l = log_level_parse(value);
        if (l < 0)
            return refuse(s, "log_level is error, warn, info or debug");
        log_threshold = (enum log_level)l;
    } else {
        return number_setting(s, name, value);
    }
    return 1;
}

/* Lines for inih, counted so that a bad setting's message names its line. */
struct config_file {
    FILE *f;
    struct settings *s;
};

static char *read_line(char *buf, int n, void *stream)
{
    struct config_file *cf = stream;
    cf->s->line++;
    return fgets(buf, n, cf->f);
}

/* Read FILE into s: 0, or a message and -1. */
static int read_config(const char *path, struct settings *s)
{
    struct config_file cf = {fopen(path, "r"), s};
    if (!cf.f) {
        fprintf(stderr, "amp-broker: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    int line = ini_parse_stream(read_line, &cf, on_setting, s);
    fclose(cf.f);
    if (!line)
        return 0;
    if (line == s->bad_line)
        fprintf(stderr, "amp-broker: %s:%d: bad setting: %s\n", path, line, s->why);
    else /* inih's own: neither NAME = VALUE nor [section] */
        fprintf(stderr, "amp-broker: %s:%d: bad setting: not NAME = VALUE or [section]\n",
                path, line);
    return -1;
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

/* Every endpoint well-formed before anything starts: a malformed one is a
 * bad command line or configuration (2), not a failure to listen (1). */
static int check_endpoints(const struct settings *s)
{
    char err[512];
    amp_endpoint ep;
    for (int i = 0; i < s->nlisten; i++) {
        if (amp_endpoint_parse(s->listen[i], 1, &ep, err, sizeof err) != AMP_OK) {
            fprintf(stderr, "amp-broker: %s\n", err);
            return -1;
        }
        amp_endpoint_free(&ep);
    }
    if (!s->metrics_listen)
        return 0;
    if (amp_endpoint_parse(s->metrics_listen, 1, &ep, err, sizeof err) != AMP_OK) {
        fprintf(stderr, "amp-broker: metrics_listen: %s\n", err);
        return -1;
    }
    int tcp = ep.kind == AMP_ENDPOINT_TCP;
    amp_endpoint_free(&ep);
    if (!tcp)
        fprintf(stderr, "amp-broker: metrics_listen must be a tcp: endpoint\n");
    return tcp ? 0 : -1;
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

auth *settings_auth(const struct settings *s)
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

int settings_read(struct settings *s, const char *path)
{
    return config_lines_too_long(path) || read_config(path, s) ? -1 : 0;
}

int settings_finish(struct settings *s)
{
    if (!s->nlisten)
        s->listen[s->nlisten++] = DEFAULT_LISTEN;
    if (check_endpoints(s))
        return -1;
    s->router.limits = s->conn.limits;
    return check_limits(s) || fit_connections(s) || cert_rule_setup(s) ? -1 : 0;
}
