#include "subindex.h"

#include <stdlib.h>
#include <string.h>

#include "amp/strmap.h" /* amp_siphash24, amp_random_key */

/* What a match reports, side by side: a match reads the arrays in order. */
struct slot {
    void *owner;
    subindex_entry *e; /* to tell it its new place when the array moves */
};

/* The patterns that end at a node: [0] there, [1] there followed by '>'. */
struct bucket {
    struct slot *v[2];
    uint32_t n[2], cap[2];
};

/* A node costs what its fields and token take (a pattern may make one per
 * token), so there is no per-node table, no second copy of the token (the
 * edge table below holds node pointers only), and the bucket is made only
 * where patterns end. */
struct subindex_node {
    struct subindex_node *parent;
    struct subindex_node *star; /* the '*' child */
    struct bucket *subs;        /* NULL while no pattern ends here */
    uint32_t kids;              /* literal children (in the edge table) */
    uint32_t token_len;         /* a literal node's token; 0 for '*' */
    uint8_t token[];
};

/* Literal edges of every node: open addressing over node pointers, a slot
 * chosen by the SipHash of the token under a random key, so peer-chosen
 * tokens cannot be made to collide, mixed with the parent's address. The
 * token's hash does not depend on the parent, so a match hashes each token
 * of the name once, however many nodes it looks it up under (a '*' path
 * beside the literal one). */
struct edges {
    struct subindex_node **slots; /* NULL until the first literal node */
    size_t mask, count;
    uint8_t key[16];
};

struct subindex {
    struct subindex_node *root; /* no token: its own allocation */
    struct edges edges;
    size_t count, nodes;
};

_Static_assert(SUBINDEX_MAX_TOKENS % 64 == 0, "a whole word of matching.hashed per 64");

#define MIN_SLOTS 16
/* The table is rebuilt smaller when this sparse: after a crowd of
 * subscriptions leaves, the table they grew is not kept for good. */
#define SHRINK_MIN_SLOTS 1024
#define SHRINK_RATIO 16

subindex *subindex_new(void)
{
    subindex *ix = calloc(1, sizeof *ix);
    if (!ix || !(ix->root = calloc(1, sizeof *ix->root)) || amp_random_key(ix->edges.key)) {
        if (ix)
            free(ix->root);
        free(ix);
        return NULL;
    }
    return ix;
}

/* ---- edges --------------------------------------------------------------------- */

static uint64_t token_hash(const subindex *ix, const uint8_t *tok, size_t n)
{
    return amp_siphash24(ix->edges.key, tok, n);
}

/* The edge's hash: the token's, mixed with the parent's address (the
 * finaliser of MurmurHash3, a bijection: edges under one parent collide
 * only where their tokens' SipHashes do). */
static uint64_t edge_hash(const struct subindex_node *parent, uint64_t th)
{
    uint64_t h = th ^ ((uint64_t)(uintptr_t)parent * 0x9e3779b97f4a7c15u);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    return h ^ (h >> 33);
}

static uint64_t node_hash(const subindex *ix, const struct subindex_node *nd)
{
    return edge_hash(nd->parent, token_hash(ix, nd->token, nd->token_len));
}

/* The slot holding the edge, or the empty slot ending its probe sequence. */
static size_t edge_slot(const struct edges *t, const struct subindex_node *parent,
                        const uint8_t *tok, size_t n, uint64_t h)
{
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        const struct subindex_node *c = t->slots[i];
        if (!c || (c->parent == parent && c->token_len == n && !memcmp(c->token, tok, n)))
            return i;
    }
}

/* The literal child of parent for tok, whose token_hash() is th. */
static struct subindex_node *edge_get(const subindex *ix, const struct subindex_node *parent,
                                      const uint8_t *tok, size_t n, uint64_t th)
{
    if (!parent->kids)
        return NULL;
    return ix->edges.slots[edge_slot(&ix->edges, parent, tok, n, edge_hash(parent, th))];
}

