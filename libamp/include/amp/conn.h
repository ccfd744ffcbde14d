/* Connections: an amp_session over TCP, a UNIX socket or TLS, on a
 * caller-supplied libev loop.
 *
 * Ownership: a connection is freed by the library after its `closed`
 * callback returns; until then the handle stays valid, also inside its own
 * callbacks, where amp_conn_close() and amp_conn_abort() are safe (the work
 * is deferred until the callback returns). Listeners are freed by
 * amp_listener_free(), which leaves accepted connections running.
 *
 * Writes: calls and answers made on amp_conn_session() are buffered by the
 * session and written before the loop next blocks (several at once when
 * they come together). The session's high-water mark raises `backpressure`
 * (slow down); its hard cap makes calls fail with AMP_E_BACKPRESSURE.
 *
 * TLS runs on the socket with OpenSSL; TLS 1.2 is the floor. A process using
 * TLS should ignore SIGPIPE (OpenSSL writes with write(2)). */
#ifndef AMP_CONN_H
#define AMP_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "amp/endpoint.h"
#include "amp/error.h"
#include "amp/export.h"
#include "amp/session.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ev_loop;
typedef struct amp_conn amp_conn;
typedef struct amp_listener amp_listener;

typedef struct amp_conn_callbacks {
    /* The connection is established (and TLS is up, for ssl:). */
    void (*ready)(amp_conn *c, void *user_data);
    /* The connection is gone. `reason` is AMP_E_CLOSED for an orderly end,
     * or AMP_E_IO, AMP_E_TLS, AMP_E_CONNECT, AMP_E_RESOLVE, a protocol error
     * code...; amp_conn_error_text() says more. The handle is freed when
     * this returns. Every outstanding call has completed before it runs. */
    void (*closed)(amp_conn *c, int reason, void *user_data);
    /* Output above the high-water mark (over = 1) or drained (over = 0). */
    void (*backpressure)(amp_conn *c, int over, void *user_data);
} amp_conn_callbacks;

typedef struct amp_conn_config {
    amp_limits limits;        /* decoder caps; zeroes: defaults */
    size_t output_high_water; /* 0: 1 MiB */
    size_t output_hard_cap;   /* 0: 64 MiB */
    double handshake_timeout; /* accepted TLS connections: seconds to finish
                                 the handshake, then closed; 0: 10 */
    amp_conn_callbacks callbacks;
    void *user_data;
    amp_usage *usage;         /* shared accounting of the session's buffers
                                 (see amp_session_config); NULL: none */
    double box_timeout; /* seconds within which a box that has started
                           arriving must be complete, measured from its
                           first byte (more bytes do not extend it); else
                           the connection closes with AMP_E_TIMEOUT and the
                           error text "incomplete box timed out"; 0: no limit */
    size_t max_fds;     /* descriptors (SCM_RIGHTS, UNIX sockets) this
                           connection keeps until amp_conn_take_fd() takes
                           them; 0 (default): none, every descriptor received
                           is closed at once. Beyond the cap, closed at once.
                           Each refused one counts in amp_conn_fds_refused() */
} amp_conn_config;

/* Connect to a client endpoint string (see endpoint.h). AMP_OK means the
 * attempt started: `ready` or `closed` follows. A host name is resolved
 * without blocking the loop (getaddrinfo in a thread of its own per lookup;
 * numeric addresses need none), and every address it gives is tried in
 * turn until one connects; the endpoint's timeout covers all of it. A name
 * that does not resolve ends in `closed` with AMP_E_RESOLVE, addresses that
 * all refuse with AMP_E_CONNECT. Errors returned at once (no callback
 * runs): AMP_E_ENDPOINT (with a message in err), AMP_E_TLS (bad certificate
 * files), AMP_E_CONNECT (a numeric address or UNIX path failed at once),
 * AMP_E_RESOLVE (no thread for the lookup), AMP_E_NOMEM. amp_conn_fd() is
 * -1 until a socket exists. */
AMP_API amp_err amp_connect(struct ev_loop *loop, const char *endpoint,
                            const amp_conn_config *cfg, amp_conn **out, char *err,
                            size_t err_len);
AMP_API amp_err amp_connect_endpoint(struct ev_loop *loop, const amp_endpoint *ep,
                                     const amp_conn_config *cfg, amp_conn **out, char *err,
                                     size_t err_len);

/* Wrap a socket that is already connected (socketpair(), socket activation,
 * an inherited descriptor). The connection owns `fd` from now on, also on
 * error. No `ready` callback follows: it is ready now. */
AMP_API amp_err amp_conn_adopt(struct ev_loop *loop, int fd, const amp_conn_config *cfg,
                               amp_conn **out);

/* A new connection accepted by a listener. Set its callbacks with
 * amp_conn_set_callbacks() and its responders on amp_conn_session(). */
typedef void (*amp_accept_cb)(amp_listener *l, amp_conn *c, void *user_data);

/* Listen on a server endpoint string. `cfg` applies to every accepted
 * connection. */
AMP_API amp_err amp_listen(struct ev_loop *loop, const char *endpoint, const amp_conn_config *cfg,
                           amp_accept_cb cb, void *user_data, amp_listener **out, char *err,
                           size_t err_len);
/* The bound TCP port (useful with tcp:0), or -1 for UNIX sockets. */
AMP_API int amp_listener_port(const amp_listener *l);
/* Connections accepted and closed at once because the process was out of
 * descriptors (EMFILE, ENFILE): their clients see the connection close
 * instead of waiting, and the listener pauses accepting for 0.1 s. */
