/* libamp (amp::amp, pkg-config amp): the core (amp/core.h) plus connections,
 * listeners, endpoints, TLS and the blocking client on libev.
 *
 * Threads, lifetimes, clocks: the core's rules (amp/core.h) hold for every
 * core object; conn.h, endpoint.h and client.h state their own (a
 * connection lives on its libev loop's thread; the loop's clock is
 * monotonic). A program that needs no sockets includes amp/core.h and links
 * amp::core (pkg-config amp-core) alone. */
#ifndef AMP_AMP_H
#define AMP_AMP_H

#include "amp/core.h"

#include "amp/client.h"
#include "amp/conn.h"
#include "amp/endpoint.h"

#endif
