/* An HTTP listener serving the broker's counters at /metrics in the
 * Prometheus text format. */
#ifndef AMP_BROKER_METRICS_H
#define AMP_BROKER_METRICS_H

#include <stddef.h>

#include "router.h"

typedef struct metrics_server metrics_server;

/* `endpoint` is a tcp: server endpoint. NULL on error, with a message. */
metrics_server *metrics_listen(struct ev_loop *loop, const char *endpoint, router *r, char *err,
                               size_t err_len);
int metrics_port(const metrics_server *m);
void metrics_free(metrics_server *m);

#endif
