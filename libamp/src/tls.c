/* OpenSSL contexts: certificates, CAs, verification, TLS 1.2 floor. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

void amp__tls_error(char *err, size_t err_len, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    if (err && err_len)
        snprintf(err, err_len, "%s%s%s", what, *buf ? ": " : "", buf);
}

/* Intermediate certificates sent after ours (Twisted's extraCertChain). */
static int load_extra_chain(SSL_CTX *ctx, const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    if (!bio)
        return -1;
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        if (!SSL_CTX_add_extra_chain_cert(ctx, x)) {
            X509_free(x);
            BIO_free(bio);
            return -1;
        }
        n++;
    }
    ERR_clear_error(); /* the end of the file reads as an error */
    BIO_free(bio);
    return n ? 0 : -1;
}

SSL_CTX *amp__tls_ctx(const amp_tls_config *cfg, int server, char *err, size_t err_len)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) {
        amp__tls_error(err, err_len, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (cfg->ciphers && !SSL_CTX_set_cipher_list(ctx, cfg->ciphers)) {
        amp__tls_error(err, err_len, "bad cipher list");
        goto fail;
    }
    const char *cert = cfg->cert ? cfg->cert : cfg->private_key;
    if (cert && !SSL_CTX_use_certificate_chain_file(ctx, cert)) {
        char what[512];
        snprintf(what, sizeof what, "cannot load certificate %s", cert);
        amp__tls_error(err, err_len, what);
        goto fail;
    }
    if (cfg->extra_chain && load_extra_chain(ctx, cfg->extra_chain)) {
        char what[512];
        snprintf(what, sizeof what, "cannot load certificate chain %s", cfg->extra_chain);
        amp__tls_error(err, err_len, what);
        goto fail;
    }
    if (cfg->private_key) {
        if (!SSL_CTX_use_PrivateKey_file(ctx, cfg->private_key, SSL_FILETYPE_PEM)) {
            char what[512];
            snprintf(what, sizeof what, "cannot load private key %s", cfg->private_key);
            amp__tls_error(err, err_len, what);
            goto fail;
        }
        if (!SSL_CTX_check_private_key(ctx)) {
            amp__tls_error(err, err_len, "the private key does not match the certificate");
            goto fail;
        }
    }
    if (cfg->ca_file || cfg->ca_dir) {
        if (!SSL_CTX_load_verify_locations(ctx, cfg->ca_file, cfg->ca_dir)) {
            char what[512];
            snprintf(what, sizeof what, "cannot load CA certificates %s",
                     cfg->ca_file ? cfg->ca_file : cfg->ca_dir);
            amp__tls_error(err, err_len, what);
            goto fail;
        }
    } else if (!server) {
        SSL_CTX_set_default_verify_paths(ctx);
    }
    if (server) {
        int mode = SSL_VERIFY_NONE;
        if (cfg->client_cert == AMP_CLIENT_CERT_OPTIONAL)
            mode = SSL_VERIFY_PEER;
        else if (cfg->client_cert == AMP_CLIENT_CERT_REQUIRED)
            mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
    } else {
        SSL_CTX_set_verify(ctx, cfg->insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                           NULL);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}
