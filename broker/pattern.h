/* Subscription patterns: command names split into tokens at '.'; a '*'
 * token matches exactly one token, a final '>' token matches one or more.
 *
 * Who calls it: pubsub.c (checking what is subscribed), subindex.c and its
 * test, auth.c (ACL rules are patterns). Pure functions on the caller's
 * bytes: no state, any thread. */
#ifndef AMP_BROKER_PATTERN_H
#define AMP_BROKER_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* 0 if `p` is a valid pattern, else -1 with a reason. */
int pattern_check(const uint8_t *p, size_t n, const char **why);
/* Tokens in `p`: its dots plus one. */
size_t pattern_tokens(const uint8_t *p, size_t n);
int pattern_match(const uint8_t *p, size_t pn, const uint8_t *s, size_t sn);
/* Does every name that `sub` matches also match `p`? (`sub` may contain
 * wildcards: a '*' in sub is covered only by '*' or '>', and so on.) */
int pattern_covers(const uint8_t *p, size_t pn, const uint8_t *sub, size_t sn);
/* Is there a name that both patterns match? */
int pattern_overlaps(const uint8_t *a, size_t an, const uint8_t *b, size_t bn);

#endif
