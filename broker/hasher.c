/* Worker threads for login hashing, reporting back through ev_async. */
#include "hasher.h"

#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WORKER_NICE 10

struct list {
    hasher_task *head, *tail;
};

struct hasher {
    struct ev_loop *loop;
    ev_async wake;
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct list queue, finished; /* both under lock */
    int stopping;
    pthread_t *threads;
    int nthreads;
    size_t pending; /* loop thread only */
};

static void push(struct list *l, hasher_task *t)
{
    t->next = NULL;
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
}

static hasher_task *pop(struct list *l)
{
    hasher_task *t = l->head;
    if (t && !(l->head = t->next))
        l->tail = NULL;
    return t;
}

/* Below the loop thread: a hashing worker should never delay I/O. Best
 * effort: without the right to change it, the worker runs as it is. */
static void lower_priority(void)
{
#ifdef SCHED_BATCH
    struct sched_param sp = {0};
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
#endif
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WORKER_NICE);
}

static void *worker(void *arg)
{
    hasher *h = arg;
    lower_priority();
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (!h->stopping && !h->queue.head)
            pthread_cond_wait(&h->work, &h->lock);
        if (h->stopping)
            break;
        hasher_task *t = pop(&h->queue);
        pthread_mutex_unlock(&h->lock);
        t->run(t);
        t->ran = 1;
        pthread_mutex_lock(&h->lock);
        push(&h->finished, t);
        ev_async_send(h->loop, &h->wake); /* thread-safe */
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

static void report(hasher *h, hasher_task *list)
{
    while (list) {
        hasher_task *next = list->next;
        h->pending--;
        list->done(list); /* may free the task */
        list = next;
    }
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    hasher *h = w->data;
    pthread_mutex_lock(&h->lock);
    hasher_task *done = h->finished.head;
    h->finished.head = h->finished.tail = NULL;
    pthread_mutex_unlock(&h->lock);
    report(h, done);
}

hasher *hasher_new(struct ev_loop *loop, int threads, char *err, size_t err_len)
{
    hasher *h = calloc(1, sizeof *h);
    if (!h || !(h->threads = calloc((size_t)threads, sizeof *h->threads))) {
        free(h);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    h->loop = loop;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->work, NULL);
    ev_async_init(&h->wake, on_wake);
    h->wake.data = h;
    ev_async_start(loop, &h->wake);
    ev_unref(loop); /* the pool alone does not keep the loop running */
    /* threads inherit the mask: block every signal in them, so that one
     * meant for the loop (SIGHUP, SIGTERM, with signalfd or not) never
     * lands on a worker */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < threads; i++) {
        int e = pthread_create(&h->threads[i], NULL, worker, h);
        if (e) {
            snprintf(err, err_len, "cannot start a login worker: %s", strerror(e));
            break;
        }
        h->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (h->nthreads < threads) {
        hasher_free(h);
        return NULL;
    }
    return h;
}

void hasher_free(hasher *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->stopping = 1;
    pthread_cond_broadcast(&h->work);
    pthread_mutex_unlock(&h->lock);
    for (int i = 0; i < h->nthreads; i++)
        pthread_join(h->threads[i], NULL);
    ev_ref(h->loop);
    ev_async_stop(h->loop, &h->wake);
    /* everything left is ours now: no worker runs */
    report(h, h->finished.head);
    report(h, h->queue.head);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->work);
    free(h->threads);
    free(h);
}

void hasher_submit(hasher *h, hasher_task *t)
{
    t->ran = 0;
    h->pending++;
    pthread_mutex_lock(&h->lock);
    push(&h->queue, t);
    pthread_cond_signal(&h->work);
    pthread_mutex_unlock(&h->lock);
}

size_t hasher_pending(const hasher *h)
{
    return h->pending;
}
