/* amp-bench call: round trips of Sum calls, libamp client against a libamp
 * server and, in the same run, against a Twisted server; plus a raw-socket
 * ping-pong of the same bytes as the floor for sequential round trips. */
#include <errno.h>
#include <sched.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amp/amp.h"
#include "bench.h"

/* ---- servers ------------------------------------------------------------- */

static void sum(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    const amp_pair *a = amp_box_find_str(args, "a"), *b = amp_box_find_str(args, "b");
    int64_t x = 0, y = 0;
    if (a)
        amp_int_parse(a->value, a->value_len, &x);
    if (b)
        amp_int_parse(b->value, b->value_len, &y);
    char t[AMP_INT_MAX_LEN];
    amp_pair p = {(const uint8_t *)"total", 5, (const uint8_t *)t, amp_int_format(x + y, t)};
    amp_request_answer(req, &p, 1);
}

static void on_accept(amp_listener *l, amp_conn *c, void *ud)
{
    amp_session_serve_str(amp_conn_session(c), "Sum", sum, NULL);
}

/* Fork a libamp server; returns its pid, *port set. */
static pid_t start_libamp_server(int *port)
{
    int fds[2];
    if (pipe(fds))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        signal(SIGPIPE, SIG_IGN);
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        amp_listener *l;
        char err[256];
        if (amp_listen(loop, "tcp:0:interface=127.0.0.1", NULL, on_accept, NULL, &l, err,
                       sizeof err))
            _exit(1);
        int p = amp_listener_port(l);
        if (write(fds[1], &p, sizeof p) != sizeof p)
            _exit(1);
        ev_run(loop, 0);
        _exit(0);
    }
    close(fds[1]);
    if (read(fds[0], port, sizeof *port) != sizeof *port)
        *port = -1;
    close(fds[0]);
    return pid;
}

/* The raw floor: read one call, write one fixed answer, blocking. */
static const uint8_t raw_call[] = "\0\4_ask\0\0011\0\10_command\0\3Sum\0\1a\0\00213\0\1b\0\00281\0";
static const uint8_t raw_answer[] = "\0\7_answer\0\0011\0\5total\0\00294\0";
#define RAW_CALL_LEN (sizeof raw_call)   /* the string's NUL is the last 0 */
#define RAW_ANSWER_LEN (sizeof raw_answer)

static int read_full(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static pid_t start_raw_server(int *port)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 8) ||
        getsockname(ls, (struct sockaddr *)&sa, &sl))
        return -1;
    *port = ntohs(sa.sin_port);
    pid_t pid = fork();
    if (pid == 0) {
        for (;;) {
            int c = accept(ls, NULL, NULL);
            if (c < 0)
                continue;
            int one = 1;
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            uint8_t buf[RAW_CALL_LEN];
            while (read_full(c, buf, RAW_CALL_LEN) == 0)
                if (write(c, raw_answer, RAW_ANSWER_LEN) != (ssize_t)RAW_ANSWER_LEN)
                    break;
            close(c);
        }
    }
    close(ls);
    return pid;
}

