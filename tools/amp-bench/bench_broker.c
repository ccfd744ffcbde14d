/* amp-bench broker: caller -> amp-broker -> provider against the same shape
 * through nats-server request/reply (through the small raw-protocol NATS
 * client of bench_net.c), event fan-out to four subscribers, and server memory per idle
 * connection. */
#include <errno.h>
#include <fcntl.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amp/amp.h"
#include "bench.h"
#include "bench_net.h"

#define DATA_4K 4096

static void nats_responder(int port)
{
    struct bench_io io;
    if (nats_open(&io, port))
        _exit(1);
    io_put(&io, "SUB bench.call 1\r\n", 18);
    io_put(&io, "PING\r\n", 6);
    io_flush(&io);
    static char payload[DATA_4K + 16];
    memset(payload, 'x', sizeof payload);
    for (;;) {
        char subject[256], reply[256];
        size_t n;
        if (nats_msg(&io, subject, reply, &n))
            _exit(0);
        /* a Sum-sized request gets "94"; a 4 KiB one gets 4 KiB back */
        size_t out = n > 64 ? n : 2;
        char hdr[300];
        int h = snprintf(hdr, sizeof hdr, "PUB %s %zu\r\n", reply, out);
        io_put(&io, hdr, (size_t)h);
        io_put(&io, out == 2 ? "94" : payload, out);
        io_put(&io, "\r\n", 2);
        if (!io_buffered(&io) && io_flush(&io))
            _exit(0);
    }
}

struct nats_result {
    double calls_per_s, p50_us, p99_us;
};

static int nats_requests(int port, size_t calls, size_t window, size_t size,
                         struct nats_result *res)
{
    struct bench_io io;
    if (nats_open(&io, port))
        return -1;
    io_put(&io, "SUB _INBOX.bench.* 2\r\n", 22);
    if (nats_sync(&io))
        return -1;
    static char payload[DATA_4K];
    memset(payload, 'y', sizeof payload);
    double *lat = malloc(calls * sizeof *lat), *start = calloc(window, sizeof *start);
    size_t issued = 0, done = 0;
    double t0 = bench_now();
    while (done < calls) {
        while (issued < calls && issued - done < window) {
            char hdr[128];
            int h = snprintf(hdr, sizeof hdr, "PUB bench.call _INBOX.bench.%zu %zu\r\n",
                             issued % window, size);
            io_put(&io, hdr, (size_t)h);
            io_put(&io, size == 9 ? "a=13 b=81" : payload, size);
            io_put(&io, "\r\n", 2);
            start[issued % window] = bench_now();
            issued++;
        }
        if (!io_buffered(&io) && io_flush(&io))
            return -1;
        char subject[256], reply[256];
        size_t n;
        if (nats_msg(&io, subject, reply, &n))
            return -1;
        size_t slot = strtoul(subject + strlen("_INBOX.bench."), NULL, 10);
        lat[done++] = bench_now() - start[slot];
    }
    double t = bench_now() - t0;
    close(io.fd);
    io_release(&io);
    res->calls_per_s = (double)calls / t;
    bench_percentiles(lat, calls, &res->p50_us, &res->p99_us);
    free(lat);
    free(start);
    return 0;
}

/* ---- the AMP side ------------------------------------------------------------- */

static void sum(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    const amp_pair *d = amp_box_find_str(args, "data");
    if (d) {
        amp_pair p = {(const uint8_t *)"data", 4, d->value, d->value_len};
        amp_request_answer(req, &p, 1);
        return;
    }
    amp_pair p = {(const uint8_t *)"total", 5, (const uint8_t *)"94", 2};
    amp_request_answer(req, &p, 1);
}

static int ready_flag, gone_flag;
static void on_ready(amp_conn *c, void *ud)
{
    ready_flag = 1;
}

static void on_connect_failed(amp_conn *c, int reason, void *ud)
{
    gone_flag = 1;
}

static void on_gone(amp_conn *c, int reason, void *ud)
{
    _exit(0);
}

static amp_conn *amp_open(struct ev_loop *loop, int port, amp_conn_callbacks cb)
{
    char ep[64], err[256];
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", port);
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.callbacks = cb;
    amp_conn *c;
    for (int i = 0; i < 200; i++) {
        ready_flag = gone_flag = 0;
        cfg.callbacks.closed = on_connect_failed;
        if (amp_connect(loop, ep, &cfg, &c, err, sizeof err) == AMP_OK) {
            while (!ready_flag && !gone_flag)
                ev_run(loop, EVRUN_ONCE);
            if (ready_flag) {
                amp_conn_set_callbacks(c, &cb, NULL);
                return c;
            }
        }
        usleep(10000);
    }
    return NULL;
}

