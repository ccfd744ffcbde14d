/* amp-bench: shared helpers. */
#ifndef AMP_BENCH_H
#define AMP_BENCH_H

#include <stddef.h>

double bench_now(void);
double bench_median(double *v, int n);
/* Sorts `lat` (seconds) and gives its p50 and p99 in microseconds. */
void bench_percentiles(double *lat, size_t n, double *p50_us, double *p99_us);
/* A loopback TCP port that was free a moment ago. */
int bench_free_port(void);
/* Directory holding the helper scripts (twisted_*.py). */
const char *bench_tools_dir(void);
/* Minimal readers for the flat JSON the helper scripts print. */
int bench_json_size(const char *json, const char *key, size_t *out);
int bench_json_doubles(const char *json, const char *key, double *out, int n);

int bench_codec(int argc, char **argv);
int bench_call(int argc, char **argv);
int bench_broker(int argc, char **argv);
int bench_login(int argc, char **argv);
int bench_pubsub(int argc, char **argv);

#endif
