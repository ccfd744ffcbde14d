/* Connections: an amp_session over TCP, a UNIX socket or TLS, on a
 * caller-supplied libev loop.
 *
 * Threads, lifetimes, clocks
 * - Threads: a connection, a listener and an acceptor belong to the thread
 *   that runs their loop; every function here must be called from that
 *   thread (libev loops are not thread-safe), except amp_reserve_fd(),
 *   amp_accept_or_shed(), amp_listen_socket() and the *_init() functions,
 *   which touch no loop. To reach a loop from another thread use an
 *   ev_async of your own (the blocking client has amp_client_wakeup()).
 *   Connecting to a host name runs getaddrinfo() in a short-lived thread of
 *   its own; its result comes back to the loop's thread.
 * - Lifetimes: a connection is freed by the library after its `closed`
 *   callback returns; until then the handle stays valid, also inside its
 *   own callbacks, where amp_conn_close() and amp_conn_abort() are safe (the
 *   work is deferred until the callback returns). Listeners are freed by
 *   amp_listener_free() and acceptors by amp_acceptor_free(), safe inside
 *   their own accept callbacks (the free completes when the callback
 *   returns); accepted connections keep running.
 * - user_data: each user_data the library keeps may come with a
 *   destroy-notify (amp_conn_config.user_data_free,
 *   amp_conn_set_callbacks_full(), amp_listener_set_user_data_free(),
 *   amp_acceptor_config.user_data_free).
 *   It runs exactly once, on the loop's thread: when the user_data or its
 *   notify is replaced (amp_conn_set_callbacks*() with another pair), or when
 *   the object is freed (a connection: after its `closed` callback has
 *   returned). Creation that fails (an error returned at once) never calls
 *   it: the caller still owns the user_data. That is the moment a language
 *   binding drops its reference.
 * - Ownership: the loop is the caller's and must outlive every connection,
 *   listener and acceptor on it (free them, or let connections close,
 *   before ev_loop_destroy()). A connection owns its socket, its session
 *   (amp_conn_session(): use it, never amp_session_free() it) and the
 *   descriptors it holds; amp_conn_config.usage is the caller's and must
 *   outlive the connection. Every other string and struct passed in is
 *   copied or used only during the call; strings returned (error text,
 *   peer name, subject, certificate) are the connection's, valid until it
 *   is freed. Requests (amp_request) outlive their connection.
 * - Clocks: every timeout and deadline is in seconds on a monotonic clock
 *   (CLOCK_MONOTONIC, which libev's timers also use), counted from the call
 *   that starts it, however long the loop sat idle before; wall-clock jumps
 *   change nothing.
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

/* Every callback NULL. */
AMP_API void amp_conn_callbacks_init(amp_conn_callbacks *cb);

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
    /* May be NULL: releases user_data (see "user_data" above). Not allowed
     * in a listener's config, whose user_data every accepted connection
     * shares: set one per connection with amp_conn_set_callbacks_full() in
     * the accept callback. */
    void (*user_data_free)(void *user_data);
} amp_conn_config;

/* Today's defaults, written out: limits from amp_limits_default(),
 * output_high_water 1 MiB, output_hard_cap 64 MiB, handshake_timeout 10,
 * no callbacks, the rest 0. A zeroed struct (or NULL) behaves the same;
 * calling this first keeps a caller right when fields are added. */
AMP_API void amp_conn_config_init(amp_conn_config *cfg);

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
 * connection (AMP_E_INVALID if it has a user_data_free). */
AMP_API amp_err amp_listen(struct ev_loop *loop, const char *endpoint, const amp_conn_config *cfg,
                           amp_accept_cb cb, void *user_data, amp_listener **out, char *err,
                           size_t err_len);
/* A destroy-notify for amp_listen()'s user_data: runs once, when the
 * listener is freed (after the accept callback that freed it returns). */
AMP_API void amp_listener_set_user_data_free(amp_listener *l,
                                             void (*user_data_free)(void *user_data));
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

/* ---- Listening sockets for other protocols --------------------------------
 * What amp_listen() is built on, for servers of other protocols on the same
 * loop (the broker's HTTP metrics endpoint): one way to bind and accept. */

