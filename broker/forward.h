/* What of a box the broker forwards: every pair but the reserved ones (the
 * protocol's keys, amp_pair_is_reserved(), and the broker's own _timeout),
 * byte for byte. Used
 * for routed calls, their answers and events.
 *
 * forward_pairs() gives views into the box: they stay valid as long as the
 * box does (the session's callback that handed it over). Any thread; no
 * state. */
#ifndef AMP_BROKER_FORWARD_H
#define AMP_BROKER_FORWARD_H

#include <stddef.h>

#include "amp/amp.h"

/* Room for the pairs of most boxes without an allocation. */
#define FORWARD_STACK 64

/* The forwarded pairs of `b` (their count in *n): in `stack` when they fit,
 * else in an array to give back with forward_pairs_free(); NULL if out of
 * memory. */
amp_pair *forward_pairs(const amp_box *b, amp_pair stack[FORWARD_STACK], size_t *n);
void forward_pairs_free(amp_pair *pairs, const amp_pair stack[FORWARD_STACK]);

#endif