static void amp_provider(int port)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    amp_conn_callbacks cb = {on_ready, on_gone, NULL};
    amp_conn *c = amp_open(loop, port, cb);
    if (!c)
        _exit(1);
    amp_session_serve_str(amp_conn_session(c), "Sum", sum, NULL);
    amp_pair p = {(const uint8_t *)"command", 7, (const uint8_t *)"Sum", 3};
    amp_conn_call(c, "amp.Register", &p, 1, 10, NULL, NULL, NULL);
    ev_run(loop, 0);
    _exit(0);
}

struct amp_run {
    struct ev_loop *loop;
    amp_conn *c;
    size_t target, issued, done, window;
    amp_pair args[2];
    size_t nargs;
    double *lat, *start;
    int failed;
};

static void amp_issue(struct amp_run *r);

static void on_amp_result(amp_session *s, uint64_t id, const amp_result *res, void *ud)
{
    struct amp_run *r = ud;
    if (res->status != AMP_OK) {
        r->failed = 1;
        ev_break(r->loop, EVBREAK_ALL);
        return;
    }
    r->lat[r->done++] = bench_now() - r->start[id % r->window];
    if (r->issued < r->target)
        amp_issue(r);
    else if (r->done == r->target)
        ev_break(r->loop, EVBREAK_ALL);
}

static void amp_issue(struct amp_run *r)
{
    uint64_t id;
    double now = bench_now();
    if (amp_conn_call(r->c, "Sum", r->args, r->nargs, 0, on_amp_result, r, &id)) {
        r->failed = 1;
        return;
    }
    r->start[id % r->window] = now;
    r->issued++;
}

static int amp_calls(int port, size_t calls, size_t window, size_t size,
                     struct nats_result *res)
{
    static uint8_t payload[DATA_4K];
    memset(payload, 'y', sizeof payload);
    struct amp_run r;
    memset(&r, 0, sizeof r);
    r.loop = EV_DEFAULT;
    amp_conn_callbacks cb = {on_ready, NULL, NULL};
    r.c = amp_open(r.loop, port, cb);
    if (!r.c)
        return -1;
    if (size == 9) {
        r.args[0] = (amp_pair){(const uint8_t *)"a", 1, (const uint8_t *)"13", 2};
        r.args[1] = (amp_pair){(const uint8_t *)"b", 1, (const uint8_t *)"81", 2};
        r.nargs = 2;
    } else {
        r.args[0] = (amp_pair){(const uint8_t *)"data", 4, payload, size};
        r.nargs = 1;
    }
    r.window = window;
    r.lat = malloc((calls + 1) * sizeof *r.lat);
    r.start = calloc(window, sizeof *r.start);
    r.target = 1; /* warm-up: also waits until the provider is registered */
    for (int tries = 0; tries < 100; tries++) {
        r.failed = 0;
        r.done = r.issued = 0;
        amp_issue(&r);
        ev_run(r.loop, 0);
        if (!r.failed)
            break;
        usleep(20000);
    }
    r.done = r.issued = 0;
    r.target = calls;
    double t0 = bench_now();
    for (size_t i = 0; i < window && i < calls; i++)
        amp_issue(&r);
    while (r.done < calls && !r.failed)
        ev_run(r.loop, 0);
    double t = bench_now() - t0;
    amp_conn_abort(r.c);
    if (!r.failed) {
        res->calls_per_s = (double)calls / t;
        bench_percentiles(r.lat, calls, &res->p50_us, &res->p99_us);
    }
    free(r.lat);
    free(r.start);
    return r.failed ? -1 : 0;
}

/* ---- fan-out -------------------------------------------------------------------- */

static int sub_count, sub_target, sub_pipe;
static void on_event(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    amp_request_answer(req, NULL, 0);
    if (++sub_count == sub_target) {
        char ok = 1;
        if (write(sub_pipe, &ok, 1) != 1)
            _exit(1);
    }
}

static void subscribed(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    char ok = 0;
    if (r->status != AMP_OK || write(sub_pipe, &ok, 1) != 1)
        _exit(1);
}

static void amp_subscriber(int port, int n, int pipe_fd)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    amp_conn_callbacks cb = {on_ready, on_gone, NULL};
    amp_conn *c = amp_open(loop, port, cb);
    if (!c)
        _exit(1);
    sub_target = n;
    sub_pipe = pipe_fd;
    amp_session_serve_fallback(amp_conn_session(c), on_event, NULL);
    amp_pair p = {(const uint8_t *)"pattern", 7, (const uint8_t *)"bench.event", 11};
    amp_conn_call(c, "amp.Subscribe", &p, 1, 10, subscribed, NULL, NULL);
    ev_run(loop, 0);
    _exit(0);
}