AMP_API uint64_t amp_listener_shed(const amp_listener *l);
/* Closes the listening socket now. Safe inside the accept callback (the
 * listener itself is freed when the callback returns). Accepted
 * connections keep running. */
AMP_API void amp_listener_free(amp_listener *l);

/* For other listening sockets (the reserve-descriptor trick every libamp
 * listener uses): accept4() that survives a full descriptor table. On
 * EMFILE or ENFILE it closes *spare (a descriptor held in reserve, from
 * amp_reserve_fd()), accepts the pending connection and closes it, opens
 * *spare again, adds one to *shed (may be NULL) and returns -1 with errno
 * EMFILE or ENFILE: stop accepting for a moment. The pending connection is
 * gone, so a level-triggered watcher does not fire again for it. Otherwise
 * accept4()'s result and errno. */
AMP_API int amp_accept_or_shed(int listen_fd, int flags, int *spare, uint64_t *shed);
/* A descriptor to hold in reserve (/dev/null), or -1. */
AMP_API int amp_reserve_fd(void);

AMP_API void amp_conn_set_callbacks(amp_conn *c, const amp_conn_callbacks *cb, void *user_data);
AMP_API amp_session *amp_conn_session(amp_conn *c);
AMP_API struct ev_loop *amp_conn_loop(amp_conn *c);
AMP_API int amp_conn_fd(const amp_conn *c);

/* A call with a timeout in seconds (0: none), counted from now on a
 * monotonic clock (not the loop's cached time, which is stale when the loop
 * has not run for a while). The rest is amp_session_call_str(). */
AMP_API amp_err amp_conn_call(amp_conn *c, const char *command, const amp_pair *args, size_t n,
                              double timeout, amp_result_cb cb, void *user_data,
                              uint64_t *call_id);
/* The same with the command as bytes. */
AMP_API amp_err amp_conn_call_bytes(amp_conn *c, const uint8_t *command, size_t command_len,
                                    const amp_pair *args, size_t n, double timeout,
                                    amp_result_cb cb, void *user_data, uint64_t *call_id);
/* The same without _ask: nothing comes back. */
AMP_API amp_err amp_conn_send(amp_conn *c, const char *command, const amp_pair *args, size_t n);

/* Write what is buffered, then close; `closed` follows with AMP_E_CLOSED. */
AMP_API void amp_conn_close(amp_conn *c);
/* Close now, dropping unwritten output. */
AMP_API void amp_conn_abort(amp_conn *c);

/* StartTLS as a client: sends StartTLS, holds later boxes back, and starts
 * the TLS handshake (with `tls`: CAs, hostname, client certificate) when the
 * answer arrives; `cb` gets the answer. Not on TLS or UNIX-fd connections. */
AMP_API amp_err amp_conn_start_tls(amp_conn *c, const amp_tls_config *tls, amp_result_cb cb,
                                   void *user_data);
/* StartTLS as a server: answer StartTLS calls and start TLS right after the
 * answer, with these settings (certificate, key, client CAs). */
AMP_API amp_err amp_conn_serve_start_tls(amp_conn *c, const amp_tls_config *tls);
/* 1 once TLS is up. */
AMP_API int amp_conn_is_tls(const amp_conn *c);
/* The peer certificate's subject ("/CN=..."), or NULL. Valid while c is. */
AMP_API const char *amp_conn_peer_subject(amp_conn *c);
/* The peer's certificate as the TLS handshake received and verified it,
 * DER-encoded: 0 with *der and *len set, or -1 when there is none (no TLS,
 * no certificate, or verification did not succeed). The bytes belong to
 * the connection and stay valid until it is freed (after its `closed`
 * callback); parse them (d2i_X509) to read names: the one-line subject of
 * amp_conn_peer_subject() is for logs, not for identity (a field may
 * contain "/CN="). */
AMP_API int amp_conn_peer_certificate_der(amp_conn *c, const uint8_t **der, size_t *len);

/* Descriptor passing over UNIX sockets, as Twisted does it: the descriptor
 * (duplicated; the caller keeps its own) rides with the next byte written,
 * and *ordinal is the value to put in the Descriptor argument. */
AMP_API amp_err amp_conn_send_fd(amp_conn *c, int fd, int64_t *ordinal);
/* The received descriptor with that ordinal, now owned by the caller, or
 * -1 (never received, already taken, or refused). Only connections that
 * opted in with amp_conn_config.max_fds keep descriptors: at most max_fds
 * of them at a time; the rest are closed as they arrive (a peer could
 * otherwise fill the process's descriptor table), and their ordinals still
 * count, so later ordinals match the sender's. Descriptors never taken are
 * closed with the connection. */
AMP_API int amp_conn_take_fd(amp_conn *c, int64_t ordinal);
/* Descriptors closed on arrival: no opt-in, or max_fds already held. */
AMP_API uint64_t amp_conn_fds_refused(const amp_conn *c);

/* AMP bytes received and sent so far (after TLS decryption). */
AMP_API uint64_t amp_conn_bytes_in(const amp_conn *c);
AMP_API uint64_t amp_conn_bytes_out(const amp_conn *c);
/* The peer's address ("127.0.0.1:5555", "unix"), for logs. */
AMP_API const char *amp_conn_peer_name(amp_conn *c);

/* A description of why the connection failed or closed ("" if none). */
AMP_API const char *amp_conn_error_text(const amp_conn *c);

#ifdef __cplusplus
}
#endif
#endif
