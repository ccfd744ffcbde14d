/* The connection object, shared by the files of the connection layer:
 *   conn.c           the state machine: session events, reading, flushing,
 *                    closing, the deferred free
 *   conn_timers.c    call deadlines, the box timeout, the connect and
 *                    handshake timeout, the monotonic clock
 *   connect.c        connecting to endpoints (with resolve.c), adopting
 *   transport_*.c    the bytes on the socket (see transport.h)
 *   listener.c, acceptor.c   accepting
 * Internal. */
#ifndef AMP_CONN_INTERNAL_H
#define AMP_CONN_INTERNAL_H

#include <ev.h>
#include <openssl/ssl.h>

#include "amp/conn.h"
#include "transport.h"

enum conn_state {
    CONN_CONNECTING,
    CONN_HANDSHAKE, /* the transport's handshake, TLS or other */
    CONN_OPEN,
    CONN_CLOSING, /* writing what is left, then closing */
    CONN_CLOSED
};

struct amp_conn {
    struct ev_loop *loop;
    amp__transport *t; /* never NULL; its fd is the connection's socket */
    enum conn_state state;
    amp_session *s;
    amp_conn_callbacks cb;
    void *user_data;
    void (*user_data_free)(void *user_data); /* runs once: replaced or freed */

    ev_io rio, wio;
    ev_prepare prep;   /* writes buffered output before the loop blocks */
    ev_timer timer;    /* the earliest call deadline */
    ev_timer connect_timer; /* connecting, or a handshake: its time is up */
    uint64_t armed_deadline;
    int timer_armed;

    /* TLS to come (transport_tls.c) */
    SSL_CTX *pending_tls_ctx; /* client: ssl: endpoint or StartTLS, not yet started */
    SSL_CTX *serve_tls_ctx;   /* server: answers StartTLS with this */
    uint64_t tls_mark;        /* server StartTLS: output position where TLS starts */
    char *hostname;     /* TLS client: the name the certificate must carry */
    int verify_host;

    /* connecting (connect.c) */
    char *connect_host; /* the host name or address connected to, or NULL */
    struct amp__lookup *lookup; /* resolving connect_host, or NULL */
    struct addrinfo *addrs;     /* resolved addresses, tried in turn */
    struct addrinfo *next_addr; /* the next one to try */
    int connect_errno;          /* why the last address failed */

    int closing_after_handshake;
    int ready_reported;

    double box_timeout;   /* 0: none */
    ev_timer box_timer;   /* runs while a box is partly received */
    uint64_t box_start;   /* stream offset of that box's first byte */

    uint64_t bytes_in, bytes_out;
    double handshake_timeout;
    char peer_name[64];
    int depth;          /* nesting of our callbacks on the stack */
    int finish_pending; /* close requested from inside a callback */
    int finish_reason;
    char error[300];
};

/* A connection over `t` (taken: freed on failure too), in CONN_OPEN. */
amp_conn *amp__conn_new(struct ev_loop *loop, amp__transport *t, const amp_conn_config *cfg);
/* Frees at once: only for a connection no callback has seen. */
void amp__conn_free_unused(amp_conn *c);
/* Begin reading a plain connection, or the TLS handshake with `ctx`. */
int amp__conn_accepted(amp_conn *c, SSL_CTX *ctx);
void amp__conn_tune_tcp(int fd);

/* ---- for the other files of the connection layer (conn.c) ---- */
/* Around work that may run user callbacks: the connection is freed at the
 * outermost leave() once closed. */
void amp__conn_enter(amp_conn *c);
void amp__conn_leave(amp_conn *c);
/* Tear down now (deferred to the outermost callback if inside one). */
void amp__conn_finish(amp_conn *c, int reason);
/* The first error text sticks. */
void amp__conn_set_error(amp_conn *c, const char *fmt, const char *detail);
/* Close because the transport failed at `op`. */
void amp__conn_transport_failed(amp_conn *c, enum amp__io_op op);
/* Replace the transport (the socket stays). With a handshake, the
 * connection waits for it (CONN_HANDSHAKE); else it is open. */
void amp__conn_set_transport(amp_conn *c, amp__transport *t);
/* Connected (or handshake done): report `ready` once, then flush. */
void amp__conn_report_ready(amp_conn *c);
void amp__conn_flush(amp_conn *c);

/* ---- connect.c ---- */
/* A CONN_CONNECTING socket became writable: connected, or the next address. */
void amp__conn_connected(amp_conn *c);
/* Connect to each of `addrs` in turn (taking them) until one connects; the
 * endpoint supplies the rest (TLS, host name, timeout). The path for
 * numeric hosts and, after the lookup, for names; tests call it directly
 * with a list of their own. */
struct addrinfo;
amp_err amp__connect_addrinfo(struct ev_loop *loop, const amp_endpoint *ep,
                              const amp_conn_config *cfg, struct addrinfo *addrs,
                              amp_conn **out, char *err, size_t err_len);

/* ---- transport_tls.c ---- */
/* Switch c to a TLS transport on its socket (the handshake follows), with
 * c->hostname and c->verify_host for a client. Nonzero: could not (the
 * old transport stays). */
int amp__tls_start(amp_conn *c, SSL_CTX *ctx, int server);
/* Start the client side of TLS with c->pending_tls_ctx (ssl: once
 * connected, StartTLS once answered). Nonzero: could not. */
int amp__tls_client_begin(amp_conn *c);
/* The StartTLS answer is written: the server side of TLS starts now. */
void amp__tls_server_begin(amp_conn *c);
/* Frees the TLS plans a connection holds (contexts, host name). */
void amp__tls_plans_free(amp_conn *c);

/* ---- conn_timers.c ---- */
/* Milliseconds on a monotonic clock read now: the clock of call deadlines.
 * (ev_now() is the loop's cached time, stale when the loop has not run.) */
uint64_t amp__now_ms(void);
/* Start a one-shot timer `after` seconds from now, not from the loop's
 * cached time. */
void amp__timer_start_fresh(struct ev_loop *loop, ev_timer *t, double after);
/* Set up the connection's timers (at creation). */
void amp__conn_timers_init(amp_conn *c);
/* Start the connect (or handshake) timeout. */
void amp__conn_deadline_start(amp_conn *c, double seconds);
/* Re-arm the call deadline timer after calls were made. */
void amp__conn_arm_call_timer(amp_conn *c);
/* After input: start, keep or stop the incomplete-box clock. */
void amp__conn_watch_partial_box(amp_conn *c);
/* Stop every timer (closing). */
void amp__conn_timers_stop(amp_conn *c);

#endif