static void nats_subscriber(int port, int n, int pipe_fd)
{
    struct bench_io io;
    if (nats_open(&io, port))
        _exit(1);
    io_put(&io, "SUB bench.event 1\r\n", 19);
    if (nats_sync(&io))
        _exit(1);
    char ok = 0;
    if (write(pipe_fd, &ok, 1) != 1)
        _exit(1);
    for (int i = 0; i < n; i++) {
        char subject[256], reply[256];
        size_t len;
        if (nats_msg(&io, subject, reply, &len))
            _exit(1);
    }
    ok = 1;
    if (write(pipe_fd, &ok, 1) != 1)
        _exit(1);
    pause();
    _exit(0);
}

/* One publisher, four subscribers; events/s delivered, or -1. */
static double fanout(int port, int amp, int n)
{
    int fds[2];
    if (pipe(fds))
        return -1;
    pid_t subs[4];
    for (int i = 0; i < 4; i++) {
        subs[i] = fork();
        if (subs[i] == 0) {
            close(fds[0]);
            if (amp)
                amp_subscriber(port, n, fds[1]);
            else
                nats_subscriber(port, n, fds[1]);
        }
    }
    close(fds[1]);
    char b;
    for (int i = 0; i < 4; i++)
        if (read(fds[0], &b, 1) != 1)
            return -1;
    usleep(100000);
    double t0 = bench_now();
    int fd = bench_tcp_connect(port);
    struct bench_io io;
    io_init(&io, fd);
    if (amp) {
        static const uint8_t box[] = "\0\10_command\0\13bench.event\0\1a\0\00213\0\1b\0\00281\0";
        for (int i = 0; i < n; i++)
            io_put(&io, box, sizeof box);
    } else {
        char *l;
        if (!io_line(&io))
            return -1;
        io_put(&io, "CONNECT {\"verbose\":false}\r\n", 27);
        for (int i = 0; i < n; i++)
            io_put(&io, "PUB bench.event 9\r\na=13 b=81\r\n", 30);
        (void)l;
    }
    io_flush(&io);
    int done = 0;
    struct pollfd pfd = {fds[0], POLLIN, 0};
    while (done < 4 && poll(&pfd, 1, 30000) == 1 && read(fds[0], &b, 1) == 1)
        done++; /* a subscriber that lost events never reports: 30 s timeout */
    double t = bench_now() - t0;
    close(fd);
    io_release(&io);
    for (int i = 0; i < 4; i++) {
        kill(subs[i], SIGKILL);
        waitpid(subs[i], NULL, 0);
    }
    close(fds[0]);
    return done == 4 ? 4.0 * n / t : -1;
}

/* ---- idle connections ---------------------------------------------------------- */

static double idle_kb_per_conn(pid_t server, int port, int amp, int n)
{
    long before = bench_rss_kb(server);
    int *fds = malloc((size_t)n * sizeof *fds);
    int opened = 0;
    for (int i = 0; i < n; i++) {
        fds[i] = bench_tcp_connect(port);
        if (fds[i] < 0)
            break;
        opened++;
        if (!amp) {
            const char *hello = "CONNECT {\"verbose\":false}\r\n";
            if (write(fds[i], hello, strlen(hello)) < 0)
                break;
        }
    }
    usleep(1500000); /* let the server accept and settle */
    long after = bench_rss_kb(server);
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    if (opened < n)
        return -1;
    return (double)(after - before) / n;
}

/* ---- main ---------------------------------------------------------------------- */

