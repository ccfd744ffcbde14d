/* libamp (amp::amp, pkg-config amp): the core (amp/core.h) plus connections,
 * listeners, endpoints, TLS and the blocking client on libev. */
#ifndef AMP_AMP_H
#define AMP_AMP_H

#include "amp/core.h"

#include "amp/client.h"
#include "amp/conn.h"
#include "amp/endpoint.h"

#endif
