/* Endpoint strings in Twisted's syntax.
 *
 * Servers: tcp:PORT[:interface=ADDR][:backlog=N]
 *          ssl:PORT:privateKey=KEY.pem[:certKey=CERT.pem][:extraCertChain=FILE]
 *              [:caCerts=FILE][:caCertsDir=DIR][:clientCert=none|optional|required]
 *              [:interface=ADDR][:backlog=N]
 *          unix:PATH  or  unix:address=PATH[:mode=0666][:backlog=N]
 * Clients: tcp:HOST:PORT  or  tcp:host=HOST:port=PORT[:timeout=SECONDS]
 *          ssl:host=HOST:port=PORT[:caCerts=FILE][:caCertsDir=DIR]
 *              [:certKey=CERT.pem][:privateKey=KEY.pem][:hostname=NAME]
 *          unix:PATH  or  unix:path=PATH[:timeout=SECONDS]
 * A backslash escapes the next character (so "\:" is a colon in a value).
 * caCerts, clientCert and hostname are this project's additions; the rest is
 * Twisted's.
 *
 * Threads, lifetimes, clocks
 * - Threads: nothing here touches a loop or shared state: any thread may
 *   parse, init and free, each on its own structs.
 * - Lifetimes: a parsed amp_endpoint owns its strings (storage_) until
 *   amp_endpoint_free(); amp_connect_endpoint() and amp_acceptor_new()
 *   copy what they keep, so the endpoint may be freed right after. An
 *   endpoint or amp_tls_config filled by hand points at the caller's
 *   strings, which must outlive the call they are passed to; then
 *   amp_endpoint_free() frees nothing of them.
 * - Clocks: `timeout` is seconds on a monotonic clock from the connect
 *   call. */
#ifndef AMP_ENDPOINT_H
#define AMP_ENDPOINT_H

#include <stddef.h>

#include "amp/error.h"
#include "amp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum amp_endpoint_kind {
    AMP_ENDPOINT_TCP = 1,
    AMP_ENDPOINT_SSL = 2,
    AMP_ENDPOINT_UNIX = 3
} amp_endpoint_kind;

typedef enum amp_client_cert {
    AMP_CLIENT_CERT_NONE = 0,
    AMP_CLIENT_CERT_OPTIONAL = 1,
    AMP_CLIENT_CERT_REQUIRED = 2
} amp_client_cert;

/* TLS settings; every string may be NULL. */
typedef struct amp_tls_config {
    const char *private_key;   /* PEM file */
    const char *cert;          /* PEM file; servers default to private_key */
    const char *extra_chain;   /* PEM file of intermediates */
    const char *ca_file;       /* CAs that verify the peer */
    const char *ca_dir;
    const char *hostname;      /* clients: the name the server's certificate
                                  must carry, also sent as SNI; NULL: the
                                  host connected to (tcp:/ssl: endpoints) */
    const char *ciphers;       /* OpenSSL cipher list for TLS 1.2 */
    amp_client_cert client_cert; /* servers */
    int insecure_skip_verify;  /* clients: nonzero accepts any certificate
                                  for any name, so anyone on the path can
                                  read and change the connection. Zero (the
                                  default, also of a zeroed struct): the
                                  server's certificate must chain to the CAs
                                  (the system's when none are given) and
                                  name the host. No endpoint option sets it. */
} amp_tls_config;

/* The defaults: every field NULL or 0 (verify the peer, system CAs). A
 * zeroed struct is the same; calling this keeps a caller right when fields
 * are added. */
AMP_API void amp_tls_config_init(amp_tls_config *tls);

/* A parsed endpoint. Strings point into the struct's own storage. */
typedef struct amp_endpoint {
    amp_endpoint_kind kind;
    int server;
    char *host;        /* clients: host; servers: interface (NULL: any) */
    int port;
    char *path;        /* unix */
    int backlog;       /* servers; default 50 like Twisted */
    int mode;          /* unix servers: permission bits, -1 to leave as is */
    double timeout;    /* clients: connect timeout in seconds; default 30 */
    amp_tls_config tls;
    char *storage_;    /* owns every string above */
} amp_endpoint;

/* Parse `text` as a server (server = 1) or client endpoint. On error returns
 * AMP_E_ENDPOINT and writes a message saying what is wrong into err. */
/* The defaults of a parsed endpoint, for one filled by hand: a TCP client
 * (kind AMP_ENDPOINT_TCP, server 0), no host or path, backlog 50, mode -1,
 * timeout 30, amp_tls_config_init(). Set kind, host and port (or path)
 * before use. (A zeroed endpoint has a timeout of 0: it times out at once.) */
AMP_API void amp_endpoint_init(amp_endpoint *ep);
AMP_API amp_err amp_endpoint_parse(const char *text, int server, amp_endpoint *out, char *err,
                                   size_t err_len);
AMP_API void amp_endpoint_free(amp_endpoint *ep);

#ifdef __cplusplus
}
#endif
#endif
