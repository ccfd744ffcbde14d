/* amp-bench login-flood: a well-behaved client's routed-call latency while N
 * connections keep sending bad passwords for a real user, for one or more
 * amp-broker binaries side by side (an older build with --before).
 *
 * Per run: a broker with [auth] (PBKDF2 at the default 200,000 iterations),
 * a provider process serving Sum, a flooder process holding N connections
 * that each send amp.Login with a wrong password for "alice", read the
 * answer, close and start again, and the caller (this process), logged in
 * before the flood, making sequential Sum calls for the measured seconds. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amp/amp.h"
#include "bench.h"
#include "bench_net.h"

#define MAX_FLOODERS 1024

struct target {
    const char *label;
    const char *broker;
    const char *extra; /* more [auth] settings, or "" */
};

/* From 127.0.0.`from` when nonzero (each address its own failure count). */
static int tcp_connect_from(int port, int from)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    if (from) {
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK - 1 + (uint32_t)from);
        bind(fd, (struct sockaddr *)&sa, sizeof sa);
    }
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        return fd;
    close(fd);
    return -1;
}

static int tcp_connect(int port)
{
    return tcp_connect_from(port, 0);
}

/* A password file line's hash field, made by the broker under test. */
static int hash_password(const char *broker, const char *pw, char *out, size_t n)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "echo '%s' | '%s' --hash-password", pw, broker);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    int ok = fgets(out, (int)n, p) != NULL;
    pclose(p);
    out[strcspn(out, "\n")] = 0;
    return ok && !strncmp(out, "pbkdf2-sha256$", 14) ? 0 : -1;
}