/* Place nd (not in the table) in a table with room for it. */
static void edge_place(subindex *ix, struct subindex_node **slots, size_t mask,
                       struct subindex_node *nd)
{
    size_t i = node_hash(ix, nd) & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = nd;
}

/* Move every edge to a table of `size` slots (a power of two above twice
 * the count); -1 if it cannot be had (the old table stays, still good). */
static int edges_resize(subindex *ix, size_t size)
{
    struct subindex_node **slots = calloc(size, sizeof *slots);
    if (!slots)
        return -1;
    struct edges *t = &ix->edges;
    for (size_t i = 0; t->slots && i <= t->mask; i++)
        if (t->slots[i])
            edge_place(ix, slots, size - 1, t->slots[i]);
    free(t->slots);
    t->slots = slots;
    t->mask = size - 1;
    return 0;
}

static int edge_add(subindex *ix, struct subindex_node *nd)
{
    struct edges *t = &ix->edges;
    size_t size = t->slots ? t->mask + 1 : 0;
    if ((t->count + 1) * 2 > size && edges_resize(ix, size ? size * 2 : MIN_SLOTS))
        return -1;
    edge_place(ix, t->slots, t->mask, nd);
    t->count++;
    return 0;
}

static void edge_remove(subindex *ix, struct subindex_node *nd)
{
    struct edges *t = &ix->edges;
    size_t i = edge_slot(t, nd->parent, nd->token, nd->token_len, node_hash(ix, nd));
    t->slots[i] = NULL;
    t->count--;
    /* put back the rest of the probe sequence, which may have passed i */
    for (size_t j = (i + 1) & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
        struct subindex_node *moved = t->slots[j];
        t->slots[j] = NULL;
        edge_place(ix, t->slots, t->mask, moved);
    }
    size_t size = t->mask + 1, want = MIN_SLOTS;
    if (size >= SHRINK_MIN_SLOTS && t->count * SHRINK_RATIO < size) {
        while (want < t->count * 4)
            want *= 2;
        edges_resize(ix, want); /* if memory is short, the big one will do */
    }
}

/* ---- nodes --------------------------------------------------------------------- */

static int is_tok(const uint8_t *t, size_t n, char c)
{
    return n == 1 && t[0] == (uint8_t)c;
}

static int node_unused(const struct subindex_node *nd)
{
    return !nd->subs && !nd->kids && !nd->star;
}

/* Free nodes from nd up while they hold nothing. */
static void prune(subindex *ix, struct subindex_node *nd)
{
    while (nd != ix->root && node_unused(nd)) {
        struct subindex_node *parent = nd->parent;
        if (parent->star == nd) {
            parent->star = NULL;
        } else {
            edge_remove(ix, nd);
            parent->kids--;
        }
        free(nd);
        ix->nodes--;
        nd = parent;
    }
}

/* The child of nd for the literal or '*' token t, created if missing;
 * NULL: out of memory. */
static struct subindex_node *child(subindex *ix, struct subindex_node *nd, const uint8_t *t,
                                   size_t n)
{
    int star = is_tok(t, n, '*');
    struct subindex_node *c = star ? nd->star : edge_get(ix, nd, t, n, token_hash(ix, t, n));
    if (c)
        return c;
    size_t own = star ? 0 : n;
    c = calloc(1, sizeof *c + own);
    if (!c)
        return NULL;
    c->parent = nd;
    c->token_len = (uint32_t)own;
    memcpy(c->token, t, own);
    if (star) {
        nd->star = c;
    } else {
        if (edge_add(ix, c)) {
            free(c);
            return NULL;
        }
        nd->kids++;
    }
    ix->nodes++;
    return c;
}

