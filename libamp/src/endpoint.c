/* Twisted-style endpoint strings. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/endpoint.h"

#define MAX_FIELDS 16

static amp_err fail(char *err, size_t n, const char *text, const char *fmt, ...)
{
    if (err && n) {
        int k = snprintf(err, n, "endpoint '%s': ", text);
        if (k >= 0 && (size_t)k < n) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + k, n - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return AMP_E_ENDPOINT;
}

/* Split on unescaped ':' into `fields`, unescaping in place in `buf`. */
static int split(char *buf, char **fields, int max)
{
    int n = 0;
    char *w = buf;
    fields[n++] = w;
    for (char *r = buf; *r; r++) {
        if (*r == '\\' && r[1]) {
            *w++ = *++r;
        } else if (*r == ':') {
            *w++ = '\0';
            if (n == max)
                return -1;
            fields[n++] = w;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return n;
}

static int parse_int(const char *s, long lo, long hi, int base, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, base);
    if (!*s || *end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !(v > 0) || v > 86400 * 365)
        return -1;
    *out = v;
    return 0;
}

amp_err amp_endpoint_parse(const char *text, int server, amp_endpoint *out, char *err,
                           size_t err_len)
{
    if (!text || !out)
        return AMP_E_INVALID;
    amp_endpoint_init(out);
    out->kind = 0; /* set by the parse */
    out->server = server;
    char *buf = strdup(text);
    if (!buf)
        return AMP_E_NOMEM;
    out->storage_ = buf;
    char *f[MAX_FIELDS];
    int nf = split(buf, f, MAX_FIELDS);
    if (nf < 0) {
        amp_endpoint_free(out);
        return fail(err, err_len, text, "too many fields");
    }
    const char *kind = f[0];
    if (!strcmp(kind, "tcp"))
        out->kind = AMP_ENDPOINT_TCP;
    else if (!strcmp(kind, "ssl"))
        out->kind = AMP_ENDPOINT_SSL;
    else if (!strcmp(kind, "unix"))
        out->kind = AMP_ENDPOINT_UNIX;
    else {
        fail(err, err_len, text, "unknown type '%s' (expected tcp, ssl or unix)",
             nf > 1 ? kind : text);
        amp_endpoint_free(out);
        return AMP_E_ENDPOINT;
    }

    amp_err r = AMP_OK;
    int positional = 0;
    const char *port_s = NULL;
    for (int i = 1; i < nf && r == AMP_OK; i++) {
        char *eq = strchr(f[i], '=');
        const char *key = NULL, *val = f[i];
        if (eq) {
            *eq = '\0';
            key = f[i];
            val = eq + 1;
        }
        if (!key) { /* positional: servers PORT / PATH; clients HOST PORT / PATH */
            positional++;
            if (out->kind == AMP_ENDPOINT_UNIX && positional == 1)
                key = server ? "address" : "path";
            else if (server && positional == 1)
                key = "port";
            else if (!server && positional == 1)
                key = "host";
            else if (!server && positional == 2)
                key = "port";
            else {
                r = fail(err, err_len, text, "unexpected field '%s'", val);
                break;
            }
        }
        long v;
        if (!strcmp(key, "port") && out->kind != AMP_ENDPOINT_UNIX) {
            port_s = val;
            if (parse_int(val, server ? 0 : 1, 65535, 10, &v))
                r = fail(err, err_len, text, "port '%s' is not a number from %d to 65535", val,
                         server ? 0 : 1);
            out->port = (int)v;
        } else if (!strcmp(key, server ? "interface" : "host") &&
                   out->kind != AMP_ENDPOINT_UNIX) {
            if (!*val)
                r = fail(err, err_len, text, "empty %s", key);
            out->host = (char *)val;
        } else if (!strcmp(key, server ? "address" : "path") && out->kind == AMP_ENDPOINT_UNIX) {
            if (!*val)
                r = fail(err, err_len, text, "empty socket path");
            out->path = (char *)val;
        } else if (server && !strcmp(key, "backlog")) {
            if (parse_int(val, 1, 65535, 10, &v))
                r = fail(err, err_len, text, "backlog '%s' is not a positive number", val);
            out->backlog = (int)v;
        } else if (server && out->kind == AMP_ENDPOINT_UNIX && !strcmp(key, "mode")) {
            if (parse_int(val, 0, 07777, 8, &v))
                r = fail(err, err_len, text, "mode '%s' is not an octal permission", val);
            out->mode = (int)v;
        } else if (server && out->kind == AMP_ENDPOINT_UNIX && !strcmp(key, "lockfile")) {
            if (strcmp(val, "0") && strcmp(val, "1"))
                r = fail(err, err_len, text, "lockfile must be 0 or 1");
        } else if (!server && !strcmp(key, "timeout")) {
            if (parse_seconds(val, &out->timeout))
                r = fail(err, err_len, text, "timeout '%s' is not a positive number of seconds",
                         val);
        } else if (out->kind == AMP_ENDPOINT_SSL && !strcmp(key, "privateKey")) {
            out->tls.private_key = val;
        } else if (out->kind == AMP_ENDPOINT_SSL && !strcmp(key, "certKey")) {
            out->tls.cert = val;
        } else if (out->kind == AMP_ENDPOINT_SSL && server && !strcmp(key, "extraCertChain")) {
            out->tls.extra_chain = val;
        } else if (out->kind == AMP_ENDPOINT_SSL && !strcmp(key, "caCerts")) {
            out->tls.ca_file = val;
        } else if (out->kind == AMP_ENDPOINT_SSL && !strcmp(key, "caCertsDir")) {
            out->tls.ca_dir = val;
        } else if (out->kind == AMP_ENDPOINT_SSL && !strcmp(key, "ciphers")) {
            out->tls.ciphers = val;
        } else if (out->kind == AMP_ENDPOINT_SSL && !server && !strcmp(key, "hostname")) {
            out->tls.hostname = val;
        } else if (out->kind == AMP_ENDPOINT_SSL && server && !strcmp(key, "clientCert")) {
            if (!strcmp(val, "none"))
                out->tls.client_cert = AMP_CLIENT_CERT_NONE;
            else if (!strcmp(val, "optional"))
                out->tls.client_cert = AMP_CLIENT_CERT_OPTIONAL;
            else if (!strcmp(val, "required"))
                out->tls.client_cert = AMP_CLIENT_CERT_REQUIRED;
            else
                r = fail(err, err_len, text, "clientCert must be none, optional or required");
        } else {
            r = fail(err, err_len, text, "unknown option '%s' for a %s %s endpoint", key,
                     kind, server ? "server" : "client");
        }
    }
    if (r == AMP_OK) {
        if (out->kind == AMP_ENDPOINT_UNIX && !out->path)
            r = fail(err, err_len, text, "missing the socket path");
        else if (out->kind != AMP_ENDPOINT_UNIX && !port_s)
            r = fail(err, err_len, text, "missing the port");
        else if (!server && out->kind != AMP_ENDPOINT_UNIX && !out->host)
            r = fail(err, err_len, text, "missing the host");
        else if (server && out->kind == AMP_ENDPOINT_SSL && !out->tls.private_key)
            r = fail(err, err_len, text, "an ssl server needs privateKey=FILE");
        else if (out->tls.client_cert && !out->tls.ca_file && !out->tls.ca_dir)
            r = fail(err, err_len, text, "clientCert=%s needs caCerts=FILE or caCertsDir=DIR",
                     out->tls.client_cert == AMP_CLIENT_CERT_REQUIRED ? "required" : "optional");
        else if (out->kind == AMP_ENDPOINT_UNIX && strlen(out->path) >= 108)
            r = fail(err, err_len, text, "socket path longer than 107 bytes");
    }
    if (r != AMP_OK) {
        amp_endpoint_free(out);
        return r;
    }
    if (server && out->kind == AMP_ENDPOINT_SSL && !out->tls.cert)
        out->tls.cert = out->tls.private_key;
    if (!server && out->kind == AMP_ENDPOINT_SSL && !out->tls.hostname)
        out->tls.hostname = out->host;
    return AMP_OK;
}

void amp_tls_config_init(amp_tls_config *tls)
{
    memset(tls, 0, sizeof *tls);
}

void amp_endpoint_init(amp_endpoint *ep)
{
    memset(ep, 0, sizeof *ep);
    ep->kind = AMP_ENDPOINT_TCP;
    ep->backlog = 50;
    ep->mode = -1;
    ep->timeout = 30;
    amp_tls_config_init(&ep->tls);
}

void amp_endpoint_free(amp_endpoint *ep)
{
    if (!ep)
        return;
    free(ep->storage_);
    memset(ep, 0, sizeof *ep);
}
