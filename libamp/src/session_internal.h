/* Internal statistics of a session, for tests. */
#ifndef AMP_SESSION_INTERNAL_H
#define AMP_SESSION_INTERNAL_H

#include <stddef.h>

#include "amp/session.h"

/* Bytes held by the session's call table (slab, hash and deadline heap). */
size_t amp__session_calltable_memory(const amp_session *s);

#endif
