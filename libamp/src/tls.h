/* OpenSSL contexts from amp_tls_config. Internal. */
#ifndef AMP_TLS_H
#define AMP_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "amp/endpoint.h"

/* A context for a server or a client, TLS 1.2 at least. NULL on error, with
 * the reason in err. */
SSL_CTX *amp__tls_ctx(const amp_tls_config *cfg, int server, char *err, size_t err_len);
/* The last OpenSSL error (or `fallback`) into err. */
void amp__tls_error(char *err, size_t err_len, const char *what);

#endif
