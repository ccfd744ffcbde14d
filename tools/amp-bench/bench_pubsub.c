/* amp-bench pubsub: does publishing cost what the matching subscribers
 * cost, whatever the number of subscriptions held? One publisher sends
 * events named EVENT_NAME to one subscriber of that name, first with no
 * other subscription, then with N (100,000) subscriptions that match none
 * of them, and the two rates are compared. Between the two, the N
 * subscriptions are made over the wire, and afterwards removed, both timed.
 * The same runs go through nats-server (its sublist is the reference for a
 * token trie) when it is installed.
 *
 * Every client here speaks the wire protocol raw (bench_net.c), so what is
 * measured is the server. amp-broker is started with a settings file that
 * raises the caps that would refuse the test (max_subscriptions on one
 * connection, max_subscriptions_total) and the event queue limits (so that
 * no event is dropped while the subscriber catches up; a run that drops
 * one fails, since its rate would mean nothing). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amp/amp.h"
#include "bench.h"
#include "bench_net.h"

#define EVENT_NAME "site.b1.f2.temp"
#define NATS_SERVER "/usr/sbin/nats-server"
#define MAX_RUNS 16
#define WAIT_MS 60000 /* a phase that takes longer has lost something */

/* The i-th subscription that does not match EVENT_NAME, in six shapes:
 * four share a prefix with the name (below it, beside it, a '>' on a
 * sibling, a '*' before a literal that differs), two do not. */
static int noise_pattern(size_t i, char *buf, size_t n)
{
    static const char *const shape[] = {"site.b1.f2.temp.%zu", "site.b1.f2.hum%zu",
                                        "site.b1.f%zu.>",      "site.*.f2.t%zu",
                                        "app%zu.events.>",     "dev.%zu.status"};
    size_t k = i % 6, v = i / 6 + (k == 2 ? 3 : 0); /* f3 and up: never f2 */
    return snprintf(buf, n, shape[k], v);
}

/* ---- one server under test ---------------------------------------------------- */

struct server {
    const char *name;
    int amp; /* 0: nats-server */
    pid_t pid, subscriber;
    int port;
    int ctl, done;     /* to the subscriber: events to expect; from it: a byte when had */
    struct bench_io *pub, *noise; /* publisher's and the N subscriptions' connections */
    char *events, *subs, *unsubs; /* wire bytes, made once */
    size_t events_len, subs_len, unsubs_len;
    uint64_t dropped;  /* events_dropped from amp.Stats, last seen */
    uint64_t held;     /* subscriptions from amp.Stats, last seen */
};

static void amp_call_box(struct bench_io *io, size_t tag, const char *cmd, const char *key,
                         const char *value, size_t n)
{
    char t[24];
    int tn = snprintf(t, sizeof t, "%zu", tag);
    rawbox_put(io, "_ask", t, (size_t)tn);
    rawbox_put(io, "_command", cmd, strlen(cmd));
    if (key)
        rawbox_put(io, key, value, n);
    rawbox_end(io);
}

/* Takes over what was queued in scratch as a wire buffer of its own. */
static char *take(struct bench_io *scratch, size_t *len)
{
    char *p = scratch->out;
    *len = scratch->olen;
    scratch->out = NULL;
    scratch->olen = scratch->ocap = 0;
    return p;
}

static void make_wire(struct server *s, size_t events, size_t subs)
{
    static struct bench_io b; /* only its output buffer is used */
    char pat[64];
    for (size_t i = 0; i < events; i++) {
        if (s->amp) {
            rawbox_put(&b, "_command", EVENT_NAME, strlen(EVENT_NAME));
            rawbox_put(&b, "a", "13", 2);
            rawbox_put(&b, "b", "81", 2);
            rawbox_end(&b);
        } else {
            static const char pub[] = "PUB " EVENT_NAME " 9\r\na=13 b=81\r\n";
            io_put(&b, pub, sizeof pub - 1);
        }
    }
    if (s->amp) /* answered once every event before it is handled */
        amp_call_box(&b, 1, "amp.Stats", NULL, NULL, 0);
    else
        io_put(&b, "PING\r\n", 6);
    s->events = take(&b, &s->events_len);
    for (int un = 0; un < 2; un++) {
        for (size_t i = 0; i < subs; i++) {
            int n = noise_pattern(i, pat, sizeof pat);
            char line[128];
            if (s->amp)
                amp_call_box(&b, i + 1, un ? "amp.Unsubscribe" : "amp.Subscribe", "pattern",
                             pat, (size_t)n);
            else if (un)
                io_put(&b, line, (size_t)snprintf(line, sizeof line, "UNSUB %zu\r\n", i + 10));
            else
                io_put(&b, line,
                       (size_t)snprintf(line, sizeof line, "SUB %s %zu\r\n", pat, i + 10));
        }
        if (un)
            s->unsubs = take(&b, &s->unsubs_len);
        else
            s->subs = take(&b, &s->subs_len);
    }
}