static pid_t start_twisted_server(int *port)
{
    int fds[2];
    if (pipe(fds))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        char script[1024];
        snprintf(script, sizeof script, "%s/../../interop-tests/python/twisted_peer.py",
                 bench_tools_dir());
        execl("/usr/bin/python3", "python3", script, "serve", "tcp:0:interface=127.0.0.1",
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[64] = {0};
    size_t n = 0;
    while (n < sizeof line - 1 && read(fds[0], line + n, 1) == 1 && line[n] != '\n')
        n++;
    close(fds[0]);
    *port = strncmp(line, "port ", 5) ? -1 : atoi(line + 5);
    return pid;
}

static void stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

/* ---- the libamp client ------------------------------------------------------ */

struct run {
    struct ev_loop *loop;
    amp_conn *conn;
    int ready, failed;
    size_t target, issued, done, window;
    double *lat;   /* per call latency, seconds */
    double *start; /* per in-flight slot start time */
};

static void on_ready(amp_conn *c, void *ud)
{
    struct run *r = ud;
    r->ready = 1;
    ev_break(r->loop, EVBREAK_ONE);
}

static void on_closed(amp_conn *c, int reason, void *ud)
{
    struct run *r = ud;
    r->conn = NULL;
    r->failed = 1;
    ev_break(r->loop, EVBREAK_ONE);
}

static void issue(struct run *r);

static void on_result(amp_session *s, uint64_t id, const amp_result *res, void *ud)
{
    struct run *r = ud;
    double now = bench_now();
    size_t slot = (size_t)(id % r->window);
    if (res->status != AMP_OK) {
        r->failed = 1;
        ev_break(r->loop, EVBREAK_ONE);
        return;
    }
    r->lat[r->done++] = now - r->start[slot];
    if (r->issued < r->target)
        issue(r);
    else if (r->done == r->target)
        ev_break(r->loop, EVBREAK_ONE);
}

static const amp_pair sum_args[2] = {{(const uint8_t *)"a", 1, (const uint8_t *)"13", 2},
                                     {(const uint8_t *)"b", 1, (const uint8_t *)"81", 2}};

static void issue(struct run *r)
{
    uint64_t id;
    /* tags count from 1 on this connection, so id % window names a free slot */
    double now = bench_now();
    if (amp_session_call_str(amp_conn_session(r->conn), "Sum", sum_args, 2, NULL, on_result, r,
                             &id) != AMP_OK) {
        r->failed = 1;
        return;
    }
    r->start[id % r->window] = now;
    r->issued++;
}

struct result {
    double calls_per_s, p50_us, p99_us;
};

/* `calls` Sum calls with `window` in flight over one fresh connection. */
static int run_calls(int port, size_t calls, size_t window, struct result *out)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.loop = EV_DEFAULT;
    r.target = calls;
    r.window = window;
    r.lat = malloc(calls * sizeof *r.lat);
    r.start = calloc(window, sizeof *r.start);
    char ep[64], err[256];
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", port);
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.callbacks.ready = on_ready;
    cfg.callbacks.closed = on_closed;
    cfg.user_data = &r;
    if (amp_connect(r.loop, ep, &cfg, &r.conn, err, sizeof err) != AMP_OK) {
        fprintf(stderr, "amp-bench: %s\n", err);
        return -1;
    }
    while (!r.ready && !r.failed)
        ev_run(r.loop, EVRUN_ONCE);
    /* one warm-up round trip */
    r.target = 1;
    r.window = window;
    issue(&r);
    ev_run(r.loop, 0);
    r.done = r.issued = 0;
    r.target = calls;
    double t0 = bench_now();
    for (size_t i = 0; i < window && i < calls; i++)
        issue(&r);
    while (r.done < calls && !r.failed)
        ev_run(r.loop, 0);
    double t = bench_now() - t0;
    int failed = r.failed;
    if (r.conn)
        amp_conn_abort(r.conn);
    if (!failed) {
        out->calls_per_s = (double)calls / t;
        bench_percentiles(r.lat, calls, &out->p50_us, &out->p99_us);
    }
    free(r.lat);
    free(r.start);
    return failed ? -1 : 0;
}

static int run_raw(int port, size_t calls, struct result *out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa))
        return -1;
    double *lat = malloc(calls * sizeof *lat);
    uint8_t buf[RAW_ANSWER_LEN];
    double t0 = bench_now();
    for (size_t i = 0; i < calls; i++) {
        double s = bench_now();
        if (write(fd, raw_call, RAW_CALL_LEN) != (ssize_t)RAW_CALL_LEN ||
            read_full(fd, buf, RAW_ANSWER_LEN))
            return -1;
        lat[i] = bench_now() - s;
    }
    double t = bench_now() - t0;
    close(fd);
    out->calls_per_s = (double)calls / t;
    bench_percentiles(lat, calls, &out->p50_us, &out->p99_us);
    free(lat);
    return 0;
}

static double med(double *v, int n)
{
    return bench_median(v, n);
}

