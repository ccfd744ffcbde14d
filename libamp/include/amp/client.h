/* A blocking client for scripts, tools and bindings, built on amp_conn with
 * a private libev loop. Also usable from a foreign event loop: watch
 * amp_client_fd() for reading, and call amp_client_step() when it is
 * readable, after starting calls, and when amp_client_timeout() elapses.
 *
 * Threads, lifetimes, clocks
 * - Threads: a client belongs to one thread at a time: its functions must
 *   not run concurrently with each other. The exception is
 *   amp_client_wakeup(), safe from any thread and from a signal handler at
 *   any time between amp_client_connect() returning the client and
 *   amp_client_free() being called (make sure the other thread is done
 *   with it, e.g. join it, before freeing).
 * - Lifetimes: the client owns its loop, its connection and their
 *   callbacks; amp_client_free() closes the connection. A reply belongs to
 *   the caller until amp_reply_free(); it does not depend on the client.
 *   Error texts are the client's, valid until its next call or free.
 * - Clocks: timeouts are seconds on a monotonic clock counted from the
 *   call, however long the client sat idle before. */
#ifndef AMP_CLIENT_H
#define AMP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "amp/conn.h"
#include "amp/error.h"
#include "amp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct amp_client amp_client;

/* A finished call: an owned copy of the answer or error box. */
typedef struct amp_reply {
    int status;      /* AMP_OK, AMP_E_REMOTE, AMP_E_TIMEOUT, AMP_E_CLOSED, ... */
    amp_box box;     /* the answer or error box (count 0 if none) */
    const amp_pair *error_code, *error_description; /* for AMP_E_REMOTE */
} amp_reply;

AMP_API void amp_reply_free(amp_reply *r);
/* An owned copy of a box. */
AMP_API amp_err amp_reply_from_result(const amp_result *r, amp_reply **out);

/* Connect and wait until the connection is ready (TLS included), at most
 * `timeout` seconds (0: the endpoint's own timeout). */
AMP_API amp_err amp_client_connect(amp_client **out, const char *endpoint, double timeout,
                                   char *err, size_t err_len);
/* The same with a parsed endpoint (to adjust its TLS settings first). */
AMP_API amp_err amp_client_connect_endpoint(amp_client **out, const amp_endpoint *ep,
                                            double timeout, char *err, size_t err_len);
/* Call and wait for the outcome; *reply (always set on AMP_OK and on
 * AMP_E_REMOTE) must be freed with amp_reply_free(). Returns the call's
 * status: AMP_OK, AMP_E_REMOTE, AMP_E_TIMEOUT, AMP_E_CLOSED,
 * AMP_E_CANCELLED (amp_client_wakeup()), or an error from
 * amp_session_call(). */
AMP_API amp_err amp_client_call(amp_client *c, const char *command, const amp_pair *args,
                                size_t n, double timeout, amp_reply **reply);
/* StartTLS, waiting for the handshake. On AMP_E_TIMEOUT the connection is
 * closed: a StartTLS left half done leaves the stream in no usable state
 * (and its late answer must not arrive after this returned). */
AMP_API amp_err amp_client_start_tls(amp_client *c, const amp_tls_config *tls, double timeout);
/* The underlying connection (for descriptors, responders on its session,
 * asynchronous calls with amp_conn_call()); NULL once closed. The client
 * owns its callbacks: do not replace them with amp_conn_set_callbacks(). */
AMP_API amp_conn *amp_client_conn(amp_client *c);
/* Why the connection failed or closed. */
AMP_API const char *amp_client_error_text(const amp_client *c);
AMP_API void amp_client_free(amp_client *c);

/* Interrupt a wait, from any thread (see above). A blocked
 * amp_client_call() returns AMP_E_CANCELLED promptly: its call is
 * cancelled (*reply, status AMP_E_CANCELLED, is set as usual; a late answer
 * is dropped and counted by amp_session_late_answers()); the connection
 * stays usable. A blocked amp_client_start_tls() returns AMP_E_CANCELLED
 * and, as on its timeout, closes the connection. One wakeup ends one wait:
 * if none is in progress it is kept, and the next amp_client_call() or
 * amp_client_start_tls() returns AMP_E_CANCELLED at once (several wakeups
 * before a wait count as one); a wait that completes in the same loop turn
 * as the wakeup returns its outcome and uses the wakeup up.
 * amp_client_step() never blocks and leaves a pending wakeup pending. Made
 * with an ev_async on the client's loop (async-signal-safe). */
AMP_API void amp_client_wakeup(amp_client *c);

/* Foreign loops. */
AMP_API int amp_client_fd(const amp_client *c);
/* Run whatever is ready without blocking: reads, writes, timers. */
AMP_API void amp_client_step(amp_client *c);
/* Seconds until amp_client_step() must run for timers; -1: no timer.
 * Timeouts count from when a call is made, on a monotonic clock, however
 * long the loop was left idle before. */
AMP_API double amp_client_timeout(const amp_client *c);

#ifdef __cplusplus
}
#endif
#endif