/* ---- the subscriber (a child process) ------------------------------------------ */

/* Subscribe to EVENT_NAME, say so, then for each count read from ctl,
 * read that many events and say so again. */
static void subscriber(struct server *s, int ctl, int done)
{
    static struct bench_io io;
    struct rawbox_pair pairs[RAWBOX_MAX_PAIRS];
    size_t np, n, subject_n;
    char subject[256], reply[256], ok = 1;
    if (s->amp) {
        io_init(&io, bench_tcp_connect(s->port));
        amp_call_box(&io, 1, "amp.Subscribe", "pattern", EVENT_NAME, strlen(EVENT_NAME));
        if (io.fd < 0 || io_flush(&io) || rawbox_read(&io, pairs, &np) ||
            !rawbox_find(pairs, np, "_answer"))
            _exit(1);
    } else {
        if (nats_open(&io, s->port))
            _exit(1);
        static const char sub[] = "SUB " EVENT_NAME " 1\r\n";
        io_put(&io, sub, sizeof sub - 1);
        if (nats_sync(&io))
            _exit(1);
    }
    if (write(done, &ok, 1) != 1)
        _exit(1);
    while (read(ctl, &n, sizeof n) == sizeof n) {
        for (size_t i = 0; i < n; i++)
            if (s->amp ? rawbox_read(&io, pairs, &np) : nats_msg(&io, subject, reply, &subject_n))
                _exit(1);
        if (write(done, &ok, 1) != 1)
            _exit(1);
    }
    _exit(0);
}

static int wait_byte(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    char b;
    return poll(&p, 1, WAIT_MS) == 1 && read(fd, &b, 1) == 1 ? 0 : -1;
}

static int start_subscriber(struct server *s)
{
    int ctl[2], done[2];
    if (pipe(ctl) || pipe(done))
        return -1;
    s->subscriber = fork();
    if (s->subscriber == 0) {
        close(ctl[1]);
        close(done[0]);
        subscriber(s, ctl[0], done[1]);
    }
    close(ctl[0]);
    close(done[1]);
    s->ctl = ctl[1];
    s->done = done[0];
    return s->subscriber > 0 ? wait_byte(s->done) : -1;
}

/* ---- timed phases --------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static uint64_t stat_of(const struct rawbox_pair *pairs, size_t n, const char *key)
{
    const struct rawbox_pair *p = rawbox_find(pairs, n, key);
    char num[32] = "";
    if (p && p->value_len < sizeof num)
        memcpy(num, p->value, p->value_len);
    return strtoull(num, NULL, 10);
}

/* amp-broker's acknowledgement of the events: amp.Stats' answer (noting
 * what it says about drops and subscriptions). */
static int read_stats(struct server *s)
{
    struct rawbox_pair pairs[RAWBOX_MAX_PAIRS];
    size_t n;
    if (rawbox_read(s->pub, pairs, &n) || !rawbox_find(pairs, n, "_answer"))
        return -1;
    s->dropped = stat_of(pairs, n, "events_dropped");
    s->held = stat_of(pairs, n, "subscriptions");
    return 0;
}

/* nats-server's: the PONG to the PING after them. */
static int read_pong(struct bench_io *io)
{
    char *l;
    while ((l = io_line(io)) && strcmp(l, "PONG"))
        if (!strncmp(l, "-ERR", 4))
            return -1;
    return l ? 0 : -1;
}

struct rates {
    double delivered, calls; /* events/s had by the subscriber; publish calls/s handled */
};

/* Publish `events` and time both ends: the publisher's acknowledgement,
 * which comes once the server has handled every event, and the
 * subscriber's report of the last one. */
