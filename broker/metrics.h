/* An HTTP listener serving the broker's counters at /metrics in the
 * Prometheus text format (router_metrics, written by stats.c).
 *
 * Who calls it: main.c, when metrics_listen is set. Lifetimes: it keeps
 * the router pointer: metrics_free before router_free. Loop thread only. */
#ifndef AMP_BROKER_METRICS_H
#define AMP_BROKER_METRICS_H

#include <stddef.h>

#include "router.h"

typedef struct metrics_server metrics_server;

/* `endpoint` is a tcp: server endpoint. NULL on error, with a message. */
metrics_server *metrics_listen(struct ev_loop *loop, const char *endpoint, router *r, char *err,
                               size_t err_len);
int metrics_port(const metrics_server *m);
/* The address it serves, as a URL to paste: http://127.0.0.1:9760/metrics,
 * http://[::1]:9760/metrics. Written into buf, which is returned. */
const char *metrics_url(const metrics_server *m, char *buf, size_t len);
void metrics_free(metrics_server *m);

#endif
