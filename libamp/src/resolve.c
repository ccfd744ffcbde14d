/* Host names resolved off the loop: getaddrinfo() in a detached thread per
 * lookup, reporting back through ev_async (see resolve.h). */
#define _GNU_SOURCE
#include "resolve.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct amp__lookup {
    pthread_mutex_t mu; /* guards cancelled, done, and the ev_async_send */
    int cancelled;      /* the loop side is gone: the thread frees the lookup */
    int done;           /* the thread is finished: the loop side frees it */
    struct ev_loop *loop;
    ev_async async;
    amp__lookup_cb cb;
    void *user_data;
    char *host;
    char port[8];
    struct addrinfo *addrs;
    int gai_error;
};

static void lookup_free(amp__lookup *lk)
{
    if (lk->addrs)
        freeaddrinfo(lk->addrs);
    pthread_mutex_destroy(&lk->mu);
    free(lk->host);
    free(lk);
}

static void *lookup_thread(void *arg)
{
    amp__lookup *lk = arg;
    struct addrinfo hints, *addrs = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int e = getaddrinfo(lk->host, lk->port, &hints, &addrs);
    pthread_mutex_lock(&lk->mu);
    if (lk->cancelled) {
        pthread_mutex_unlock(&lk->mu);
        if (addrs)
            freeaddrinfo(addrs);
        lookup_free(lk);
        return NULL;
    }
    lk->addrs = e ? NULL : addrs;
    lk->gai_error = e;
    lk->done = 1;
    ev_async_send(lk->loop, &lk->async); /* under mu: cancel cannot race it */
    pthread_mutex_unlock(&lk->mu);
    return NULL; /* lk belongs to the loop side from here on */
}

static void lookup_done(struct ev_loop *loop, ev_async *w, int revents)
{
    amp__lookup *lk = w->data;
    pthread_mutex_lock(&lk->mu); /* wait until the thread let go */
    int done = lk->done;
    pthread_mutex_unlock(&lk->mu);
    if (!done)
        return;
    ev_async_stop(loop, w);
    struct addrinfo *addrs = lk->addrs;
    int e = lk->gai_error;
    amp__lookup_cb cb = lk->cb;
    void *ud = lk->user_data;
    lk->addrs = NULL;
    lookup_free(lk);
    cb(ud, addrs, e);
}

amp__lookup *amp__lookup_start(struct ev_loop *loop, const char *host, int port,
                               amp__lookup_cb cb, void *user_data)
{
    amp__lookup *lk = calloc(1, sizeof *lk);
    if (!lk)
        return NULL;
    lk->host = strdup(host);
    if (!lk->host || pthread_mutex_init(&lk->mu, NULL)) {
        free(lk->host);
        free(lk);
        return NULL;
    }
    snprintf(lk->port, sizeof lk->port, "%d", port);
    lk->loop = loop;
    lk->cb = cb;
    lk->user_data = user_data;
    ev_async_init(&lk->async, lookup_done);
    lk->async.data = lk;
    ev_async_start(loop, &lk->async);

    /* the thread takes no signals: they stay with the threads that expect them */
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_t attr;
    pthread_t t;
    int bad = pthread_attr_init(&attr);
    if (!bad) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        bad = pthread_create(&t, &attr, lookup_thread, lk);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
    }
    if (bad) {
        ev_async_stop(loop, &lk->async);
        lookup_free(lk);
        return NULL;
    }
    return lk;
}

void amp__lookup_cancel(amp__lookup *lk)
{
    if (!lk)
        return;
    pthread_mutex_lock(&lk->mu);
    ev_async_stop(lk->loop, &lk->async);
    if (!lk->done) {
        lk->cancelled = 1; /* the thread frees it */
        pthread_mutex_unlock(&lk->mu);
        return;
    }
    pthread_mutex_unlock(&lk->mu);
    lookup_free(lk);
}