static int timed_publish(struct server *s, size_t events, struct rates *r)
{
    uint64_t dropped = s->dropped;
    if (write(s->ctl, &events, sizeof events) != sizeof events)
        return -1;
    double t0 = bench_now(), t_ack = 0, t_had = 0;
    if (write_all(s->pub->fd, s->events, s->events_len))
        return -1;
    struct pollfd p[2] = {{s->pub->fd, POLLIN, 0}, {s->done, POLLIN, 0}};
    while (!t_ack || !t_had) {
        if (poll(p, 2, WAIT_MS) < 1)
            return -1;
        if (!t_ack && p[0].revents) {
            if (s->amp ? read_stats(s) : read_pong(s->pub))
                return -1;
            t_ack = bench_now();
            p[0].fd = -1;
        }
        if (!t_had && p[1].revents) {
            if (wait_byte(s->done))
                return -1;
            t_had = bench_now();
            p[1].fd = -1;
        }
    }
    if (s->dropped != dropped) {
        fprintf(stderr, "amp-bench: amp-broker dropped %llu events\n",
                (unsigned long long)(s->dropped - dropped));
        return -1;
    }
    r->calls = (double)events / (t_ack - t0);
    r->delivered = (double)events / (t_had - t0);
    return 0;
}

/* Send `len` bytes of pipelined calls and read the `calls` answers at the
 * same time (neither side waits for the other to drain). */
static int pump_amp(struct bench_io *io, const char *out, size_t len, size_t calls)
{
    int fl = fcntl(io->fd, F_GETFL);
    fcntl(io->fd, F_SETFL, fl | O_NONBLOCK);
    size_t off = 0, answered = 0;
    int bad = 0;
    while (answered < calls && !bad) {
        struct pollfd p = {io->fd, POLLIN | (off < len ? POLLOUT : 0), 0};
        if (poll(&p, 1, WAIT_MS) != 1)
            break;
        if (p.revents & POLLOUT) {
            ssize_t w = write(io->fd, out + off, len - off);
            if (w > 0)
                off += (size_t)w;
            else if (errno != EAGAIN)
                break;
        }
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        memmove(io->in, io->in + io->pos, io->len - io->pos);
        io->len -= io->pos;
        io->pos = 0;
        ssize_t r = read(io->fd, io->in + io->len, sizeof io->in - io->len);
        if (r == 0 || (r < 0 && errno != EAGAIN))
            break;
        io->len += r > 0 ? (size_t)r : 0;
        struct rawbox_pair pairs[RAWBOX_MAX_PAIRS];
        size_t n;
        long got;
        while ((got = rawbox_parse((const uint8_t *)io->in + io->pos, io->len - io->pos, pairs,
                                   &n)) > 0) {
            io->pos += (size_t)got;
            answered++;
            const struct rawbox_pair *e = rawbox_find(pairs, n, "_error_description");
            if (e) {
                fprintf(stderr, "amp-bench: amp-broker refused: %.*s\n", (int)e->value_len,
                        (const char *)e->value);
                bad = 1;
                break;
            }
        }
        if (got < 0)
            break;
    }
    fcntl(io->fd, F_SETFL, fl);
    return answered == calls && !bad ? 0 : -1;
}

/* Make (or remove) the N subscriptions; the seconds it took, or -1. */
static double timed_subscriptions(struct server *s, size_t subs, int un)
{
    const char *wire = un ? s->unsubs : s->subs;
    size_t len = un ? s->unsubs_len : s->subs_len;
    double t0 = bench_now();
    int bad;
    if (s->amp) {
        bad = pump_amp(s->noise, wire, len, subs);
    } else {
        bad = write_all(s->noise->fd, wire, len) || nats_sync(s->noise);
    }
    return bad ? -1 : bench_now() - t0;
}

/* ---- one run ------------------------------------------------------------------- */

struct figures {
    struct rates base, loaded;
    double sub_s, unsub_s, bytes_per_sub;
};

static int run(struct server *s, size_t events, size_t subs, struct figures *f)
{
    if (timed_publish(s, events, &f->base))
        return -1;
    long rss0 = bench_rss_kb(s->pid);
    if ((f->sub_s = timed_subscriptions(s, subs, 0)) < 0)
        return -1;
    f->bytes_per_sub = (double)(bench_rss_kb(s->pid) - rss0) * 1024 / (double)subs;
    if (timed_publish(s, events, &f->loaded))
        return -1;
    if (s->amp && s->held != subs + 1) {
        fprintf(stderr, "amp-bench: amp-broker holds %llu subscriptions, not %zu\n",
                (unsigned long long)s->held, subs + 1);
        return -1;
    }
    if ((f->unsub_s = timed_subscriptions(s, subs, 1)) < 0)
        return -1;
    return 0;
}

