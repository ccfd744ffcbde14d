/* The subscription index against brute force: for random patterns and
 * names, subindex_match() must report exactly the stored entries whose
 * pattern pattern_match() accepts, each once, while entries come and go;
 * emptied, the index holds no nodes. Exits non-zero on the first mismatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"
#include "subindex.h"

struct sub {
    subindex_entry link;
    int stored;
    int hits;
    size_t len;
    uint8_t pattern[64];
};

#define NSUBS 400
#define ROUNDS 4000

static struct sub subs[NSUBS];
static unsigned long long seed = 88172645463325252ULL;
static int failures;

static unsigned pick(unsigned n)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (unsigned)(seed % n);
}

/* Tokens from a small alphabet, so that patterns overlap a lot. */
static const char *const literals[] = {"a", "b", "c", "ab"};

static size_t random_pattern(uint8_t *out)
{
    size_t n = 0, tokens = 1 + pick(5);
    for (size_t i = 0; i < tokens; i++) {
        const char *t = pick(3) == 0 ? "*" : literals[pick(4)];
        if (i == tokens - 1 && pick(4) == 0)
            t = ">";
        if (i)
            out[n++] = '.';
        memcpy(out + n, t, strlen(t));
        n += strlen(t);
    }
    return n;
}

/* Names may have empty tokens ("a..b", "a."), which only wildcards match. */
static size_t random_name(uint8_t *out)
{
    size_t n = 0, tokens = 1 + pick(6);
    for (size_t i = 0; i < tokens; i++) {
        const char *t = pick(12) == 0 ? "" : literals[pick(4)];
        if (i)
            out[n++] = '.';
        memcpy(out + n, t, strlen(t));
        n += strlen(t);
    }
    return n;
}

static void hit(void *owner, void *ud)
{
    ((struct sub *)owner)->hits++;
}

static void check_name(subindex *ix, const uint8_t *name, size_t n)
{
    for (int i = 0; i < NSUBS; i++)
        subs[i].hits = 0;
    size_t found = subindex_match(ix, name, n, hit, NULL);
    size_t expected = 0;
    for (int i = 0; i < NSUBS; i++) {
        int want = subs[i].stored && pattern_match(subs[i].pattern, subs[i].len, name, n);
        expected += (size_t)want;
        if (subs[i].hits != want) {
            fprintf(stderr, "name %.*s, pattern %.*s: matched %d times, expected %d\n", (int)n,
                    (const char *)name, (int)subs[i].len, (const char *)subs[i].pattern,
                    subs[i].hits, want);
            failures++;
        }
    }
    if (found != expected) {
        fprintf(stderr, "name %.*s: %zu reported, %zu expected\n", (int)n, (const char *)name,
                found, expected);
        failures++;
    }
}

static void random_rounds(subindex *ix)
{
    for (int round = 0; round < ROUNDS && !failures; round++) {
        struct sub *s = &subs[pick(NSUBS)];
        if (s->stored) {
            subindex_remove(ix, &s->link);
            s->stored = 0;
        } else {
            s->len = random_pattern(s->pattern);
            if (subindex_add(ix, s->pattern, s->len, &s->link, s)) {
                fprintf(stderr, "out of memory adding %.*s\n", (int)s->len,
                        (const char *)s->pattern);
                exit(1);
            }
            s->stored = 1;
        }
        uint8_t name[64];
        for (int k = 0; k < 4; k++)
            check_name(ix, name, random_name(name));
    }
}

static void remove_all(subindex *ix)
{
    for (int i = 0; i < NSUBS; i++)
        if (subs[i].stored) {
            subindex_remove(ix, &subs[i].link);
            subs[i].stored = 0;
        }
    if (subindex_count(ix) || subindex_nodes(ix)) {
        fprintf(stderr, "emptied: %zu entries, %zu nodes left\n", subindex_count(ix),
                subindex_nodes(ix));
        failures++;
    }
}

/* A pattern of SUBINDEX_MAX_TOKENS tokens is stored, one more refused; a
 * name far longer than any pattern is matched without trouble. */
static void depth(subindex *ix)
{
    size_t cap = 2 * (SUBINDEX_MAX_TOKENS + 1);
    uint8_t *p = malloc(cap), *name = malloc(65535);
    for (size_t i = 0; i < cap; i += 2) {
        p[i] = '*';
        p[i + 1] = '.';
    }
    for (size_t i = 0; i < 65535; i += 2) {
        name[i] = 'a';
        if (i + 1 < 65535)
            name[i + 1] = '.';
    }
    struct sub deep = {0}, deeper = {0};
    size_t ok = 2 * SUBINDEX_MAX_TOKENS - 1;
    if (subindex_add(ix, p, ok, &deep.link, &deep) ||
        !subindex_add(ix, p, ok + 2, &deeper.link, &deeper)) {
        fprintf(stderr, "depth limit not as documented\n");
        failures++;
    }
    p[ok - 1] = '>';
    struct sub rest = {0};
    if (subindex_add(ix, p, ok, &rest.link, &rest)) {
        fprintf(stderr, "could not add a deep '>' pattern\n");
        failures++;
    }
    size_t found = subindex_match(ix, name, 65535, hit, NULL);
    if (found != 1 || rest.hits != 1 || deep.hits) {
        fprintf(stderr, "long name: %zu matches (expected the deep '>' alone)\n", found);
        failures++;
    }
    found = subindex_match(ix, name, ok, hit, NULL);
    if (found != 2 || deep.hits != 1 || rest.hits != 2) {
        fprintf(stderr, "name of %d tokens: %zu matches (expected both deep patterns)\n",
                SUBINDEX_MAX_TOKENS, found);
        failures++;
    }
    subindex_remove(ix, &deep.link);
    subindex_remove(ix, &rest.link);
    if (subindex_nodes(ix)) {
        fprintf(stderr, "deep patterns removed: %zu nodes left\n", subindex_nodes(ix));
        failures++;
    }
    free(p);
    free(name);
}