/* Next token of x[*pos..n): 0 when none is left (as pattern.c splits). */
static int next_token(const uint8_t *x, size_t n, size_t *pos, const uint8_t **t, size_t *tn)
{
    if (*pos > n)
        return 0;
    const uint8_t *dot = memchr(x + *pos, '.', n - *pos);
    size_t end = dot ? (size_t)(dot - x) : n;
    *t = x + *pos;
    *tn = end - *pos;
    *pos = end + 1;
    return 1;
}

/* 0 if the pattern fits a path of the trie: not too deep, no token
 * longer than a node records. */
static int fits(const uint8_t *p, size_t n)
{
    size_t pos = 0, tokens = 0, tn;
    const uint8_t *t;
    while (next_token(p, n, &pos, &t, &tn))
        if (++tokens > SUBINDEX_MAX_TOKENS || tn > UINT32_MAX)
            return -1;
    return 0;
}

/* Resize one array of a bucket to `cap` slots; -1: out of memory. */
static int bucket_resize(struct bucket *b, int k, uint32_t cap)
{
    struct slot *v = realloc(b->v[k], cap * sizeof *v);
    if (!v)
        return -1;
    b->v[k] = v;
    b->cap[k] = cap;
    return 0;
}

/* Put e in nd's array k; -1: out of memory (nothing changed). */
static int bucket_add(struct subindex_node *nd, int k, subindex_entry *e, void *owner)
{
    struct bucket *b = nd->subs;
    if (!b && !(b = nd->subs = calloc(1, sizeof *b)))
        return -1;
    if (b->n[k] == b->cap[k] &&
        (b->cap[k] >= UINT32_MAX / 2 || bucket_resize(b, k, b->cap[k] ? b->cap[k] * 2 : 1))) {
        if (!b->n[0] && !b->n[1]) {
            free(b);
            nd->subs = NULL;
        }
        return -1;
    }
    b->v[k][b->n[k]] = (struct slot){owner, e};
    e->node = nd;
    e->slot = b->n[k]++;
    e->rest = (uint8_t)k;
    return 0;
}

/* Take e out of its array; the last one takes its place. Arrays shrink as
 * they empty; an empty bucket goes. */
static void bucket_remove(subindex_entry *e)
{
    struct subindex_node *nd = e->node;
    struct bucket *b = nd->subs;
    int k = e->rest;
    struct slot last = b->v[k][--b->n[k]];
    if (last.e != e) {
        b->v[k][e->slot] = last;
        last.e->slot = e->slot;
    }
    if (!b->n[0] && !b->n[1]) {
        free(b->v[0]);
        free(b->v[1]);
        free(b);
        nd->subs = NULL;
    } else if (!b->n[k]) {
        free(b->v[k]);
        b->v[k] = NULL;
        b->cap[k] = 0;
    } else if (b->n[k] * 4 <= b->cap[k]) {
        bucket_resize(b, k, b->cap[k] / 2); /* if that fails, the big one will do */
    }
}

int subindex_add(subindex *ix, const uint8_t *pattern, size_t n, subindex_entry *e,
                 void *owner)
{
    if (fits(pattern, n))
        return -1;
    struct subindex_node *nd = ix->root;
    size_t pos = 0, tn;
    const uint8_t *t;
    int rest = 0;
    while (next_token(pattern, n, &pos, &t, &tn)) {
        if (is_tok(t, tn, '>')) { /* always last (pattern_check) */
            rest = 1;
            break;
        }
        struct subindex_node *c = child(ix, nd, t, tn);
        if (!c) {
            prune(ix, nd); /* the nodes made for this pattern so far */
            return -1;
        }
        nd = c;
    }
    if (bucket_add(nd, rest, e, owner)) {
        prune(ix, nd);
        return -1;
    }
    ix->count++;
    return 0;
}

void subindex_remove(subindex *ix, subindex_entry *e)
{
    struct subindex_node *nd = e->node;
    bucket_remove(e);
    e->node = NULL;
    ix->count--;
    prune(ix, nd);
}