/* ---- starting and stopping ------------------------------------------------------ */

static int broker_config(const char *dir, int port, size_t subs, char *path, size_t n)
{
    char text[1024];
    /* room for the N, the subscriber's and some slack; events queue far
     * beyond what a phase sends, so none is dropped while the subscriber
     * catches up (output_soft_cap must stay below event_queue_bytes) */
    snprintf(text, sizeof text,
             "[broker]\nlisten = tcp:%d:interface=127.0.0.1\nlog_level = error\n"
             "max_subscriptions = %zu\nmax_subscriptions_total = %zu\n"
             "event_queue_bytes = 1073741824\noutput_soft_cap = 536870912\n"
             "output_hard_cap = 2147483648\nmax_queued_bytes = 4294967296\n",
             port, subs + 16, subs + 16);
    return bench_write_file(dir, "broker.conf", text, path, n);
}

static int start(struct server *s, const char *broker, const char *dir, size_t subs)
{
    s->port = bench_free_port();
    char port[16], conf[512];
    snprintf(port, sizeof port, "%d", s->port);
    if (s->amp) {
        if (broker_config(dir, s->port, subs, conf, sizeof conf))
            return -1;
        char *argv[] = {(char *)broker, "--config", conf, NULL};
        s->pid = bench_spawn(argv);
    } else {
        char *argv[] = {NATS_SERVER, "-a", "127.0.0.1", "-p", port, NULL};
        s->pid = bench_spawn(argv);
    }
    s->pub = calloc(1, sizeof *s->pub);
    s->noise = calloc(1, sizeof *s->noise);
    if (!s->pub || !s->noise)
        return -1;
    s->pub->fd = s->noise->fd = -1;
    if (start_subscriber(s))
        return -1;
    if (s->amp) {
        io_init(s->pub, bench_tcp_connect(s->port));
        io_init(s->noise, bench_tcp_connect(s->port));
        return s->pub->fd < 0 || s->noise->fd < 0 ? -1 : 0;
    }
    return nats_open(s->pub, s->port) || nats_open(s->noise, s->port) ? -1 : 0;
}

static void finish(struct server *s)
{
    if (s->subscriber > 0) {
        kill(s->subscriber, SIGKILL);
        waitpid(s->subscriber, NULL, 0);
    }
    bench_stop(s->pid);
    struct bench_io *conns[2] = {s->pub, s->noise};
    for (int i = 0; i < 2; i++)
        if (conns[i]) {
            if (conns[i]->fd >= 0)
                close(conns[i]->fd);
            io_release(conns[i]);
            free(conns[i]);
        }
    free(s->events);
    free(s->subs);
    free(s->unsubs);
}

/* ---- report -------------------------------------------------------------------- */

static double med(struct figures *f, int runs, size_t offset)
{
    double v[MAX_RUNS];
    for (int i = 0; i < runs; i++)
        v[i] = *(double *)((char *)&f[i] + offset);
    return bench_median(v, runs);
}

/* The median of the per-run ratios loaded / base, and their range. */
static double ratio(struct figures *f, int runs, int calls, double *lo, double *hi)
{
    double v[MAX_RUNS];
    for (int i = 0; i < runs; i++)
        v[i] = calls ? f[i].loaded.calls / f[i].base.calls
                     : f[i].loaded.delivered / f[i].base.delivered;
    double m = bench_median(v, runs); /* sorts v */
    *lo = v[0];
    *hi = v[runs - 1];
    return m;
}

#define FIG(field) offsetof(struct figures, field)

