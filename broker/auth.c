/* Users, tokens, roles and the ACL.
 *
 * A little over 500 lines, on purpose: the users and the ACL are read
 * together into one immutable snapshot that a reload replaces whole (so a
 * rule never names a user of another generation), and the ACL's subjects
 * are the users' names and roles. Loading, password checks and the ACL
 * each take about a third. */
#include "auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"


struct user {
    struct identity id;
    char *pw_hash;   /* "pbkdf2-sha256$ITER$SALT$HASH", or NULL: no password login */
    uint8_t token[32];
    int has_token;
};

struct rule {
    int allow;
    char *subject;   /* "*", "authenticated", "anonymous", "user:NAME", "role:NAME" */
    unsigned actions;
    char *pattern;
};

struct auth {
    struct user *users;
    size_t nusers;
    struct rule *rules;
    size_t nrules;
    struct identity anonymous;
    int anonymous_allowed;
    char *dummy_hash; /* checked for unknown users: the default cost */
};

static int fail(char *err, size_t n, const char *file, int line, const char *why)
{
    if (line)
        snprintf(err, n, "%s:%d: %s", file, line, why);
    else
        snprintf(err, n, "%s: %s", file, why);
    return -1;
}

/* Names may not contain wildcard or separator characters: an identity can
 * then never widen a pattern it is written into. */
int auth_good_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s == '*' || *s == '>' || *s == '.' || *s == ':' || *s == ',' ||
            (unsigned char)*s <= ' ')
            return 0;
    return 1;
}

static void free_identity(struct identity *id)
{
    free(id->name);
    for (size_t i = 0; i < id->nroles; i++)
        free(id->roles[i]);
    free(id->roles);
}

static int parse_roles(const char *list, struct identity *id)
{
    char *copy = strdup(list), *save = NULL;
    for (char *r = strtok_r(copy, ",", &save); r; r = strtok_r(NULL, ",", &save)) {
        if (!auth_good_name(r)) {
            free(copy);
            return -1;
        }
        id->roles = realloc(id->roles, (id->nroles + 1) * sizeof *id->roles);
        id->roles[id->nroles++] = strdup(r);
    }
    free(copy);
    return 0;
}

static int hex_decode(const char *h, uint8_t *out, size_t n)
{
    if (strlen(h) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned x;
        if (sscanf(h + 2 * i, "%2x", &x) != 1)
            return -1;
        out[i] = (uint8_t)x;
    }
    return 0;
}

static struct user *find_user(struct auth *a, const char *name)
{
    for (size_t i = 0; i < a->nusers; i++)
        if (!strcmp(a->users[i].id.name, name))
            return &a->users[i];
    return NULL;
}

static struct user *add_user(struct auth *a, const char *name, const char *roles)
{
    struct user *u = find_user(a, name);
    if (u)
        return u;
    a->users = realloc(a->users, (a->nusers + 1) * sizeof *a->users);
    u = &a->users[a->nusers++];
    memset(u, 0, sizeof *u);
    u->id.name = strdup(name);
    if (parse_roles(roles, &u->id))
        return NULL;
    return u;
}

/* Lines of "user:roles:secret"; blank lines and # comments skipped. */
static int load_users(struct auth *a, const char *path, int tokens, char *err, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, n, path, 0, strerror(errno));
    char line[1024];
    int lineno = 0, bad = 0;
    while (!bad && fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) {
            bad = fail(err, n, path, lineno, "expected user:roles:secret");
            break;
        }
        *c1 = *c2 = 0;
        if (strlen(line) > 255) {
            bad = fail(err, n, path, lineno, "a user name is at most 255 bytes");
            break;
        }
        if (!auth_good_name(line)) {
            bad = fail(err, n, path, lineno, "a user name may not be empty or contain "
                                             "* > . : , or spaces");
            break;
        }
        struct user *u = add_user(a, line, c1 + 1);
        if (!u) {
            bad = fail(err, n, path, lineno, "bad role name");
            break;
        }
        const char *secret = c2 + 1;
        if (tokens) {
            if (hex_decode(secret, u->token, 32))
                bad = fail(err, n, path, lineno, "expected the token's SHA-256 in hex");
            u->has_token = 1;
        } else if (strcmp(secret, "-")) {
            unsigned long iter;
            char salt[129], hash[129];
            if (sscanf(secret, "pbkdf2-sha256$%lu$%128[0-9a-f]$%128[0-9a-f]", &iter, salt,
                       hash) != 3 || strlen(hash) != 64 || strlen(salt) % 2)
                bad = fail(err, n, path, lineno,
                           "expected pbkdf2-sha256$ITERATIONS$SALT$HASH (amp-broker "
                           "--hash-password makes one)");
            else if (iter < AUTH_MIN_ITERATIONS || iter > AUTH_MAX_ITERATIONS)
                bad = fail(err, n, path, lineno,
                           "the iteration count must be between 10000 and 1000000 (more "
                           "would let one login hold a worker for seconds)");
            else
                u->pw_hash = strdup(secret);
        }
    }
    fclose(f);
    return bad;
}