/* Bind and listen on a server endpoint: tcp: and ssl: (TLS is the
 * caller's) on its interface, by default every IPv4 address as in Twisted,
 * with SO_REUSEADDR; unix: at its path (a socket file left by a process
 * that is gone is replaced; EADDRINUSE if someone listens there; `mode`
 * applied). Backlog: the endpoint's. *fd gets a non-blocking, close-on-exec
 * listening socket the caller owns (and the UNIX path: unlink it when
 * done); *port (may be NULL) the bound TCP port (tcp:0 picks one), -1 for
 * UNIX. AMP_OK, AMP_E_INVALID (not a server endpoint), AMP_E_RESOLVE,
 * AMP_E_IO, with a message in err. */
AMP_API amp_err amp_listen_socket(const amp_endpoint *ep, int *fd, int *port, char *err,
                                  size_t err_len);

/* Accepting on a loop, with a descriptor held in reserve: when the process
 * is out of descriptors (EMFILE, ENFILE) the waiting connection is accepted
 * with the reserve and closed at once (its client sees the close instead of
 * waiting; `shed` runs), and accepting pauses for `pause` seconds; so does
 * running out of memory. */
typedef struct amp_acceptor amp_acceptor;
/* A new connection: `fd` is non-blocking and close-on-exec, and now the
 * callee's. amp_acceptor_free() is safe in here. */
typedef void (*amp_acceptor_cb)(amp_acceptor *a, int fd, void *user_data);
typedef struct amp_acceptor_config {
    amp_acceptor_cb accept;  /* NULL: every connection is closed */
    /* May be NULL: a connection was shed (amp_acceptor_shed() counts it). */
    void (*shed)(amp_acceptor *a, void *user_data);
    void *user_data;
    void (*user_data_free)(void *user_data); /* may be NULL; see above */
    double pause;            /* seconds; 0: 0.1 */
} amp_acceptor_config;
/* No callbacks; pause 0.1 s. */
AMP_API void amp_acceptor_config_init(amp_acceptor_config *cfg);
/* amp_listen_socket(ep) accepting on `loop`. `cfg` NULL: defaults. */
AMP_API amp_err amp_acceptor_new(struct ev_loop *loop, const amp_endpoint *ep,
                                 const amp_acceptor_config *cfg, amp_acceptor **out, char *err,
                                 size_t err_len);
AMP_API int amp_acceptor_fd(const amp_acceptor *a);
/* The bound TCP port, -1 for UNIX. */
AMP_API int amp_acceptor_port(const amp_acceptor *a);
/* Connections shed for want of descriptors. */
AMP_API uint64_t amp_acceptor_shed(const amp_acceptor *a);
/* Closes the socket now (and removes a UNIX socket's path). */
AMP_API void amp_acceptor_free(amp_acceptor *a);

/* The reserve-descriptor trick on its own (amp_acceptor uses it): accept4()
 * that survives a full descriptor table. On EMFILE or ENFILE it closes
 * *spare (a descriptor held in reserve, from amp_reserve_fd()), accepts the
 * pending connection and closes it, opens *spare again, adds one to *shed
 * (may be NULL) and returns -1 with errno EMFILE or ENFILE: stop accepting
 * for a moment. The pending connection is
 * gone, so a level-triggered watcher does not fire again for it. Otherwise
 * accept4()'s result and errno. */
AMP_API int amp_accept_or_shed(int listen_fd, int flags, int *spare, uint64_t *shed);
/* A descriptor to hold in reserve (/dev/null), or -1. */
AMP_API int amp_reserve_fd(void);

/* Replace the callbacks and user_data (cb NULL: none), with the
 * destroy-notify of that user_data (may be NULL). The previous user_data's
 * notify runs now, unless the same user_data and the same notify are
 * installed again (then nothing runs and the notify stays). */
AMP_API void amp_conn_set_callbacks_full(amp_conn *c, const amp_conn_callbacks *cb,
                                         void *user_data,
                                         void (*user_data_free)(void *user_data));
/* The same with no destroy-notify for the new user_data. */
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
