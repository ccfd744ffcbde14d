/* amp-bench: benchmarks that run libamp and a reference side by side. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_percentiles(double *lat, size_t n, double *p50_us, double *p99_us)
{
    qsort(lat, n, sizeof *lat, cmp_double);
    *p50_us = lat[n / 2] * 1e6;
    *p99_us = lat[n * 99 / 100] * 1e6;
}

int bench_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    bind(s, (struct sockaddr *)&sa, sizeof sa);
    getsockname(s, (struct sockaddr *)&sa, &sl);
    close(s);
    return ntohs(sa.sin_port);
}

const char *bench_tools_dir(void)
{
    const char *env = getenv("AMP_BENCH_TOOLS");
    return env ? env : AMP_BENCH_TOOLS_DIR;
}

static const char *find_key(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    return p ? p + strlen(pat) : NULL;
}

int bench_json_size(const char *json, const char *key, size_t *out)
{
    const char *p = find_key(json, key);
    if (!p)
        return -1;
    *out = (size_t)strtoull(p, NULL, 10);
    return 0;
}

int bench_json_doubles(const char *json, const char *key, double *out, int n)
{
    const char *p = find_key(json, key);
    if (!p || !(p = strchr(p, '[')))
        return -1;
    p++;
    for (int i = 0; i < n; i++) {
        char *end;
        out[i] = strtod(p, &end);
        if (end == p)
            return -1;
        p = end;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "codec"))
        return bench_codec(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "call"))
        return bench_call(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "broker"))
        return bench_broker(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "pubsub"))
        return bench_pubsub(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "login-flood"))
        return bench_login(argc - 1, argv + 1);
    printf("usage: amp-bench codec|call|broker|pubsub [--runs N] [--quick]\n"
           "       amp-bench login-flood [--before BROKER] [--flooders N,...] [--seconds S]\n"
           "\n"
           "Benchmarks that run libamp and the reference implementation in the same\n"
           "run and print the ratio.\n"
           "  codec   decode/encode throughput against Twisted's parser and serializer\n"
           "  call    calls/s and latency against a Twisted server and a raw socket\n"
           "  broker  routed calls, fan-out and memory against nats-server\n"
           "  pubsub  publishing with 0 and 100,000 non-matching subscriptions, and\n"
           "          100,000 subscribes, against nats-server\n"
           "  login-flood  routed-call latency while connections send bad passwords\n");
    return argc >= 2 && strcmp(argv[1], "--help") ? 2 : 0;
}
