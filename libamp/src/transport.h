/* Transports: how a connection's bytes cross its socket. Internal.
 *
 * conn.c is the connection state machine (states, session events, reading
 * into the session, flushing its output, closing); everything that depends
 * on what carries the bytes sits behind one small table of operations:
 *
 *   transport_plain.c  TCP (or any stream socket): recv/send
 *   transport_unix.c   UNIX sockets with descriptor passing (SCM_RIGHTS)
 *   transport_tls.c    TLS with OpenSSL, on accept, ssl: or after StartTLS
 *
 * A new transport (a WebSocket framing, for one) is a new file with its own
 * amp__transport_ops and a constructor; conn.c switches to it with
 * amp__conn_set_transport(). If it has a `handshake`, the connection stays
 * in CONN_HANDSHAKE until it
 * reports AMP__IO_DONE, and `ready` follows.
 *
 * The connection owns the socket: a transport borrows `fd` and never closes
 * it, so a switch (StartTLS) keeps the socket and frees only the old
 * transport. Everything runs on the loop's thread. */
#ifndef AMP_TRANSPORT_H
#define AMP_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "amp/error.h"

/* Results of read, write and handshake besides a byte count. */
enum {
    AMP__IO_DONE = 0,        /* handshake: complete */
    AMP__IO_AGAIN = -1,      /* would block: wait for the socket to be readable */
    AMP__IO_WANT_WRITE = -2, /* would block until the socket is writable */
    AMP__IO_FAILED = -3      /* failed: `failure` says why */
};

/* What a failure report is about. */
enum amp__io_op {
    AMP__OP_READ,
    AMP__OP_WRITE,
    AMP__OP_HANDSHAKE,
    AMP__OP_HANDSHAKE_TIMEOUT
};

typedef struct amp__transport amp__transport;

typedef struct amp__transport_ops {
    const char *name; /* "tcp", "unix", "TLS": for error texts */
    /* Bytes read (> 0), 0 at the end of the stream (also a reset: AMP
     * frames its boxes, so a cut stream shows as an incomplete box),
     * AMP__IO_AGAIN, AMP__IO_WANT_WRITE or AMP__IO_FAILED. */
    ssize_t (*read)(amp__transport *t, uint8_t *buf, size_t n);
    /* Bytes of p taken (> 0; may be fewer than n), AMP__IO_AGAIN (wait for
     * writable), or AMP__IO_FAILED. After AMP__IO_AGAIN the next call
     * starts at the same bytes (n may have grown), as OpenSSL requires: a
     * framing transport may keep a half-sent frame and report its payload
     * taken once the frame is all out. */
    ssize_t (*write)(amp__transport *t, const uint8_t *p, size_t n);
    /* Bytes the transport holds already decrypted or decoded, readable
     * without the socket becoming readable again. NULL: none ever. */
    size_t (*pending)(amp__transport *t);
    /* One step of the handshake: AMP__IO_DONE, AMP__IO_AGAIN,
     * AMP__IO_WANT_WRITE or AMP__IO_FAILED. NULL: none. */
    int (*handshake)(amp__transport *t);
    /* The orderly end of our side once all output is written (TLS:
     * close_notify). NULL: nothing to say. */
    void (*shutdown)(amp__transport *t);
    /* Describe the last failure of `op` into buf; returns the connection's
     * close reason (AMP_E_IO, AMP_E_TLS...). */
    amp_err (*failure)(amp__transport *t, enum amp__io_op op, char *buf, size_t len);
    void (*free)(amp__transport *t);
    /* Nonzero: a plain byte stream TLS may be started on (StartTLS). */
    int starttls_ok;
} amp__transport_ops;

/* Every transport's state begins with this. */
struct amp__transport {
    const amp__transport_ops *ops;
    int fd; /* borrowed from the connection; -1 until connected */
};

/* The plain stream transport (TCP). NULL: out of memory. */
amp__transport *amp__transport_plain_new(int fd);
/* UNIX sockets: plain bytes plus descriptors. `max_fds` as in
 * amp_conn_config. */
amp__transport *amp__transport_unix_new(int fd, size_t max_fds);
/* The transport of an accepted or adopted socket: UNIX when `is_unix`. */
amp__transport *amp__transport_socket_new(int fd, int is_unix, size_t max_fds);
/* Nonzero for the UNIX transport. */
int amp__transport_is_unix(const amp__transport *t);

/* For stream transports: a recv()/send() result as a transport result,
 * keeping errno for `failure`. */
ssize_t amp__stream_result(ssize_t r, int *saved_errno, int reading);
/* "read failed: <strerror>" for stream transports. */
amp_err amp__stream_failure(int saved_errno, enum amp__io_op op, char *buf, size_t len);

#endif
