/* The login worker pool: a few threads run expensive tasks (password
 * hashing) off the event loop, and each task's result comes back to the
 * loop thread through an ev_async.
 *
 * Contract: submit, pending and free are loop-thread only. A task's `run`
 * runs once on a worker thread (it must touch nothing but the task); its
 * `done` then runs on the loop thread, from the loop or from hasher_free.
 * The task belongs to the pool from submit until `done` is called, and
 * `done` is where its owner takes it back (and frees it). Workers run at a
 * lower scheduling priority (nice 10, SCHED_BATCH) so that the loop thread
 * wins the CPU while they hash, and with every signal blocked, so that
 * signals reach the loop's watchers.
 *
 * Who calls it: login.c, which makes the pool when authentication is first
 * installed and frees it with the router (after every peer is gone, so each
 * task's `done` finds its peer detached). */
#ifndef AMP_BROKER_HASHER_H
#define AMP_BROKER_HASHER_H

#include <stddef.h>

struct ev_loop;

typedef struct hasher_task {
    void (*run)(struct hasher_task *t);  /* worker thread */
    void (*done)(struct hasher_task *t); /* loop thread */
    int ran;                             /* 0 if the pool was freed first */
    struct hasher_task *next;            /* the pool's */
} hasher_task;

typedef struct hasher hasher;

/* NULL on failure (threads, memory) with the reason in err. */
hasher *hasher_new(struct ev_loop *loop, int threads, char *err, size_t err_len);
/* Waits for the tasks being run, then calls `done` for every task not yet
 * reported (ran = 0 for those never run). */
void hasher_free(hasher *h);
void hasher_submit(hasher *h, hasher_task *t);
/* Tasks submitted whose `done` has not run yet. */
size_t hasher_pending(const hasher *h);

#endif