int bench_call(int argc, char **argv)
{
    int runs = 5, pin = 0;
    size_t seq = 20000, pipe_calls = 2000000, tw_seq = 3000, tw_pipe = 60000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--pin")) {
            pin = 1;
        } else if (!strcmp(argv[i], "--quick")) {
            seq = 3000;
            pipe_calls = 200000;
            tw_seq = 500;
            tw_pipe = 5000;
        } else {
            printf("usage: amp-bench call [--runs N] [--quick] [--pin]\n\n"
                   "Sum calls over loopback TCP from a libamp client to a libamp server and to\n"
                   "a Twisted server (interop-tests/python/twisted_peer.py), sequential and\n"
                   "with 100 calls in flight, and a raw-socket ping-pong of the same bytes\n"
                   "(blocking read/write, no library) as the floor for sequential round\n"
                   "trips. Prints medians of N runs (default 5) and the ratios.\n"
                   "--pin runs every process (clients and servers) on CPU 0: on virtual\n"
                   "machines, waking a process on another CPU costs more than the work.\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (runs < 1 || runs > 16)
        runs = 5;
    signal(SIGPIPE, SIG_IGN);
    if (pin) { /* inherited by every server forked below */
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(0, &one);
        if (sched_setaffinity(0, sizeof one, &one)) {
            perror("amp-bench: sched_setaffinity");
            return 1;
        }
    }
    int lport = -1, tport = -1, rport = -1;
    pid_t lpid = start_libamp_server(&lport);
    pid_t tpid = start_twisted_server(&tport);
    pid_t rpid = start_raw_server(&rport);
    if (lport < 0 || tport < 0 || rport < 0) {
        fprintf(stderr, "amp-bench: a server did not start\n");
        stop(lpid);
        stop(tpid);
        stop(rpid);
        return 1;
    }
    double v[8][16];
    int bad = 0;
    for (int k = 0; k < runs && !bad; k++) {
        struct result a = {0}, b = {0}, c = {0}, d = {0}, e = {0};
        bad |= run_calls(lport, seq, 1, &a) | run_calls(lport, pipe_calls, 100, &b) |
               run_calls(tport, tw_seq, 1, &c) | run_calls(tport, tw_pipe, 100, &d) |
               run_raw(rport, seq, &e);
        v[0][k] = a.calls_per_s, v[1][k] = a.p50_us, v[2][k] = a.p99_us;
        v[3][k] = b.calls_per_s, v[4][k] = b.p50_us, v[5][k] = b.p99_us;
        v[6][k] = c.calls_per_s, v[7][k] = d.calls_per_s;
        static double tl[4][16], rl[3][16];
        tl[0][k] = c.p50_us, tl[1][k] = c.p99_us, tl[2][k] = d.p50_us, tl[3][k] = d.p99_us;
        rl[0][k] = e.calls_per_s, rl[1][k] = e.p50_us, rl[2][k] = e.p99_us;
        if (k == runs - 1 && !bad) {
            printf("amp-bench call: libamp %s, Sum a=13 b=81 over loopback TCP, one "
                   "connection,\nmedian of %d runs%s\n\n", amp_version(), runs,
                   pin ? ", every process pinned to CPU 0" : "");
            printf("%-30s %12s %10s %10s\n", "client -> server", "calls/s", "p50 us", "p99 us");
            printf("%-30s %12.0f %10.1f %10.1f\n", "libamp -> libamp, sequential",
                   med(v[0], runs), med(v[1], runs), med(v[2], runs));
            printf("%-30s %12.0f %10.1f %10.1f\n", "libamp -> Twisted, sequential",
                   med(v[6], runs), med(tl[0], runs), med(tl[1], runs));
            printf("%-30s %12.0f %10.1f %10.1f\n", "raw socket ping-pong (floor)",
                   med(rl[0], runs), med(rl[1], runs), med(rl[2], runs));
            printf("%-30s %12.0f %10.1f %10.1f\n", "libamp -> libamp, 100 in flight",
                   med(v[3], runs), med(v[4], runs), med(v[5], runs));
            printf("%-30s %12.0f %10.1f %10.1f\n", "libamp -> Twisted, 100 in flight",
                   med(v[7], runs), med(tl[2], runs), med(tl[3], runs));
            printf("\npipelined, libamp server / Twisted server: %.1fx\n",
                   med(v[3], runs) / med(v[7], runs));
            printf("sequential p50, libamp / raw floor:         %.2fx\n",
                   med(v[1], runs) / med(rl[1], runs));
            printf("calls per run: libamp %zu sequential, %zu pipelined; Twisted %zu and %zu\n",
                   seq, pipe_calls, tw_seq, tw_pipe);
        }
    }
    stop(lpid);
    stop(tpid);
    stop(rpid);
    if (bad)
        fprintf(stderr, "amp-bench: a run failed\n");
    return bad ? 1 : 0;
}
