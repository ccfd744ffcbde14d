/* Failed logins per key (a user name, a source address), in a table of
 * fixed size: from the `after`-th failure on, each failure makes the key
 * wait before it may try again, 1 s, then 2, 4... up to `max_wait`
 * seconds; a success forgets the key, and so do 15 minutes without a
 * failure. Keys are hashed with a per-process random key (SipHash-2-4), so
 * a peer cannot aim names at one slot; a full set evicts the entry with the
 * fewest failures (oldest first), so a spray of fresh names cannot push a
 * user under attack out of the table.
 *
 * Who calls it: login.c, which makes its tables with the login workers and
 * frees them with the router. Loop thread only; time is passed in (the
 * loop's monotonic ev_now). */
#ifndef AMP_BROKER_THROTTLE_H
#define AMP_BROKER_THROTTLE_H

#include <stddef.h>

typedef struct throttle throttle;

/* NULL when out of memory (or no random bytes). `slots` is rounded up to a
 * multiple of the set size; max_wait 0 turns waiting off (failures are
 * still counted). */
throttle *throttle_new(size_t slots, unsigned after, double max_wait);
void throttle_free(throttle *t);
/* Seconds `key` must still wait before its next try (0: it may now). */
double throttle_wait(throttle *t, const void *key, size_t n, double now);
void throttle_failed(throttle *t, const void *key, size_t n, double now);
void throttle_succeeded(throttle *t, const void *key, size_t n);

#endif