static unsigned parse_actions(const char *s)
{
    unsigned mask = 0;
    char *copy = strdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "*"))
            mask |= ACT_CALL | ACT_REGISTER | ACT_PUBLISH | ACT_SUBSCRIBE;
        else if (!strcmp(t, "call"))
            mask |= ACT_CALL;
        else if (!strcmp(t, "register"))
            mask |= ACT_REGISTER;
        else if (!strcmp(t, "publish"))
            mask |= ACT_PUBLISH;
        else if (!strcmp(t, "subscribe"))
            mask |= ACT_SUBSCRIBE;
        else {
            mask = 0;
            break;
        }
    }
    free(copy);
    return mask;
}

/* Lines of "allow|deny SUBJECT ACTIONS PATTERN". */
static int load_acl(struct auth *a, const char *path, char *err, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, n, path, 0, strerror(errno));
    char line[1024];
    int lineno = 0, bad = 0;
    while (!bad && fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n#")] = 0;
        char verb[16], subject[256], actions[128], pattern[512], extra[8];
        int k = sscanf(line, "%15s %255s %127s %511s %7s", verb, subject, actions, pattern,
                       extra);
        if (k <= 0)
            continue;
        const char *why = NULL;
        unsigned mask = k == 4 ? parse_actions(actions) : 0;
        if (k != 4)
            why = "expected: allow|deny SUBJECT ACTIONS PATTERN";
        else if (strcmp(verb, "allow") && strcmp(verb, "deny"))
            why = "a rule starts with allow or deny";
        else if (strcmp(subject, "*") && strcmp(subject, "authenticated") &&
                 strcmp(subject, "anonymous") &&
                 !((!strncmp(subject, "user:", 5) && auth_good_name(subject + 5)) ||
                   (!strncmp(subject, "role:", 5) && auth_good_name(subject + 5))))
            why = "the subject is * (every peer), authenticated (every logged-in peer), "
                  "anonymous, user:NAME or role:NAME";
        else if (!mask)
            why = "actions are call, register, publish, subscribe or *, comma separated";
        else {
            const char *bad_pattern;
            if (pattern_check((const uint8_t *)pattern, strlen(pattern), &bad_pattern))
                why = bad_pattern;
        }
        if (why) {
            bad = fail(err, n, path, lineno, why);
            break;
        }
        a->rules = realloc(a->rules, (a->nrules + 1) * sizeof *a->rules);
        struct rule *r = &a->rules[a->nrules++];
        r->allow = !strcmp(verb, "allow");
        r->subject = strdup(subject);
        r->actions = mask;
        r->pattern = strdup(pattern);
    }
    fclose(f);
    if (!bad && !a->nrules)
        bad = fail(err, n, path, 0, "no rules: an empty ACL would deny everything; "
                                    "write the rules you mean");
    return bad;
}

/* A hash string of the default cost with a random salt and a random
 * "hash" that no password produces: checked in place of a missing one. */
static char *make_dummy_hash(void)
{
    uint8_t raw[16 + 32];
    char out[256];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return NULL;
    int k = snprintf(out, sizeof out, "pbkdf2-sha256$%lu$", (unsigned long)AUTH_DEFAULT_ITERATIONS);
    for (size_t i = 0; i < sizeof raw; i++)
        k += snprintf(out + k, sizeof out - (size_t)k, i == 16 ? "$%02x" : "%02x", raw[i]);
    return strdup(out);
}

auth *auth_load(const auth_files *files, char *err, size_t err_len)
{
    struct auth *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->anonymous.name = strdup("anonymous");
    int bad = 0;
    if (!files->acl_file)
        bad = fail(err, err_len, "[auth]", 0, "acl_file is required");
    if (!bad && files->password_file)
        bad = load_users(a, files->password_file, 0, err, err_len);
    if (!bad && files->tokens_file)
        bad = load_users(a, files->tokens_file, 1, err, err_len);
    if (!bad)
        bad = load_acl(a, files->acl_file, err, err_len);
    if (!bad && files->anonymous) {
        if (!auth_good_name(files->anonymous))
            bad = fail(err, err_len, "[auth]", 0, "bad anonymous role name");
        else {
            parse_roles(files->anonymous, &a->anonymous);
            a->anonymous_allowed = 1;
        }
    }
    if (!bad && !(a->dummy_hash = make_dummy_hash()))
        bad = fail(err, err_len, "[auth]", 0, "no random bytes for the dummy password hash");
    if (bad) {
        auth_free(a);
        return NULL;
    }
    return a;
}

