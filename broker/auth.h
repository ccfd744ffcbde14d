/* Authentication and authorization: users with salted PBKDF2 password
 * hashes, tokens stored as SHA-256 hashes, roles, and an ACL of allow/deny
 * rules by identity, action and command pattern. Deny wins; nothing is
 * allowed unless a rule allows it. An auth is an immutable snapshot: a
 * reload builds a new one. */
#ifndef AMP_BROKER_AUTH_H
#define AMP_BROKER_AUTH_H

#include <stddef.h>
#include <stdint.h>

enum acl_action {
    ACT_CALL = 1,
    ACT_REGISTER = 2,
    ACT_PUBLISH = 4,
    ACT_SUBSCRIBE = 8
};

struct identity {
    char *name;    /* user name, or "anonymous" */
    char **roles;
    size_t nroles;
};

typedef struct auth auth;

typedef struct auth_files {
    const char *password_file; /* user:roles:pbkdf2-sha256$ITER$SALT$HASH (or -) */
    const char *tokens_file;   /* user:roles:sha256-of-token (hex) */
    const char *acl_file;      /* required */
    const char *anonymous;     /* role given to connections that do not log
                                  in, or NULL: they must log in */
} auth_files;

/* NULL on error with a message naming the file and line. An ACL file that
 * is missing, empty (no rules) or has a bad line is an error. */
auth *auth_load(const auth_files *files, char *err, size_t err_len);
void auth_free(auth *a);

const struct identity *auth_password(const auth *a, const uint8_t *user, size_t ulen,
                                     const uint8_t *password, size_t plen);
const struct identity *auth_token(const auth *a, const uint8_t *token, size_t n);
/* A user by name (TLS certificate identities, and re-checking live
 * connections after a reload); NULL if unknown. */
const struct identity *auth_user(const auth *a, const char *name);
const struct identity *auth_anonymous(const auth *a);

/* May `who` do `action` on `subject`? For ACT_SUBSCRIBE, `subject` is a
 * pattern: allowed only if allow rules cover every name it can match and no
 * deny rule can match any of them. */
int auth_allowed(const auth *a, const struct identity *who, enum acl_action action,
                 const uint8_t *subject, size_t n);

/* A password file line's hash field for `password` (fresh random salt). */
int auth_hash_password(const char *password, char *out, size_t out_len);

#endif