/* ---- matching ------------------------------------------------------------------ */

struct matching {
    const subindex *ix;
    const uint8_t *s;
    size_t n;
    void (*fn)(void *owner, void *ud);
    void *ud;
    size_t found;
    /* token_hash() of the name's token at each depth, once needed: every
     * node at one depth looks up the same token */
    uint64_t th[SUBINDEX_MAX_TOKENS];
    uint64_t hashed[SUBINDEX_MAX_TOKENS / 64]; /* a bit per depth */
};

/* Report the owners of nd's array k (0: ending here, 1: '>'). */
static void emit(struct matching *m, const struct subindex_node *nd, int k)
{
    const struct bucket *b = nd->subs;
    if (!b)
        return;
    for (uint32_t i = 0, n = b->n[k]; i < n; i++)
        m->fn(b->v[k][i].owner, m->ud);
    m->found += b->n[k];
}

/* Report what below nd, at `depth` tokens from the root, matches the name
 * from byte `pos` on. Recursion is as deep as the trie
 * (SUBINDEX_MAX_TOKENS), whatever the name's length. */
static void match_from(struct matching *m, const struct subindex_node *nd, size_t depth,
                       size_t pos)
{
    const uint8_t *t;
    size_t tn;
    if (!next_token(m->s, m->n, &pos, &t, &tn)) {
        emit(m, nd, 0); /* the name ends here */
        return;
    }
    emit(m, nd, 1); /* '>': one or more tokens left */
    if (nd->kids && depth < SUBINDEX_MAX_TOKENS) { /* a node that deep has none */
        uint64_t bit = (uint64_t)1 << depth % 64;
        if (!(m->hashed[depth / 64] & bit)) {
            m->th[depth] = token_hash(m->ix, t, tn);
            m->hashed[depth / 64] |= bit;
        }
        const struct subindex_node *lit = edge_get(m->ix, nd, t, tn, m->th[depth]);
        if (lit)
            match_from(m, lit, depth + 1, pos);
    }
    if (nd->star)
        match_from(m, nd->star, depth + 1, pos);
}

size_t subindex_match(subindex *ix, const uint8_t *subject, size_t n,
                      void (*fn)(void *owner, void *ud), void *ud)
{
    struct matching m;
    m.ix = ix, m.s = subject, m.n = n, m.fn = fn, m.ud = ud, m.found = 0;
    memset(m.hashed, 0, sizeof m.hashed); /* th[] is read only where set */
    match_from(&m, ix->root, 0, 0);
    return m.found;
}

size_t subindex_count(const subindex *ix)
{
    return ix->count;
}

size_t subindex_nodes(const subindex *ix)
{
    return ix->nodes;
}

/* ---- freeing ------------------------------------------------------------------- */

static void free_bucket(struct subindex_node *nd)
{
    if (nd->subs) {
        free(nd->subs->v[0]);
        free(nd->subs->v[1]);
        free(nd->subs);
    }
}

/* Free the '*' nodes reached from nd through '*' nodes only; literal nodes
 * are all in the edge table. Each '*' node is reached once: from its
 * nearest literal ancestor, or the root. */
static void free_stars(struct subindex_node *nd)
{
    for (struct subindex_node *s = nd->star, *next; s; s = next) {
        next = s->star;
        free_bucket(s);
        free(s);
    }
}

void subindex_free(subindex *ix)
{
    if (!ix)
        return;
    free_stars(ix->root);
    free_bucket(ix->root);
    struct edges *t = &ix->edges;
    for (size_t i = 0; t->slots && i <= t->mask; i++)
        if (t->slots[i])
            free_stars(t->slots[i]);
    for (size_t i = 0; t->slots && i <= t->mask; i++)
        if (t->slots[i]) {
            free_bucket(t->slots[i]);
            free(t->slots[i]);
        }
    free(t->slots);
    free(ix->root);
    free(ix);
}
