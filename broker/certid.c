/* Identity from a client certificate's parsed names. */
#include "certid.h"

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <strings.h>

#include "auth.h"

static const char *mode_names[] = {"none", "cn", "san-dns", "san-email", "san-uri"};

int cert_mode_parse(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, mode_names[i]))
            return i;
    return -1;
}

const char *cert_mode_name(enum cert_mode m)
{
    return (unsigned)m < 5 ? mode_names[m] : "?";
}

/* Letters, digits, '-' and dots between non-empty labels. */
static int dns_name(const char *s)
{
    if (!*s || *s == '.' || s[strlen(s) - 1] == '.')
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || (*p == '.' && p[1] != '.')))
            return 0;
    return 1;
}

const char *cert_rule_check(const cert_rule *r)
{
    switch (r->mode) {
    case CERT_NONE:
    case CERT_CN:
        return r->match ? "cert_identity_suffix, _domain and _prefix go with the san- modes only"
                        : NULL;
    case CERT_SAN_DNS:
        if (!r->match)
            return "cert_identity = san-dns needs cert_identity_suffix (users.example.org: "
                   "alice.users.example.org is alice)";
        return dns_name(r->match) ? NULL : "cert_identity_suffix must be a DNS name";
    case CERT_SAN_EMAIL:
        if (!r->match)
            return "cert_identity = san-email needs cert_identity_domain (example.org: "
                   "alice@example.org is alice)";
        return dns_name(r->match) ? NULL : "cert_identity_domain must be a DNS name";
    case CERT_SAN_URI: {
        size_t n = r->match ? strlen(r->match) : 0;
        if (!n)
            return "cert_identity = san-uri needs cert_identity_prefix (spiffe://example.org/"
                   "user/: spiffe://example.org/user/alice is alice)";
        return r->match[n - 1] == '/' || r->match[n - 1] == ':'
                   ? NULL
                   : "cert_identity_prefix must end with / or : (so that it cannot end "
                     "inside a name)";
    }
    }
    return "unknown cert_identity";
}

/* An ASN.1 string as text into out[n]: -1 if it holds a NUL (a name that
 * would print differently from what it is) or does not fit. */
static int asn1_text(const ASN1_STRING *s, char *out, size_t n)
{
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, s);
    if (len < 0)
        return -1;
    int bad = (size_t)len >= n || memchr(utf8, 0, (size_t)len) != NULL;
    if (!bad) {
        memcpy(out, utf8, (size_t)len);
        out[len] = 0;
    }
    OPENSSL_free(utf8);
    return bad ? -1 : 0;
}

static int from_cn(X509 *x, char *name, size_t n, const char **why)
{
    X509_NAME *subject = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (i < 0) {
        *why = "no commonName";
        return -1;
    }
    if (X509_NAME_get_index_by_NID(subject, NID_commonName, i) >= 0) {
        *why = "more than one commonName";
        return -1;
    }
    X509_NAME_ENTRY *e = X509_NAME_get_entry(subject, i);
    if (asn1_text(X509_NAME_ENTRY_get_data(e), name, n)) {
        *why = "commonName holds a NUL or is too long";
        return -1;
    }
    return 0;
}

/* The part of one SAN value that names the user, or NULL if this entry
 * does not match the rule. `v` is NUL-free. */
static const char *san_user(const cert_rule *r, char *v)
{
    size_t m = strlen(r->match), n = strlen(v);
    if (r->mode == CERT_SAN_URI)
        return n > m && !memcmp(v, r->match, m) ? v + m : NULL;
    if (r->mode == CERT_SAN_EMAIL) {
        char *at = strchr(v, '@');
        if (!at || strchr(at + 1, '@') || strcasecmp(at + 1, r->match))
            return NULL;
        *at = 0;
        return v;
    }
    /* san-dns: exactly one label before ".suffix" */
    if (n < m + 2 || v[n - m - 1] != '.' || strcasecmp(v + n - m, r->match))
        return NULL;
    v[n - m - 1] = 0;
    if (strchr(v, '.'))
        return NULL;
    for (char *p = v; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return v;
}

static int from_san(const cert_rule *r, X509 *x, char *name, size_t n, const char **why)
{
    int type = r->mode == CERT_SAN_DNS ? GEN_DNS : r->mode == CERT_SAN_EMAIL ? GEN_EMAIL : GEN_URI;
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int found = 0;
    *why = "no subjectAltName entry matches cert_identity";
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type != type)
            continue;
        char v[512];
        const char *user;
        if (asn1_text(g->d.ia5, v, sizeof v)) {
            *why = "a subjectAltName entry holds a NUL or is too long";
            found = -1;
            break;
        }
        if (!(user = san_user(r, v)))
            continue;
        if (++found > 1) {
            *why = "more than one subjectAltName entry matches cert_identity";
            break;
        }
        if (strlen(user) >= n) {
            *why = "the name is too long";
            found = -1;
            break;
        }
        strcpy(name, user);
    }
    GENERAL_NAMES_free(names);
    return found == 1 ? 0 : -1;
}

int cert_identity_name(const cert_rule *rule, const uint8_t *der, size_t len, char *name,
                       size_t n, const char **why)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    int rc = -1;
    *why = "unreadable certificate";
    if (x && rule->mode == CERT_CN)
        rc = from_cn(x, name, n, why);
    else if (x && rule->mode != CERT_NONE)
        rc = from_san(rule, x, name, n, why);
    X509_free(x);
    if (rc == 0 && !auth_good_name(name)) {
        *why = "not a valid user name (empty, or * > . : , or spaces)";
        rc = -1;
    }
    return rc;
}
