/* amp-broker: the AMP message bus daemon: the command line, listeners,
 * signals (drain, reload) and the event loop. Settings: settings.c; the
 * bus: router.h. */
#include <ev.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "settings.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: amp-broker [--config FILE] [--listen ENDPOINT]... [--log-level LEVEL]\n"
            "       amp-broker --hash-password < PASSWORD\n"
            "       amp-broker --help | --version\n"
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
            "  --hash-password     read a password (one line) on stdin and print its hash,\n"
            "                      the HASH field of a password file line\n"
            "                      user:role,role:HASH (PBKDF2-SHA256, random salt)\n"
            "\n"
            "Logs go to standard error. SIGTERM and SIGINT drain: listeners close, new\n"
            "calls get SHUTTING_DOWN, calls in flight finish (up to drain_timeout),\n"
            "then the broker exits 0; a second signal exits at once. SIGHUP reloads\n"
            "the [auth] files. Exit status: 0 after a signal, 1 when a well-formed\n"
            "endpoint cannot be listened on, 2 for a bad command line or configuration.\n");
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
    auth *a = settings_auth(rl->s);
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
    settings_init(&s);
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
            size_t len = strcspn(pw, "\r\n");
            if (!pw[len] && len == sizeof pw - 1) { /* fgets cut it: never hash a prefix */
                fprintf(stderr, "amp-broker: --hash-password: the password is longer than "
                        "%zu bytes\n", sizeof pw - 2);
                return 2;
            }
            pw[len] = 0;
            if (!*pw) { /* a hash of nothing would let anyone in as that user */
                fprintf(stderr, "amp-broker: --hash-password: the password is empty\n");
                return 2;
            }
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
    if ((config && settings_read(&s, config)) || settings_finish(&s)) {
        settings_free(&s);
        return 2;
    }
    auth *a = NULL;
    if (s.auth_on && !(a = settings_auth(&s))) { /* never fall back to allowing all */
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
            char url[128];
            log_msg(LOG_INFO, "metrics on %s (port %d)", metrics_url(metrics, url, sizeof url),
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
