/* libFuzzer target for the broker: raw bytes from one peer into a live
 * router (over a socketpair), with a provider and a subscriber attached,
 * fed whole, one byte at a time and at input-derived splits. Nothing may
 * crash or leak, and the router must still route afterwards. */
#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "amp/amp.h"
#include "log.h"
#include "router.h"

static void drain_fd(int fd)
{
    char buf[65536];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

/* Write all of p unless the broker closed the connection. */
static int put(int fd, const uint8_t *p, size_t n, struct ev_loop *loop, int other)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        } else {
            ev_run(loop, EVRUN_NOWAIT);
            drain_fd(other);
            drain_fd(fd);
        }
    }
    return 0;
}

static const uint8_t setup_provider[] =
    "\0\4_ask\0\0011\0\10_command\0\14amp.Register\0\7command\0\3Sum\0"
    "\0\4_ask\0\0012\0\10_command\0\15amp.Subscribe\0\7pattern\0\1>\0";

static void run(const uint8_t *data, size_t size, int mode)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    router_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.call_timeout = 0.001;
    cfg.max_call_timeout = 0.001;
    cfg.event_queue_bytes = 1 << 16;
    cfg.max_calls_in_flight = 64;
    router *r = router_new(loop, &cfg);
    int prov[2], peer[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, prov) || socketpair(AF_UNIX, SOCK_STREAM, 0, peer))
        abort();
    fcntl(prov[1], F_SETFL, O_NONBLOCK);
    fcntl(peer[1], F_SETFL, O_NONBLOCK);
    amp_conn_config ccfg;
    memset(&ccfg, 0, sizeof ccfg);
    ccfg.limits.max_box_bytes = 8192;
    ccfg.limits.max_keys = 32;
    ccfg.output_hard_cap = 1 << 16;
    amp_conn *a, *b;
    if (amp_conn_adopt(loop, prov[0], &ccfg, &a) || amp_conn_adopt(loop, peer[0], &ccfg, &b))
        abort();
    router_accept(r, a);
    router_accept(r, b);
    put(prov[1], setup_provider, sizeof setup_provider - 1, loop, peer[1]);
    ev_run(loop, EVRUN_NOWAIT);
    uint32_t rng = (uint32_t)size * 2654435761u;
    size_t off = 0;
    while (off < size) {
        size_t step = mode == 0 ? size - off : mode == 1 ? 1 : 1 + (rng = rng * 1103515245u + 12345u) % 97;
        if (step > size - off)
            step = size - off;
        if (put(peer[1], data + off, step, loop, prov[1]))
            break; /* closed by the broker: bad bytes */
        off += step;
        ev_run(loop, EVRUN_NOWAIT);
        drain_fd(prov[1]); /* the provider reads but never answers */
        drain_fd(peer[1]);
    }
    close(peer[1]);
    for (int i = 0; i < 4; i++)
        ev_run(loop, EVRUN_NOWAIT);
    close(prov[1]);
    for (int i = 0; i < 4; i++)
        ev_run(loop, EVRUN_NOWAIT);
    router_free(r);
    ev_loop_destroy(loop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    signal(SIGPIPE, SIG_IGN);
    log_threshold = LOG_ERROR;
    for (int mode = 0; mode < 3; mode++)
        run(data, size, mode);
    return 0;
}