/* Literal tokens down to the deepest level, beside a path starting with
 * '*': a match looks each token of the name up under both (its hash is
 * made once per depth and shared), and a name one token longer, or with a
 * different last token, matches neither. */
static void deep_literals(subindex *ix)
{
    enum { T = SUBINDEX_MAX_TOKENS };
    size_t n = 2 * T - 1;
    uint8_t *lit = malloc(n + 2), *star = malloc(n), *name = malloc(n + 2);
    for (size_t i = 0; i < n + 2; i += 2) {
        lit[i] = name[i] = 't';
        if (i + 1 < n + 2)
            lit[i + 1] = name[i + 1] = '.';
    }
    memcpy(star, lit, n);
    star[0] = '*';
    struct sub a = {0}, b = {0};
    if (subindex_add(ix, lit, n, &a.link, &a) || subindex_add(ix, star, n, &b.link, &b)) {
        fprintf(stderr, "could not add %d-token patterns\n", T);
        failures++;
    }
    size_t found = subindex_match(ix, name, n, hit, NULL);
    if (found != 2 || a.hits != 1 || b.hits != 1) {
        fprintf(stderr, "deep literals: %zu matches (expected 2)\n", found);
        failures++;
    }
    found = subindex_match(ix, name, n + 2, hit, NULL); /* T + 1 tokens */
    name[n - 1] = 'u';
    found += subindex_match(ix, name, n, hit, NULL);
    if (found || a.hits != 1 || b.hits != 1) {
        fprintf(stderr, "deep literals: %zu matches of names that differ\n", found);
        failures++;
    }
    subindex_remove(ix, &a.link);
    subindex_remove(ix, &b.link);
    if (subindex_nodes(ix)) {
        fprintf(stderr, "deep literals removed: %zu nodes left\n", subindex_nodes(ix));
        failures++;
    }
    free(lit);
    free(star);
    free(name);
}

/* Many distinct prefixes: the edge table grows, then shrinks as they go,
 * and every name still finds its own pattern alone. */
static void bulk(subindex *ix)
{
    enum { N = 20000 };
    struct sub *v = calloc(N, sizeof *v);
    unsigned *order = malloc(N * sizeof *order);
    for (unsigned i = 0; i < N; i++) {
        v[i].len = (size_t)snprintf((char *)v[i].pattern, sizeof v[i].pattern, "p%u.x.*", i);
        order[i] = i;
        if (subindex_add(ix, v[i].pattern, v[i].len, &v[i].link, &v[i])) {
            fprintf(stderr, "out of memory in bulk\n");
            exit(1);
        }
    }
    for (unsigned i = N - 1; i > 0; i--) { /* remove in a random order */
        unsigned j = pick(i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (unsigned k = 0; k < N; k++) {
        if (k % 997 == 0) {
            unsigned probe = order[k + pick(N - k)]; /* one still stored */
            uint8_t name[64];
            int n = snprintf((char *)name, sizeof name, "p%u.x.y", probe);
            v[probe].hits = 0;
            if (subindex_match(ix, name, (size_t)n, hit, NULL) != 1 || v[probe].hits != 1) {
                fprintf(stderr, "bulk: %s not matched alone\n", (char *)name);
                failures++;
            }
        }
        subindex_remove(ix, &v[order[k]].link);
    }
    if (subindex_count(ix) || subindex_nodes(ix)) {
        fprintf(stderr, "bulk: %zu nodes left\n", subindex_nodes(ix));
        failures++;
    }
    free(order);
    free(v);
}

int main(void)
{
    subindex *ix = subindex_new();
    if (!ix) {
        fprintf(stderr, "subindex_new failed\n");
        return 1;
    }
    random_rounds(ix);
    remove_all(ix);
    /* again on the same index: nodes and edges are reused after pruning */
    random_rounds(ix);
    /* freed with entries still stored (ASan reports leaks) */
    subindex_free(ix);
    ix = subindex_new();
    if (!ix) {
        fprintf(stderr, "subindex_new failed\n");
        return 1;
    }
    depth(ix);
    deep_literals(ix);
    bulk(ix);
    subindex_free(ix);
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("subindex: %d rounds twice, matches equal brute force\n", ROUNDS);
    return 0;
}