/* The broker, listening on `port`; its pid, or -1. */
static pid_t start_broker(const struct target *t, const char *dir, int port)
{
    char hash[3][256], text[2048], passwd[512], acl[512], conf[512];
    const char *pw[3] = {"wonderland", "w0rk", "c4ll"};
    for (int i = 0; i < 3; i++)
        if (hash_password(t->broker, pw[i], hash[i], sizeof hash[i]))
            return -1;
    snprintf(text, sizeof text, "alice:users:%s\nworker:workers:%s\ncaller:users:%s\n"
             "tokenonly:users:-\n", hash[0], hash[1], hash[2]);
    if (bench_write_file(dir, "passwd", text, passwd, sizeof passwd) ||
        bench_write_file(dir, "acl",
                         "allow user:caller call Sum\nallow user:caller call amp.Stats\n"
                         "allow user:worker register Sum\n",
                         acl, sizeof acl))
        return -1;
    snprintf(text, sizeof text,
             "[broker]\nlisten = tcp:%d:interface=127.0.0.1:backlog=1024\nlog_level = error\n"
             "[auth]\n"
             "password_file = %s\nacl_file = %s\nlogin_timeout = 10\n%s",
             port, passwd, acl, t->extra);
    if (bench_write_file(dir, "broker.conf", text, conf, sizeof conf))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(t->broker, t->broker, "--config", conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) { /* until it accepts */
        int fd = tcp_connect(port);
        if (fd >= 0) {
            close(fd);
            return pid;
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static amp_client *logged_in(int port, const char *user, const char *pw)
{
    char ep[64], err[256];
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", port);
    amp_client *c;
    if (amp_client_connect(&c, ep, 10, err, sizeof err) != AMP_OK)
        return NULL;
    amp_pair creds[2] = {{(const uint8_t *)"username", 8, (const uint8_t *)user, strlen(user)},
                         {(const uint8_t *)"password", 8, (const uint8_t *)pw, strlen(pw)}};
    amp_reply *r = NULL;
    amp_err e = amp_client_call(c, "amp.Login", creds, 2, 30, &r);
    amp_reply_free(r);
    if (e != AMP_OK) {
        amp_client_free(c);
        return NULL;
    }
    return c;
}

static void sum(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    amp_pair p = {(const uint8_t *)"total", 5, (const uint8_t *)"94", 2};
    amp_request_answer(req, &p, 1);
}

static void provider(int port)
{
    amp_client *c = logged_in(port, "worker", "w0rk");
    if (!c)
        _exit(1);
    amp_session_serve_str(amp_conn_session(amp_client_conn(c)), "Sum", sum, NULL);
    amp_pair p = {(const uint8_t *)"command", 7, (const uint8_t *)"Sum", 3};
    amp_reply *r = NULL;
    if (amp_client_call(c, "amp.Register", &p, 1, 30, &r) != AMP_OK)
        _exit(1);
    amp_reply_free(r);
    for (;;) {
        struct pollfd pfd = {amp_client_fd(c), POLLIN, 0};
        poll(&pfd, 1, 1000);
        amp_client_step(c);
        if (!amp_client_conn(c))
            _exit(0);
    }
}

/* A connection started without waiting (the flood never stalls on one). */
static int start_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reset, not closed: no TIME_WAIT, so the flood never runs out of ports. */
static void drop(int fd)
{
    struct linger reset = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
}

/* Each of n connections: once connected, a login box with a wrong password
 * for alice; whatever comes back (an error, or the close) ends it, and a new
 * connection starts. */
static void flooder(int port, int n)
{
    static const uint8_t box[] = "\0\4_ask\0\0011\0\10_command\0\11amp.Login"
                                 "\0\10username\0\5alice\0\10password\0\5wrong\0\0";
    struct pollfd *pfd = calloc((size_t)n, sizeof *pfd);
    for (int i = 0; i < n; i++)
        pfd[i].fd = -1;
    for (;;) {
        for (int i = 0; i < n; i++)
            if (pfd[i].fd < 0 && (pfd[i].fd = start_connect(port)) >= 0)
                pfd[i].events = POLLOUT;
        if (poll(pfd, (nfds_t)n, 100) < 0 && errno != EINTR)
            _exit(1);
        for (int i = 0; i < n; i++) {
            if (pfd[i].fd < 0 || !pfd[i].revents)
                continue;
            char buf[4096];
            if (pfd[i].events == POLLOUT && !(pfd[i].revents & (POLLERR | POLLHUP)) &&
                write(pfd[i].fd, box, sizeof box - 1) == (ssize_t)(sizeof box - 1)) {
                pfd[i].events = POLLIN; /* sent: now the answer */
                continue;
            }
            if (pfd[i].events == POLLIN && read(pfd[i].fd, buf, sizeof buf) < 0 &&
                errno == EAGAIN)
                continue;
            drop(pfd[i].fd);
            pfd[i].fd = -1;
        }
    }
}

static uint64_t stat_of(amp_reply *r, const char *key)
{
    const amp_pair *p = r ? amp_box_find_str(&r->box, key) : NULL;
    int64_t v = 0;
    if (p)
        amp_int_parse(p->value, p->value_len, &v);
    return (uint64_t)v;
}

struct outcome {
    size_t calls;
    double p50_ms, p99_ms, max_ms;
    uint64_t failed, busy, throttled;
    int ok;
};

static void run(const struct target *t, int flooders, double seconds, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    char dir[] = "/tmp/amp-bench-login-XXXXXX";
    if (!mkdtemp(dir))
        return;
    int port = bench_free_port();
    pid_t broker = start_broker(t, dir, port), prov = -1, flood = -1;
    amp_client *caller = broker > 0 ? logged_in(port, "caller", "c4ll") : NULL;
    if (caller && (prov = fork()) == 0)
        provider(port);
    size_t cap = 1 << 20, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    amp_pair args[2] = {{(const uint8_t *)"a", 1, (const uint8_t *)"13", 2},
                        {(const uint8_t *)"b", 1, (const uint8_t *)"81", 2}};
    amp_reply *r = NULL;
    /* the provider is up when a call goes through */
    for (int i = 0; caller && i < 500; i++, usleep(10000)) {
        amp_reply_free(r);
        r = NULL;
        if (amp_client_call(caller, "Sum", args, 2, 10, &r) == AMP_OK)
            break;
    }
    amp_reply_free(r);
    r = NULL;
    if (caller && flooders && (flood = fork()) == 0)
        flooder(port, flooders);
    if (caller) {
        usleep(500000); /* the flood is under way */
        double end = bench_now() + seconds;
        o->ok = 1;
        while (bench_now() < end && n < cap) {
            double t0 = bench_now();
            amp_err e = amp_client_call(caller, "Sum", args, 2, 60, &r);
            amp_reply_free(r);
            r = NULL;
            if (e != AMP_OK) {
                o->ok = 0;
                break;
            }
            lat[n++] = bench_now() - t0;
        }
    }
    if (flood > 0) {
        kill(flood, SIGKILL);
        waitpid(flood, NULL, 0);
    }
    if (caller) {
        /* an older broker has no busy or throttled counters: 0 */
        if (amp_client_call(caller, "amp.Stats", NULL, 0, 10, &r) == AMP_OK) {
            o->failed = stat_of(r, "logins_failed");
            o->busy = stat_of(r, "logins_busy");
            o->throttled = stat_of(r, "logins_throttled");
        }
        amp_reply_free(r);
        amp_client_free(caller);
    }
    if (prov > 0) {
        kill(prov, SIGKILL);
        waitpid(prov, NULL, 0);
    }
    if (broker > 0) {
        kill(broker, SIGKILL);
        waitpid(broker, NULL, 0);
    }
    o->calls = n;
    if (n) {
        double max = 0;
        for (size_t i = 0; i < n; i++)
            max = lat[i] > max ? lat[i] : max;
        double p50, p99;
        bench_percentiles(lat, n, &p50, &p99);
        o->p50_ms = p50 / 1000;
        o->p99_ms = p99 / 1000;
        o->max_ms = max * 1000;
    }
    free(lat);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
}

/* Seconds from sending a login with a wrong password for `user` to its
 * answer, on a fresh connection from 127.0.0.`from`; -1 on failure. */
static double failed_login(int port, const char *user, int from)
{
    int fd = tcp_connect_from(port, from);
    if (fd < 0)
        return -1;
    amp_buf b;
    amp_buf_init(&b);
    amp_encode_pair_str(&b, "_ask", "1");
    amp_encode_pair_str(&b, "_command", "amp.Login");
    amp_encode_pair_str(&b, "username", user);
    amp_encode_pair_str(&b, "password", "not-the-password");
    amp_encode_end(&b);
    double t0 = bench_now();
    char buf[512];
    int ok = write(fd, b.data, b.len) == (ssize_t)b.len && read(fd, buf, sizeof buf) > 0;
    double t = bench_now() - t0;
    amp_buf_free(&b);
    close(fd);
    return ok ? t : -1;
}

/* Item: unknown users must cost what known ones do. Five failed logins
 * each for a user with a password, one with a token only, and a name that
 * is no user, interleaved, each from its own address so that no throttle
 * answers instead; the medians. */
static int login_costs(const struct target *t, double med[3])
{
    char dir[] = "/tmp/amp-bench-login-XXXXXX";
    if (!mkdtemp(dir))
        return -1;
    int port = bench_free_port();
    pid_t broker = start_broker(t, dir, port);
    if (broker < 0)
        return -1;
    static const char *users[3] = {"alice", "tokenonly", "nobody"};
    double v[3][5];
    int bad = 0;
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 3; k++)
            bad |= (v[k][i] = failed_login(port, users[k], 10 + 3 * i + k)) < 0;
    for (int k = 0; k < 3; k++)
        med[k] = bench_median(v[k], 5);
    kill(broker, SIGKILL);
    waitpid(broker, NULL, 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    return bad ? -1 : 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: amp-bench login-flood [--before BROKER] [--after BROKER]\n"
            "                             [--flooders N[,N...]] [--seconds S]\n"
            "\n"
            "Routed Sum calls of a logged-in client (sequential) while N connections\n"
            "send bad passwords for a real user, for each broker: p50, p99 and the\n"
            "slowest call, and the broker's login counters. Defaults: --after the\n"
            "amp-broker of this build (with its default settings, and once more with\n"
            "the throttles off to show the worker pool alone), --flooders 0,4,64,\n"
            "--seconds 5. --before adds an older build, with the same files.\n"
            "Then the time of a failed login for a user with a password, one without\n"
            "and an unknown name (each from its own 127.0.0.x address).\n");
}

int bench_login(int argc, char **argv)
{
    const char *before = NULL, *after = AMP_BROKER_PATH, *list = "0,4,64";
    double seconds = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--before") && i + 1 < argc)
            before = argv[++i];
        else if (!strcmp(argv[i], "--after") && i + 1 < argc)
            after = argv[++i];
        else if (!strcmp(argv[i], "--flooders") && i + 1 < argc)
            list = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else {
            usage(strcmp(argv[i], "--help") ? stderr : stdout);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    struct target targets[3];
    int nt = 0;
    if (before)
        targets[nt++] = (struct target){"before", before, ""};
    targets[nt++] = (struct target){"after", after, ""};
    targets[nt++] = (struct target){"after, throttles off", after,
                                    "login_throttle_max = 0\n"
                                    "max_pending_logins_per_address = 64\n"};
    signal(SIGPIPE, SIG_IGN);
    printf("| flooders | broker | calls | p50 ms | p99 ms | max ms | logins failed | "
           "LOGIN_BUSY | LOGIN_THROTTLED |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
    fflush(stdout);
    char *copy = strdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int n = atoi(tok);
        if (n < 0 || n > MAX_FLOODERS) {
            fprintf(stderr, "amp-bench login-flood: 0 to %d flooders\n", MAX_FLOODERS);
            free(copy);
            return 2;
        }
        for (int i = 0; i < nt; i++) {
            struct outcome o;
            run(&targets[i], n, seconds, &o);
            if (!o.calls) {
                printf("| %d | %s | failed to run |  |  |  |  |  |  |\n", n, targets[i].label);
                continue;
            }
            printf("| %d | %s | %zu | %.3f | %.3f | %.1f | %llu | %llu | %llu |%s\n", n,
                   targets[i].label, o.calls, o.p50_ms, o.p99_ms, o.max_ms,
                   (unsigned long long)o.failed, (unsigned long long)o.busy,
                   (unsigned long long)o.throttled, o.ok ? "" : " (a call failed)");
            fflush(stdout);
        }
    }
    free(copy);
    printf("\nA failed login's time (median of 5, ms): a user with a password, a user\n"
           "without one, no such user.\n\n| broker | password user | no password | unknown "
           "| unknown / password user |\n|---|---:|---:|---:|---:|\n");
    for (int i = 0; i < nt; i++) {
        double med[3];
        if (strcmp(targets[i].extra, "")) /* the throttles play no part here */
            continue;
        if (login_costs(&targets[i], med)) {
            printf("| %s | failed to run |  |  |  |\n", targets[i].label);
            continue;
        }
        printf("| %s | %.3f | %.3f | %.3f | %.3f |\n", targets[i].label, med[0] * 1e3,
               med[1] * 1e3, med[2] * 1e3, med[2] / med[0]);
    }
    return 0;
}
