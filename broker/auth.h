/* Authentication and authorization: users with salted PBKDF2 password
 * hashes, tokens stored as SHA-256 hashes, roles, and an ACL of allow/deny
 * rules by identity, action and command pattern. Deny wins; nothing is
 * allowed unless a rule allows it. An auth is an immutable snapshot: a
 * reload builds a new one.
 *
 * Who calls it: settings.c loads one (at start and on SIGHUP), login.c
 * installs it and asks it every login and every ACL question; main.c's
 * --hash-password uses auth_hash_password alone.
 * Lifetimes: auth_load to auth_free; the identities it returns point into
 * it and live as long as it (login.c re-checks every peer's identity
 * against the new auth before freeing the old one).
 * Threads: loop thread only, except auth_password_run (any thread: it
 * works on the job's copies alone). */
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

/* Password hashes: PBKDF2-SHA256 with this many iterations by default
 * (--hash-password, and the dummy check for unknown users); a password
 * file outside [MIN, MAX] is refused, so one line cannot make every login
 * cost seconds. */
#define AUTH_DEFAULT_ITERATIONS 200000
#define AUTH_MIN_ITERATIONS 10000
#define AUTH_MAX_ITERATIONS 1000000

/* How a connection logged in, kept to check it again after a reload: a
 * password login keeps the stored hash it verified against (a changed
 * password no longer matches), a token login the token's SHA-256, a
 * certificate login the identity rule that named it. */
enum auth_method { AUTH_BY_NONE = 0, AUTH_BY_PASSWORD, AUTH_BY_TOKEN, AUTH_BY_CERT,
                   AUTH_BY_ANONYMOUS };
typedef struct auth_credential {
    enum auth_method method;
    char *pw_hash;      /* AUTH_BY_PASSWORD: owned copy */
    uint8_t digest[32]; /* AUTH_BY_TOKEN */
    int cert_mode;      /* AUTH_BY_CERT */
} auth_credential;
void auth_credential_clear(auth_credential *c);

/* A password check in three steps, so that the expensive one runs off the
 * event loop: prepare (loop thread) copies what the check needs and keeps
 * no reference into the auth, which a reload may free meanwhile; run (any
 * thread, thread-safe) does the PBKDF2; finish (loop thread) gives the
 * identity from the auth current then, if the password matched and the
 * user's hash is still the one checked. An unknown user, or one without a
 * password, is checked against a dummy hash of the default cost: it takes
 * as long as a real user's and always fails. */
typedef struct auth_pw_job {
    char user[256];
    char *stored;       /* the hash string checked (the user's or the dummy) */
    int real;           /* 0: dummy, fails after the same work */
    uint8_t *password;
    size_t plen;
    int ok;             /* set by auth_password_run */
} auth_pw_job;
/* 0, or -1 out of memory. Names of 256 bytes or more are unknown users. */
int auth_password_prepare(const auth *a, const uint8_t *user, size_t ulen,
                          const uint8_t *password, size_t plen, auth_pw_job *job);
void auth_password_run(auth_pw_job *job);
/* NULL if the check failed; else the identity, and *cred (cleared first by
 * the caller) records the credential. */
const struct identity *auth_password_finish(const auth *a, const auth_pw_job *job,
                                            auth_credential *cred);
/* Wipes the password copy and frees what prepare allocated. */
void auth_password_release(auth_pw_job *job);

/* A token (cheap: one SHA-256, compared to every entry in constant time);
 * fills *cred on success. */
const struct identity *auth_token(const auth *a, const uint8_t *token, size_t n,
                                  auth_credential *cred);
/* A user by name (TLS certificate identities); NULL if unknown. */
const struct identity *auth_user(const auth *a, const char *name);
/* After a reload: the identity `user` has now if `cred` still verifies
 * (same password hash, same token, user still present, anonymous still
 * allowed), else NULL. */
const struct identity *auth_recheck(const auth *a, const char *user,
                                    const auth_credential *cred);
const struct identity *auth_anonymous(const auth *a);

/* May `who` do `action` on `subject`? For ACT_SUBSCRIBE, `subject` is a
 * pattern: allowed only if allow rules cover every name it can match and no
 * deny rule can match any of them. */
int auth_allowed(const auth *a, const struct identity *who, enum acl_action action,
                 const uint8_t *subject, size_t n);

/* auth_allowed for any one of `actions` (ACT_CALL, ACT_REGISTER, ACT_PUBLISH
 * bits; not ACT_SUBSCRIBE), in one pass over the rules: the same answer as
 * asking each action and or-ing, at the cost of one. */
int auth_allowed_any(const auth *a, const struct identity *who, unsigned actions,
                     const uint8_t *subject, size_t n);

/* README's rule for user and role names: not empty, none of * > . : , and
 * no spaces or control bytes, so that a name never widens a pattern. */
int auth_good_name(const char *s);
/* Rules "allow * ..." (they apply to anonymous peers too). */
size_t auth_allow_everyone_rules(const auth *a);

/* A password file line's hash field for `password` (fresh random salt). */
int auth_hash_password(const char *password, char *out, size_t out_len);

#endif
