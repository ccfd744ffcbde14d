/* The subscription index: which subscriptions match an event's name, at a
 * cost that follows the name's tokens and the matches, not the number of
 * subscriptions held (a token trie, as NATS's sublist).
 *
 * A pattern is stored at the node its tokens lead to from the root: a
 * literal token follows the literal edge of that name, '*' the node's star
 * child; a final '>' puts it in the node's "rest" array instead of its
 * "ends here" array. The arrays hold (owner, entry) pairs side by side, so
 * a match reads them in order without touching the entries. Literal
 * edges of every node sit in one table keyed by (parent node, token): the
 * token's SipHash under a random key, so peer-chosen tokens cannot be made
 * to collide, mixed with the parent's address, so a match hashes each
 * token of the name once. Nodes left with nothing below them are freed at
 * once.
 * Memory: a node per literal or '*' token not shared with another pattern
 * (about 48 bytes plus the token, and a slot of the edge table), so
 * max_pattern_tokens bounds what one subscription can cost.
 *
 * Matching walks the name's tokens from the root, following at each node
 * the literal edge of the token and the star child; a node's rest array
 * matches whatever is left, one token or more. Each node is visited at most once per match, so a match
 * costs at most the nodes whose path matches a prefix of the name (bounded
 * by the name's tokens when patterns are literal; patterns mixing '*' and
 * literals can make that up to the size of the trie, which the number of
 * subscriptions and tokens per pattern bound).
 *
 * Who calls it: pubsub.c (one index per router, made and freed with it)
 * and the index's test. Entries are embedded in the caller's records and
 * stay the caller's: remove an entry before freeing its record. Loop thread
 * only; no locking. */
#ifndef AMP_BROKER_SUBINDEX_H
#define AMP_BROKER_SUBINDEX_H

#include <stddef.h>
#include <stdint.h>

/* Deepest pattern the index stores: matching recurses once per token. */
#define SUBINDEX_MAX_TOKENS 256

typedef struct subindex subindex;
struct subindex_node;

/* One stored subscription: embedded in the caller's own record, which
 * stays the caller's (the index never frees it). Fields are the index's. */
typedef struct subindex_entry {
    struct subindex_node *node; /* where it is stored */
    uint32_t slot;              /* its place in one of the node's arrays */
    uint8_t rest;               /* which: 1 for a pattern ending in '>' */
} subindex_entry;

/* NULL: out of memory, or no random key for the hash. */
subindex *subindex_new(void);
/* Frees the index; entries still stored are forgotten, not freed. */
void subindex_free(subindex *ix);

/* Store `e` under `pattern`, which must pass pattern_check() and have at
 * most SUBINDEX_MAX_TOKENS tokens; a match reports `owner`. The same
 * pattern may be stored under several entries. 0: stored; -1: out of
 * memory or too deep (nothing changed). */
int subindex_add(subindex *ix, const uint8_t *pattern, size_t n, subindex_entry *e,
                 void *owner);
/* Take out a stored entry; nodes left empty are freed. */
void subindex_remove(subindex *ix, subindex_entry *e);

/* Calls fn with the owner of each entry whose pattern matches the name
 * `subject` (pattern_match() semantics, empty tokens included), once per
 * entry. fn must not add or remove entries, nor call subindex_match.
 * Returns the entries matched. */
size_t subindex_match(subindex *ix, const uint8_t *subject, size_t n,
                      void (*fn)(void *owner, void *ud), void *ud);

/* Entries stored; trie nodes (the root not counted: 0 when empty). */
size_t subindex_count(const subindex *ix);
size_t subindex_nodes(const subindex *ix);

#endif
