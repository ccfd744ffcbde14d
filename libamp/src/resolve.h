/* Host names resolved off the loop. Internal.
 *
 * getaddrinfo() blocks (DNS can take seconds), so each lookup runs it in a
 * short-lived thread of its own, which hands the result back to the loop
 * through an ev_async watcher. The answer is the system resolver's, exactly
 * as for any other program on the host (nsswitch, /etc/hosts, address
 * order). Nothing is shared between lookups. */
#ifndef AMP_RESOLVE_H
#define AMP_RESOLVE_H

#include <ev.h>
#include <netdb.h>

typedef struct amp__lookup amp__lookup;

/* The lookup's outcome, on the loop: the addresses (the callee owns them:
 * freeaddrinfo), or NULL and a getaddrinfo() error code. */
typedef void (*amp__lookup_cb)(void *user_data, struct addrinfo *addrs, int gai_error);

/* Resolve host:port for TCP. The callback runs once, from the loop, unless
 * the lookup is cancelled first. NULL if no thread could be started. */
amp__lookup *amp__lookup_start(struct ev_loop *loop, const char *host, int port,
                               amp__lookup_cb cb, void *user_data);
/* The callback will not run. The thread, if still resolving, frees the
 * lookup when getaddrinfo() returns. On the loop's thread only. */
void amp__lookup_cancel(amp__lookup *lk);

#endif