void auth_free(auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nusers; i++) {
        free_identity(&a->users[i].id);
        free(a->users[i].pw_hash);
    }
    free(a->users);
    for (size_t i = 0; i < a->nrules; i++) {
        free(a->rules[i].subject);
        free(a->rules[i].pattern);
    }
    free(a->rules);
    free_identity(&a->anonymous);
    free(a->dummy_hash);
    free(a);
}

static int pbkdf2(const char *password, size_t plen, const uint8_t *salt, size_t slen,
                  unsigned long iter, uint8_t out[32])
{
    return PKCS5_PBKDF2_HMAC(password, (int)plen, salt, (int)slen, (int)iter, EVP_sha256(), 32,
                             out) == 1 ? 0 : -1;
}

/* The full PBKDF2 in every case where the string parses (it always does:
 * the files were checked at load), so that timing says nothing. */
static int check_password(const char *stored, const uint8_t *pw, size_t plen)
{
    unsigned long iter;
    char salt_hex[129], hash_hex[129];
    uint8_t salt[64], want[32], got[32];
    if (sscanf(stored, "pbkdf2-sha256$%lu$%128[0-9a-f]$%128[0-9a-f]", &iter, salt_hex,
               hash_hex) != 3 || iter > AUTH_MAX_ITERATIONS)
        return 0;
    size_t slen = strlen(salt_hex) / 2;
    if (slen > sizeof salt || hex_decode(salt_hex, salt, slen) || hex_decode(hash_hex, want, 32))
        return 0;
    if (pbkdf2((const char *)pw, plen, salt, slen, iter, got))
        return 0;
    return CRYPTO_memcmp(got, want, 32) == 0;
}

void auth_credential_clear(auth_credential *c)
{
    free(c->pw_hash);
    memset(c, 0, sizeof *c);
}

int auth_password_prepare(const auth *a, const uint8_t *user, size_t ulen,
                          const uint8_t *password, size_t plen, auth_pw_job *job)
{
    memset(job, 0, sizeof *job);
    struct user *u = NULL;
    if (ulen < sizeof job->user && !memchr(user, 0, ulen)) {
        memcpy(job->user, user, ulen);
        job->user[ulen] = 0;
        u = find_user((struct auth *)a, job->user);
    }
    job->real = u && u->pw_hash;
    job->stored = strdup(job->real ? u->pw_hash : a->dummy_hash);
    job->password = malloc(plen ? plen : 1);
    if (!job->stored || !job->password) {
        auth_password_release(job);
        return -1;
    }
    memcpy(job->password, password, plen);
    job->plen = plen;
    return 0;
}

void auth_password_run(auth_pw_job *job)
{
    int ok = check_password(job->stored, job->password, job->plen);
    job->ok = ok && job->real;
}

const struct identity *auth_password_finish(const auth *a, const auth_pw_job *job,
                                            auth_credential *cred)
{
    if (!job->ok)
        return NULL;
    struct user *u = find_user((struct auth *)a, job->user);
    if (!u || !u->pw_hash || strcmp(u->pw_hash, job->stored))
        return NULL; /* reloaded meanwhile: the password checked is not current */
    if (!(cred->pw_hash = strdup(job->stored)))
        return NULL;
    cred->method = AUTH_BY_PASSWORD;
    return &u->id;
}

void auth_password_release(auth_pw_job *job)
{
    if (job->password)
        OPENSSL_cleanse(job->password, job->plen);
    free(job->password);
    free(job->stored);
    job->password = NULL;
    job->stored = NULL;
}

static const struct user *user_by_digest(const auth *a, const uint8_t digest[32])
{
    const struct user *found = NULL;
    for (size_t i = 0; i < a->nusers; i++) /* every entry, in constant time each */
        if (a->users[i].has_token && CRYPTO_memcmp(a->users[i].token, digest, 32) == 0)
            found = &a->users[i];
    return found;
}

const struct identity *auth_token(const auth *a, const uint8_t *token, size_t n,
                                  auth_credential *cred)
{
    uint8_t digest[32];
    unsigned int dl = 0;
    if (!EVP_Digest(token, n, digest, &dl, EVP_sha256(), NULL))
        return NULL;
    const struct user *u = user_by_digest(a, digest);
    if (!u)
        return NULL;
    cred->method = AUTH_BY_TOKEN;
    memcpy(cred->digest, digest, 32);
    return &u->id;
}

