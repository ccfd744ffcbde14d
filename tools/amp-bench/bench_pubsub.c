/* amp-bench pubsub: does publishing cost what the matching subscribers
 * cost, whatever the number of subscriptions held? One publisher sends
 * events named EVENT_NAME to one subscriber of that name through a server
 * holding no other subscription and through a second one holding N
 * (100,000) subscriptions that match none of them, and the two are
 * compared: events/s, publish calls/s and the server's CPU time per event.
 * The two servers run side by side and each run publishes through both,
 * one after the other (in turn first), so that the machine's noise falls
 * on both alike. Each run also removes the N subscriptions over the wire
 * and makes them again, both timed. The same runs go through two
 * nats-servers (its sublist is the reference for a token trie) when it is
 * installed.
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

/* What the clients send, made once for each protocol. */
struct wire {
    char *events, *subs, *unsubs;
    size_t events_len, subs_len, unsubs_len;
};

struct server {
    const char *name;
    int amp; /* 0: nats-server */
    pid_t pid, subscriber;
    int port;
    int ctl, done;     /* to the subscriber: events to expect; from it: a byte when had */
    struct bench_io *pub, *noise; /* publisher's and the N subscriptions' connections */
    const struct wire *wire;
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

static void make_wire(struct wire *s, int amp, size_t events, size_t subs)
{
    static struct bench_io b; /* only its output buffer is used */
    char pat[64];
    for (size_t i = 0; i < events; i++) {
        if (amp) {
            rawbox_put(&b, "_command", EVENT_NAME, strlen(EVENT_NAME));
            rawbox_put(&b, "a", "13", 2);
            rawbox_put(&b, "b", "81", 2);
            rawbox_end(&b);
        } else {
            static const char pub[] = "PUB " EVENT_NAME " 9\r\na=13 b=81\r\n";
            io_put(&b, pub, sizeof pub - 1);
        }
    }
    if (amp) /* answered once every event before it is handled */
        amp_call_box(&b, 1, "amp.Stats", NULL, NULL, 0);
    else
        io_put(&b, "PING\r\n", 6);
    s->events = take(&b, &s->events_len);
    for (int un = 0; un < 2; un++) {
        for (size_t i = 0; i < subs; i++) {
            int n = noise_pattern(i, pat, sizeof pat);
            char line[128];
            if (amp)
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
    double cpu_ns;           /* the server's CPU time (all threads) per event */
};

/* CPU seconds a process has used, all threads (clock ticks: 10 ms here,
 * so the events of a run should take the server a good part of a second;
 * read once before and once after them, as the server idles in between). */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                     &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Publish `events` (one slice) and time both ends: the publisher's
 * acknowledgement, which comes once the server has handled every event,
 * and the subscriber's report of the last one; the seconds are added to
 * *ack and *had. */
static int timed_publish(struct server *s, size_t events, double *ack, double *had)
{
    uint64_t dropped = s->dropped;
    if (write(s->ctl, &events, sizeof events) != sizeof events)
        return -1;
    double t0 = bench_now(), t_ack = 0, t_had = 0;
    if (write_all(s->pub->fd, s->wire->events, s->wire->events_len))
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
    *ack += t_ack - t0;
    *had += t_had - t0;
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
    const char *wire = un ? s->wire->unsubs : s->wire->subs;
    size_t len = un ? s->wire->unsubs_len : s->wire->subs_len;
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
    double sub_s, unsub_s;
};

/* What amp-broker's amp.Stats said it holds: the subscriber's pattern,
 * and the N on the loaded one. */
static int holds(const struct server *s, size_t want)
{
    if (!s->amp || s->held == want)
        return 0;
    fprintf(stderr, "amp-bench: amp-broker holds %llu subscriptions, not %zu\n",
            (unsigned long long)s->held, want);
    return -1;
}

/* sv[0] holds no other subscription, sv[1] the N. The events go in
 * slices, through one server then the other (each first in turn), so
 * that a burst of load from elsewhere on the machine falls on both. */
static int run(struct server sv[2], size_t events, int slices, size_t subs, struct figures *f)
{
    double ack[2] = {0}, had[2] = {0}, cpu0[2];
    size_t slice = events / (size_t)slices;
    for (int j = 0; j < 2; j++)
        cpu0[j] = cpu_seconds(sv[j].pid); /* each idles while the other works */
    for (int i = 0; i < slices; i++)
        for (int k = 0; k < 2; k++) {
            int j = (k + i) % 2;
            if (timed_publish(&sv[j], slice, &ack[j], &had[j]) ||
                holds(&sv[j], j ? subs + 1 : 1))
                return -1;
        }
    for (int j = 0; j < 2; j++) {
        struct rates *r = j ? &f->loaded : &f->base;
        double n = (double)(slice * (size_t)slices);
        r->calls = n / ack[j];
        r->delivered = n / had[j];
        r->cpu_ns = (cpu_seconds(sv[j].pid) - cpu0[j]) / n * 1e9;
    }
    if ((f->unsub_s = timed_subscriptions(&sv[1], subs, 1)) < 0 ||
        (f->sub_s = timed_subscriptions(&sv[1], subs, 0)) < 0)
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
    char name[64];
    snprintf(name, sizeof name, "broker-%d.conf", port);
    return bench_write_file(dir, name, text, path, n);
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
    if (!s->pid)
        return;
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
}

/* ---- report -------------------------------------------------------------------- */

static double med(struct figures *f, int runs, size_t offset)
{
    double v[MAX_RUNS];
    for (int i = 0; i < runs; i++)
        v[i] = *(double *)((char *)&f[i] + offset);
    return bench_median(v, runs);
}

/* The median of the per-run ratios loaded / base, and their range; -1 if
 * there is none (a phase too short for the CPU clock's ticks). */
static double ratio(struct figures *f, int runs, int which, double *lo, double *hi)
{
    double v[MAX_RUNS];
    int n = 0;
    for (int i = 0; i < runs; i++) {
        const struct rates *b = &f[i].base, *l = &f[i].loaded;
        double den = which == 2 ? b->cpu_ns : which == 1 ? b->calls : b->delivered;
        double num = which == 2 ? l->cpu_ns : which == 1 ? l->calls : l->delivered;
        if (den > 0)
            v[n++] = num / den;
    }
    if (!n)
        return -1;
    double m = bench_median(v, n); /* sorts v */
    *lo = v[0];
    *hi = v[n - 1];
    return m;
}

#define FIG(field) offsetof(struct figures, field)

static void report(const char *const *names, int nsv, struct figures f[][MAX_RUNS], int runs,
                   size_t events, int slices, size_t subs, const double *bytes_per_sub)
{
    printf("amp-bench pubsub: libamp %s; one publisher -> one subscriber of %s, through a\n"
           "server with no other subscription (0) and one holding %zu that match none of\n"
           "its events (N; 4 in 6 share a prefix with the name); %zu events a run through\n"
           "each, in %d slices alternating between them; loopback TCP, median of %d runs\n\n",
           amp_version(), EVENT_NAME, subs, events, slices, runs);
    printf("%-44s", "");
    for (int k = 0; k < nsv; k++)
        printf(" %22s", names[k]);
    printf("\n");
    static const struct {
        const char *label;
        size_t off;
        int ratio; /* -1: none; 0: delivered; 1: calls; 2: CPU */
        const char *fmt;
        double scale;
    } rows[] = {
        {"events/s delivered, 0 other subscriptions", FIG(base.delivered), -1, "%22.0f", 1},
        {"events/s delivered, N other subscriptions", FIG(loaded.delivered), 0, "%22.0f", 1},
        {"publish calls/s, 0 other subscriptions", FIG(base.calls), -1, "%22.0f", 1},
        {"publish calls/s, N other subscriptions", FIG(loaded.calls), 1, "%22.0f", 1},
        {"server CPU per event, ns, 0 other subs", FIG(base.cpu_ns), -1, "%22.0f", 1},
        {"server CPU per event, ns, N other subs", FIG(loaded.cpu_ns), 2, "%22.0f", 1},
        {"N subscribes over the wire, ms", FIG(sub_s), -1, "%22.1f", 1e3},
        {"N unsubscribes over the wire, ms", FIG(unsub_s), -1, "%22.1f", 1e3},
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
            char cell[64] = "-";
            if (m >= 0)
                snprintf(cell, sizeof cell, "%.2fx (%.2f, %.2f)", m, lo, hi);
            printf("%22s ", cell);
        }
        printf("\n");
    }
    printf("%-44s", "server memory per subscription, bytes");
    for (int k = 0; k < nsv; k++)
        printf("%22.0f ", bytes_per_sub[k]);
    printf("\n\n(N = %zu, all on one connection: amp-broker started with max_subscriptions\n"
           "and max_subscriptions_total raised to %zu; ratios per run, then their median;\n"
           "memory: the resident size's growth over the first N subscribes)\n",
           subs, subs + 16);
}

/* ---- main ---------------------------------------------------------------------- */

static int usage(FILE *out, int code)
{
    fprintf(out,
            "usage: amp-bench pubsub [--runs N] [--subs N] [--events N] [--slices N]\n"
            "                        [--quick] [--broker PATH] [--no-nats]\n\n"
            "Publishing to one matching subscriber through a server holding no other\n"
            "subscription and one holding N (default 100,000) that match nothing, run\n"
            "by run side by side: events/s, publish calls/s and the server's CPU time\n"
            "per event, and their ratios (what the N cost); the time to remove and\n"
            "make the N over the wire. amp-broker (PATH, default the one built with\n"
            "amp-bench) beside nats-server. Each run publishes --events (1,000,000)\n"
            "through each server in --slices (10), alternating. Medians of N runs\n"
            "(default 5).\n");
    return code;
}

int bench_pubsub(int argc, char **argv)
{
    int runs = 5, slices = 10, nats = access(NATS_SERVER, X_OK) == 0;
    size_t subs = 100000, events = 1000000;
    const char *broker = AMP_BROKER_PATH;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--subs") && i + 1 < argc)
            subs = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--events") && i + 1 < argc)
            events = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--slices") && i + 1 < argc)
            slices = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            broker = argv[++i];
        else if (!strcmp(argv[i], "--no-nats"))
            nats = 0;
        else if (!strcmp(argv[i], "--quick")) {
            runs = 1;
            subs = 10000;
            events = 20000;
            slices = 2;
        } else
            return usage(strcmp(argv[i], "--help") ? stderr : stdout,
                         strcmp(argv[i], "--help") ? 2 : 0);
    }
    if (runs < 1 || runs > MAX_RUNS || !subs || slices < 1 || events < (size_t)slices)
        return usage(stderr, 2);
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/amp-bench-pubsub.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("amp-bench: mkdtemp");
        return 1;
    }
    /* for each protocol: [0] no other subscription, [1] the N */
    static const char *const names[2] = {"amp-broker", "nats-server"};
    static struct server sv[2][2];
    static struct wire wire[2];
    static struct figures f[2][MAX_RUNS];
    double bytes_per_sub[2] = {0};
    int nsv = nats ? 2 : 1, bad = 0;
    for (int k = 0; k < nsv && !bad; k++) {
        make_wire(&wire[k], !k, events / (size_t)slices, subs);
        for (int j = 0; j < 2 && !bad; j++) {
            sv[k][j] = (struct server){.name = names[k], .amp = !k, .wire = &wire[k]};
            if (start(&sv[k][j], broker, dir, subs)) {
                fprintf(stderr, "amp-bench: %s did not start\n", names[k]);
                bad = 1;
            }
        }
        long rss0 = bad ? 0 : bench_rss_kb(sv[k][1].pid);
        if (!bad && timed_subscriptions(&sv[k][1], subs, 0) < 0) {
            fprintf(stderr, "amp-bench: %s: subscribing failed\n", names[k]);
            bad = 1;
        }
        bytes_per_sub[k] = (double)(bench_rss_kb(sv[k][1].pid) - rss0) * 1024 / (double)subs;
    }
    for (int i = 0; i < runs && !bad; i++)
        for (int k = 0; k < nsv && !bad; k++)
            if (run(sv[k], events, slices, subs, &f[k][i])) {
                fprintf(stderr, "amp-bench: %s run %d failed\n", names[k], i + 1);
                bad = 1;
            }
    for (int k = 0; k < nsv; k++) {
        for (int j = 0; j < 2; j++)
            finish(&sv[k][j]);
        free(wire[k].events);
        free(wire[k].subs);
        free(wire[k].unsubs);
    }
    char conf[600];
    for (int k = 0; k < 2; k++) {
        snprintf(conf, sizeof conf, "%s/broker-%d.conf", dir, sv[0][k].port);
        unlink(conf);
    }
    rmdir(dir);
    if (bad)
        return 1;
    report(names, nsv, f, runs, events / (size_t)slices * (size_t)slices, slices, subs,
           bytes_per_sub);
    return 0;
}
