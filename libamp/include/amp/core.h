/* libamp-core (amp::core, pkg-config amp-core): everything that needs no
 * operating system. Framing (box.h), typed values (value.h), the
 * conversation session (session.h), the keyed string map (strmap.h), the
 * allocator hook (alloc.h), result codes (error.h).
 *
 * Threads, lifetimes, clocks (the rules every core header repeats for its
 * own objects)
 *   - No threads inside, no global mutable state: each object is used by one
 *     thread at a time; different objects are independent.
 *   - Memory only through the allocator each object was given (NULL:
 *     malloc); the caller owns what it creates until it frees it.
 *   - No clock: time is a monotonic value the caller passes in.
 *   - No I/O: bytes go in and come out through buffers. */
#ifndef AMP_CORE_H
#define AMP_CORE_H

#include "amp/alloc.h"
#include "amp/box.h"
#include "amp/error.h"
#include "amp/export.h"
#include "amp/session.h"
#include "amp/strmap.h"
#include "amp/value.h"
#include "amp/version.h"

#endif