const struct identity *auth_user(const auth *a, const char *name)
{
    struct user *u = find_user((struct auth *)a, name);
    return u ? &u->id : NULL;
}

const struct identity *auth_recheck(const auth *a, const char *user,
                                    const auth_credential *cred)
{
    const struct user *u = find_user((struct auth *)a, user);
    switch (cred->method) {
    case AUTH_BY_ANONYMOUS:
        return auth_anonymous(a);
    case AUTH_BY_PASSWORD:
        return u && u->pw_hash && cred->pw_hash && !strcmp(u->pw_hash, cred->pw_hash) ? &u->id
                                                                                         : NULL;
    case AUTH_BY_TOKEN: {
        const struct user *t = user_by_digest(a, cred->digest);
        return t && t == u ? &u->id : NULL;
    }
    case AUTH_BY_CERT:
        return u ? &u->id : NULL;
    case AUTH_BY_NONE:
    default:
        return NULL;
    }
}

const struct identity *auth_anonymous(const auth *a)
{
    return a->anonymous_allowed ? &a->anonymous : NULL;
}

size_t auth_allow_everyone_rules(const auth *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->nrules; i++)
        n += a->rules[i].allow && !strcmp(a->rules[i].subject, "*");
    return n;
}

/* "*" is every peer, anonymous ones included; "authenticated" every peer
 * that logged in; "anonymous" only the others. Role rules apply to the
 * anonymous role as to any other. */
static int rule_applies(const struct rule *r, const struct identity *who, int anonymous)
{
    if (!strcmp(r->subject, "*"))
        return 1;
    if (!strcmp(r->subject, "authenticated"))
        return !anonymous;
    if (!strcmp(r->subject, "anonymous"))
        return anonymous;
    if (!strncmp(r->subject, "user:", 5))
        return !anonymous && !strcmp(r->subject + 5, who->name);
    for (size_t i = 0; i < who->nroles; i++)
        if (!strcmp(r->subject + 5, who->roles[i]))
            return 1;
    return 0;
}

int auth_allowed(const auth *a, const struct identity *who, enum acl_action action,
                 const uint8_t *subject, size_t n)
{
    int anonymous = who == &a->anonymous;
    int allowed = 0;
    for (size_t i = 0; i < a->nrules; i++) {
        const struct rule *r = &a->rules[i];
        if (!(r->actions & action) || !rule_applies(r, who, anonymous))
            continue;
        const uint8_t *p = (const uint8_t *)r->pattern;
        size_t pn = strlen(r->pattern);
        if (action == ACT_SUBSCRIBE) {
            if (!r->allow && pattern_overlaps(p, pn, subject, n))
                return 0; /* deny wins */
            if (r->allow && pattern_covers(p, pn, subject, n))
                allowed = 1;
        } else {
            if (!pattern_match(p, pn, subject, n))
                continue;
            if (!r->allow)
                return 0;
            allowed = 1;
        }
    }
    return allowed;
}

int auth_allowed_any(const auth *a, const struct identity *who, unsigned actions,
                     const uint8_t *subject, size_t n)
{
    int anonymous = who == &a->anonymous;
    unsigned allowed = 0, denied = 0; /* per action: deny wins within one */
    for (size_t i = 0; i < a->nrules && denied != actions; i++) {
        const struct rule *r = &a->rules[i];
        unsigned hit = r->actions & actions;
        if (!hit || !rule_applies(r, who, anonymous) ||
            !pattern_match((const uint8_t *)r->pattern, strlen(r->pattern), subject, n))
            continue;
        if (r->allow)
            allowed |= hit;
        else
            denied |= hit;
    }
    return (allowed & ~denied) != 0;
}

int auth_hash_password(const char *password, char *out, size_t out_len)
{
    uint8_t salt[16], hash[32];
    const unsigned long iter = AUTH_DEFAULT_ITERATIONS;
    if (RAND_bytes(salt, sizeof salt) != 1 ||
        pbkdf2(password, strlen(password), salt, sizeof salt, iter, hash))
        return -1;
    int k = snprintf(out, out_len, "pbkdf2-sha256$%lu$", iter);
    for (size_t i = 0; i < sizeof salt; i++)
        k += snprintf(out + k, out_len - (size_t)k, "%02x", salt[i]);
    k += snprintf(out + k, out_len - (size_t)k, "$");
    for (size_t i = 0; i < sizeof hash; i++)
        k += snprintf(out + k, out_len - (size_t)k, "%02x", hash[i]);
    return 0;
}