static void report(struct server *sv, int nsv, struct figures f[][MAX_RUNS], int runs,
                   size_t events, size_t subs)
{
    printf("amp-bench pubsub: libamp %s; one publisher -> one subscriber of %s, with 0\n"
           "and with %zu subscriptions matching none of its events (4 in 6 share a prefix\n"
           "with the name); %zu events a phase; loopback TCP, median of %d runs\n\n",
           amp_version(), EVENT_NAME, subs, events, runs);
    printf("%-44s", "");
    for (int k = 0; k < nsv; k++)
        printf(" %22s", sv[k].name);
    printf("\n");
    static const struct {
        const char *label;
        size_t off;
        int ratio; /* -1: none; 0: delivered; 1: calls */
        const char *fmt;
        double scale;
    } rows[] = {
        {"events/s delivered, 0 other subscriptions", FIG(base.delivered), -1, "%22.0f", 1},
        {"events/s delivered, N other subscriptions", FIG(loaded.delivered), 0, "%22.0f", 1},
        {"publish calls/s, 0 other subscriptions", FIG(base.calls), -1, "%22.0f", 1},
        {"publish calls/s, N other subscriptions", FIG(loaded.calls), 1, "%22.0f", 1},
        {"N subscribes over the wire, ms", FIG(sub_s), -1, "%22.1f", 1e3},
        {"N unsubscribes over the wire, ms", FIG(unsub_s), -1, "%22.1f", 1e3},
        {"server memory per subscription, bytes", FIG(bytes_per_sub), -1, "%22.0f", 1},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        printf("%-44s", rows[r].label);
        for (int k = 0; k < nsv; k++)
            printf(rows[r].fmt, med(f[k], runs, rows[r].off) * rows[r].scale), printf(" ");
        printf("\n");
        if (rows[r].ratio < 0)
            continue;
        printf("%-44s", "  ratio N / 0 (lowest, highest run)");
        for (int k = 0; k < nsv; k++) {
            double lo, hi, m = ratio(f[k], runs, rows[r].ratio, &lo, &hi);
            char cell[64];
            snprintf(cell, sizeof cell, "%.2fx (%.2f, %.2f)", m, lo, hi);
            printf("%22s ", cell);
        }
        printf("\n");
    }
    printf("\n(N = %zu, all on one connection: amp-broker started with max_subscriptions\n"
           "and max_subscriptions_total raised to %zu; per-run ratios, then their median)\n",
           subs, subs + 16);
}

/* ---- main ---------------------------------------------------------------------- */

static int usage(FILE *out, int code)
{
    fprintf(out,
            "usage: amp-bench pubsub [--runs N] [--subs N] [--events N] [--quick]\n"
            "                        [--broker PATH] [--no-nats]\n\n"
            "Publishing to one matching subscriber with 0 and with N (default 100,000)\n"
            "subscriptions that match nothing (the ratio shows what they cost), and the\n"
            "time to make and remove the N over the wire; amp-broker (PATH, default the\n"
            "one built with amp-bench) beside nats-server. Medians of N runs (default 5).\n");
    return code;
}

int bench_pubsub(int argc, char **argv)
{
    int runs = 5, nats = access(NATS_SERVER, X_OK) == 0;
    size_t subs = 100000, events = 1000000;
    const char *broker = AMP_BROKER_PATH;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--subs") && i + 1 < argc)
            subs = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--events") && i + 1 < argc)
            events = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            broker = argv[++i];
        else if (!strcmp(argv[i], "--no-nats"))
            nats = 0;
        else if (!strcmp(argv[i], "--quick")) {
            runs = 1;
            subs = 10000;
            events = 20000;
        } else
            return usage(strcmp(argv[i], "--help") ? stderr : stdout,
                         strcmp(argv[i], "--help") ? 2 : 0);
    }
    if (runs < 1 || runs > MAX_RUNS || !subs || !events)
        return usage(stderr, 2);
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/amp-bench-pubsub.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("amp-bench: mkdtemp");
        return 1;
    }
    struct server sv[2] = {{.name = "amp-broker", .amp = 1}, {.name = "nats-server"}};
    int nsv = nats ? 2 : 1, bad = 0;
    static struct figures f[2][MAX_RUNS];
    for (int k = 0; k < nsv && !bad; k++) {
        make_wire(&sv[k], events, subs);
        if (start(&sv[k], broker, dir, subs)) {
            fprintf(stderr, "amp-bench: %s did not start\n", sv[k].name);
            bad = 1;
        }
    }
    /* runs interleave the servers, so that the machine's noise falls on both */
    for (int i = 0; i < runs && !bad; i++)
        for (int k = 0; k < nsv && !bad; k++)
            if (run(&sv[k], events, subs, &f[k][i])) {
                fprintf(stderr, "amp-bench: %s run %d failed\n", sv[k].name, i + 1);
                bad = 1;
            }
    for (int k = 0; k < nsv; k++)
        finish(&sv[k]);
    char conf[600];
    snprintf(conf, sizeof conf, "%s/broker.conf", dir);
    unlink(conf);
    rmdir(dir);
    if (bad)
        return 1;
    report(sv, nsv, f, runs, events, subs);
    return 0;
}
