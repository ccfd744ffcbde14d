/* The connection object, shared by conn.c and listener.c. Internal. */
#ifndef AMP_CONN_INTERNAL_H
#define AMP_CONN_INTERNAL_H

#include <ev.h>
#include <openssl/ssl.h>

#include "amp/conn.h"

enum conn_state {
    CONN_CONNECTING,
    CONN_TLS_HANDSHAKE,
    CONN_OPEN,
    CONN_CLOSING, /* writing what is left, then closing */
    CONN_CLOSED
};

struct amp_conn {
    struct ev_loop *loop;
    int fd;
    enum conn_state state;
    amp_session *s;
    amp_conn_callbacks cb;
    void *user_data;

    ev_io rio, wio;
    ev_prepare prep;   /* writes buffered output before the loop blocks */
    ev_timer timer;    /* the earliest call deadline */
    ev_timer connect_timer;
    uint64_t armed_deadline;
    int timer_armed;

    SSL *ssl;
    SSL_CTX *pending_tls_ctx; /* client: ssl: endpoint or StartTLS, not yet started */
    SSL_CTX *serve_tls_ctx;   /* server: answers StartTLS with this */
    uint64_t tls_mark;        /* server StartTLS: output position where TLS starts */
    char *connect_host; /* the host name or address connected to, or NULL */
    struct amp__lookup *lookup; /* resolving connect_host, or NULL */
    struct addrinfo *addrs;     /* resolved addresses, tried in turn */
    struct addrinfo *next_addr; /* the next one to try */
    int connect_errno;          /* why the last address failed */
    char *hostname;     /* TLS client: the name the certificate must carry */
    int verify_host;
    char *peer_subject;
    uint8_t *peer_der;  /* the verified peer certificate (DER), or NULL */
    size_t peer_der_len;
    int closing_after_handshake;
    int ready_reported;

    int unix_socket;
    int *send_fds;
    size_t nsend_fds;
    int64_t sent_fd_count;
    struct held_fd {
        int64_t ordinal;
        int fd;
    } *held_fds;          /* received, not yet taken: at most max_fds */
    size_t nheld_fds, held_cap, max_fds;
    int64_t recv_fd_count; /* ordinal of the next descriptor received */
    uint64_t fds_refused;

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

amp_conn *amp__conn_new(struct ev_loop *loop, int fd, const amp_conn_config *cfg);
/* Begin reading a plain connection, or the TLS handshake with `ctx`. */
int amp__conn_accepted(amp_conn *c, SSL_CTX *ctx);
void amp__conn_tune_tcp(int fd);
/* Connect to each of `addrs` in turn (taking them) until one connects; the
 * endpoint supplies the rest (TLS, host name, timeout). The path for
 * numeric hosts and, after the lookup, for names; tests call it directly
 * with a list of their own. */
struct addrinfo;
amp_err amp__connect_addrinfo(struct ev_loop *loop, const amp_endpoint *ep,
                              const amp_conn_config *cfg, struct addrinfo *addrs,
                              amp_conn **out, char *err, size_t err_len);
/* Milliseconds on a monotonic clock read now: the clock of call deadlines.
 * (ev_now() is the loop's cached time, stale when the loop has not run.) */
uint64_t amp__now_ms(void);
/* Start a one-shot timer `after` seconds from now, not from the loop's
 * cached time. */
void amp__timer_start_fresh(struct ev_loop *loop, ev_timer *t, double after);

#endif
