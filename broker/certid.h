/* The user a verified TLS client certificate names, by one explicit rule.
 *
 * A certificate's names are read as parsed fields, never from a printed
 * subject line (where a field may itself contain "/CN="). Every rule takes
 * exactly one entry of its kind; none, several, an embedded NUL or a value
 * that is not a valid user name (README: no * > . : , or spaces) give no
 * identity.
 *
 *   cn         the subject's single commonName
 *   san-dns    the single subjectAltName DNS entry LABEL.SUFFIX (suffix
 *              compared without case); the user is LABEL, lower-cased
 *   san-email  the single subjectAltName email entry LOCAL@DOMAIN (domain
 *              compared without case); the user is LOCAL as written
 *   san-uri    the single subjectAltName URI entry PREFIX + REST (compared
 *              byte for byte); the user is REST
 *
 * Who calls it: settings.c parses and checks the rule at start; login.c
 * names the user when a TLS client connects. No state: any thread. The
 * rule's `match` string stays the caller's (the settings'). */
#ifndef AMP_BROKER_CERTID_H
#define AMP_BROKER_CERTID_H

#include <stddef.h>
#include <stdint.h>

enum cert_mode { CERT_NONE = 0, CERT_CN, CERT_SAN_DNS, CERT_SAN_EMAIL, CERT_SAN_URI };

typedef struct cert_rule {
    enum cert_mode mode;
    char *match; /* san-dns: the suffix (after the first label's dot);
                    san-email: the domain; san-uri: the prefix; else NULL */
} cert_rule;

/* "cn", "san-dns", "san-email", "san-uri", "none"; -1 if none of them. */
int cert_mode_parse(const char *s);
const char *cert_mode_name(enum cert_mode m);
/* NULL if the rule is complete and consistent, else why not (for a start-up
 * error): the SAN modes need their match, cn and none take none, a suffix or
 * domain is a DNS name, a URI prefix ends in '/' or ':'. */
const char *cert_rule_check(const cert_rule *r);

/* The user name of a DER certificate under `rule` into name[n]: 0, or -1
 * with *why saying what was wrong (for a log line). */
int cert_identity_name(const cert_rule *rule, const uint8_t *der, size_t len, char *name,
                       size_t n, const char **why);

#endif