int bench_broker(int argc, char **argv)
{
    int runs = 3, pin = 0, idle = 10000;
    size_t seq = 5000, piped = 300000, events = 200000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pin"))
            pin = 1;
        else if (!strcmp(argv[i], "--quick")) {
            seq = 500;
            piped = 20000;
            events = 20000;
            idle = 1000;
        } else {
            printf("usage: amp-bench broker [--runs N] [--quick] [--pin]\n\n"
                   "caller -> amp-broker -> provider (all libamp) and the same through\n"
                   "nats-server request/reply, Sum-sized and 4 KiB payloads, sequential and\n"
                   "100 in flight; one publisher to four subscribers; server memory per\n"
                   "idle connection at 10,000 connections. Medians of N runs (default 3).\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (runs < 1 || runs > 16)
        runs = 3;
    signal(SIGPIPE, SIG_IGN);
    if (pin) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(0, &one);
        sched_setaffinity(0, sizeof one, &one);
    }
    int bport = bench_free_port(), nport = bench_free_port();
    char listen[64], nport_s[16];
    snprintf(listen, sizeof listen, "tcp:%d:interface=127.0.0.1", bport);
    snprintf(nport_s, sizeof nport_s, "%d", nport);
    char *bargv[] = {AMP_BROKER_PATH, "--listen", listen, "--log-level", "error", NULL};
    char *nargv[] = {"/usr/sbin/nats-server", "-a", "127.0.0.1", "-p", nport_s, NULL};
    pid_t broker = bench_spawn(bargv), nats = bench_spawn(nargv);
    pid_t aprov = fork();
    if (aprov == 0)
        amp_provider(bport);
    pid_t nprov = fork();
    if (nprov == 0) {
        usleep(300000);
        nats_responder(nport);
    }
    usleep(500000);

    struct row {
        const char *name;
        size_t calls, window, size;
        double amp[3][16], nats[3][16];
    } rows[] = {
        {"Sum-sized, sequential", seq, 1, 9, {{0}}, {{0}}},
        {"Sum-sized, 100 in flight", piped, 100, 9, {{0}}, {{0}}},
        {"4 KiB, sequential", seq, 1, DATA_4K, {{0}}, {{0}}},
        {"4 KiB, 100 in flight", piped / 4, 100, DATA_4K, {{0}}, {{0}}},
    };
    double fan_amp[16], fan_nats[16];
    int bad = 0;
    for (int k = 0; k < runs && !bad; k++) {
        for (size_t i = 0; i < sizeof rows / sizeof rows[0] && !bad; i++) {
            struct nats_result a = {0}, n = {0};
            if (amp_calls(bport, rows[i].calls, rows[i].window, rows[i].size, &a)) {
                fprintf(stderr, "amp-bench: amp-broker run '%s' failed\n", rows[i].name);
                bad = 1;
            }
            if (!bad && nats_requests(nport, rows[i].calls, rows[i].window, rows[i].size, &n)) {
                fprintf(stderr, "amp-bench: nats-server run '%s' failed\n", rows[i].name);
                bad = 1;
            }
            rows[i].amp[0][k] = a.calls_per_s, rows[i].amp[1][k] = a.p50_us;
            rows[i].amp[2][k] = a.p99_us;
            rows[i].nats[0][k] = n.calls_per_s, rows[i].nats[1][k] = n.p50_us;
            rows[i].nats[2][k] = n.p99_us;
        }
        fan_amp[k] = fanout(bport, 1, (int)events);
        fan_nats[k] = fanout(nport, 0, (int)events);
    }
    double idle_amp = bad ? -1 : idle_kb_per_conn(broker, bport, 1, idle);
    double idle_nats = bad ? -1 : idle_kb_per_conn(nats, nport, 0, idle);
    kill(aprov, SIGKILL);
    kill(nprov, SIGKILL);
    waitpid(aprov, NULL, 0);
    waitpid(nprov, NULL, 0);
    bench_stop(broker);
    bench_stop(nats);
    if (bad) {
        fprintf(stderr, "amp-bench: a run failed\n");
        return 1;
    }
    printf("amp-bench broker: libamp %s via amp-broker vs nats-server request/reply,\n"
           "loopback TCP, median of %d runs%s\n\n", amp_version(), runs,
           pin ? ", every process pinned to CPU 0" : "");
    printf("%-26s %12s %9s %9s %12s %9s %9s %7s\n", "caller -> provider", "amp calls/s",
           "p50 us", "p99 us", "nats calls/s", "p50 us", "p99 us", "ratio");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        double ac = bench_median(rows[i].amp[0], runs), nc = bench_median(rows[i].nats[0], runs);
        printf("%-26s %12.0f %9.1f %9.1f %12.0f %9.1f %9.1f %6.2fx\n", rows[i].name, ac,
               bench_median(rows[i].amp[1], runs), bench_median(rows[i].amp[2], runs), nc,
               bench_median(rows[i].nats[1], runs), bench_median(rows[i].nats[2], runs), ac / nc);
    }
    double fa = bench_median(fan_amp, runs), fn = bench_median(fan_nats, runs);
    printf("\nfan-out, 1 publisher -> 4 subscribers, %zu events: amp %.0f/s, nats %.0f/s "
           "delivered, ratio %.2fx\n", events, fa, fn, fa / fn);
    printf("server memory per idle connection at %d connections: amp-broker %.1f KiB, "
           "nats-server %.1f KiB\n", idle, idle_amp, idle_nats);
    printf("(ratio = amp / nats; p50/p99 are per call latencies)\n");
    return 0;
}
