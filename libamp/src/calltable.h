/* Outstanding calls of a session: id -> call, plus a deadline heap. Holds
 * live calls only: a call that completes, times out or is cancelled leaves
 * at once, so the table's memory follows the number of calls in flight
 * (amp_calltable_trim() gives it back after a burst). Internal.
 * Pointers to calls stay valid until the next amp_calltable_add() or
 * amp_calltable_trim(). */
#ifndef AMP_CALLTABLE_H
#define AMP_CALLTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "amp/alloc.h"
#include "amp/session.h"

struct amp_call {
    uint64_t id;
    amp_result_cb cb;
    void *user_data;
    uint64_t deadline;
    uint32_t heap_pos;  /* 1-based position in the heap; 0: not there */
    uint32_t next_free; /* free list link while unused */
    uint8_t used, starttls;
};

typedef struct amp_calltable {
    struct amp_call *slab;
    uint32_t slab_cap, free_head; /* free_head: index + 1, 0 = none */
    uint32_t *hash;               /* slab index + 1, 0 = empty */
    uint32_t hash_mask;
    uint32_t *heap;               /* slab indices ordered by deadline */
    uint32_t heap_len, heap_cap;
    size_t live;
    const amp_allocator *alloc;   /* the session's; NULL: malloc */
} amp_calltable;

/* `alloc` must outlive the table. */
int amp_calltable_init(amp_calltable *t, const amp_allocator *alloc);
void amp_calltable_free(amp_calltable *t);
/* Drop every entry (after the session completed them) and the memory. */
void amp_calltable_clear(amp_calltable *t);
struct amp_call *amp_calltable_add(amp_calltable *t, uint64_t id);
struct amp_call *amp_calltable_find(amp_calltable *t, uint64_t id);
void amp_calltable_remove(amp_calltable *t, struct amp_call *c);
void amp_calltable_set_deadline(amp_calltable *t, struct amp_call *c, uint64_t deadline);
/* A call whose deadline is <= now, or NULL. */
struct amp_call *amp_calltable_due(amp_calltable *t, uint64_t now);
int amp_calltable_next_deadline(const amp_calltable *t, uint64_t *deadline);
/* The call at or after slab index *cursor (which it advances), or NULL. */
struct amp_call *amp_calltable_next_live(amp_calltable *t, uint32_t *cursor);
size_t amp_calltable_live(const amp_calltable *t);
/* Give memory back when most of it is unused (moves the calls). */
void amp_calltable_trim(amp_calltable *t);
/* Bytes of memory the table holds (slab, hash and heap). */
size_t amp_calltable_memory(const amp_calltable *t);

#endif
