/* amp-bench: processes and raw wire I/O shared by the broker benchmarks
 * (bench_broker.c, bench_pubsub.c): starting servers, buffered blocking
 * socket I/O, a minimal raw-protocol NATS client and raw AMP boxes.
 *
 * The raw AMP side encodes and parses boxes itself (not through libamp),
 * so that what is measured is the server, not a client library. Blocking
 * descriptors, one thread; nothing here is meant for use outside amp-bench. */
#ifndef AMP_BENCH_NET_H
#define AMP_BENCH_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- processes ---------------------------------------------------------------- */

/* A TCP connection to 127.0.0.1:port with TCP_NODELAY, retried for about
 * two seconds while the server starts; -1 if it never accepts. */
int bench_tcp_connect(int port);
/* fork + execv with stdout and stderr to /dev/null; the child's pid. */
pid_t bench_spawn(char *const argv[]);
/* SIGTERM and wait. */
void bench_stop(pid_t pid);
/* Resident memory of a process in KiB, or -1. */
long bench_rss_kb(pid_t pid);
/* Writes `text` to dir/name and gives the path; 0 or -1. */
int bench_write_file(const char *dir, const char *name, const char *text, char *path, size_t n);

/* ---- buffered blocking I/O ---------------------------------------------------- */

struct bench_io {
    int fd;
    char in[1 << 17];
    size_t len, pos; /* buffered input: in[pos..len) */
    char *out;
    size_t olen, ocap;
};

/* Zeroes io around fd. */
void io_init(struct bench_io *io, int fd);
/* Frees the output buffer (the descriptor stays open). */
void io_release(struct bench_io *io);
void io_put(struct bench_io *io, const void *p, size_t n);
/* Write all output queued; -1 on error. */
int io_flush(struct bench_io *io);
/* Ensure n bytes are buffered from pos (n at most sizeof in); -1 at EOF. */
int io_need(struct bench_io *io, size_t n);
int io_buffered(const struct bench_io *io);
/* A line without its CRLF, valid until the next io call; NULL at EOF. */
char *io_line(struct bench_io *io);

/* ---- the raw NATS client ------------------------------------------------------ */

/* Connect, read INFO, send CONNECT (not verbose) and wait for the PONG. */
int nats_open(struct bench_io *io, int port);
/* Read one MSG (answering PINGs): subject and reply (each 256 bytes, reply
 * "" when none) into the caller's buffers, payload length in *len. */
int nats_msg(struct bench_io *io, char *subject, char *reply, size_t *len);
/* Queue PING, flush, and read until the PONG (everything sent before it
 * has been processed by the server); -1 on error or an -ERR line. */
int nats_sync(struct bench_io *io);

/* ---- raw AMP boxes ------------------------------------------------------------ */

/* Queue one key/value of a box, and the empty key that ends a box. */
void rawbox_put(struct bench_io *io, const char *key, const void *value, size_t n);
void rawbox_end(struct bench_io *io);

struct rawbox_pair {
    const uint8_t *key, *value;
    size_t key_len, value_len;
};
#define RAWBOX_MAX_PAIRS 128

/* One box: the length of the complete box at buf[0..len), or 0 if it is
 * not all there yet; -1 if malformed or over RAWBOX_MAX_PAIRS. Pairs point
 * into buf. */
long rawbox_parse(const uint8_t *buf, size_t len, struct rawbox_pair *pairs, size_t *n);
/* Read one box (blocking); pairs valid until the next io call. 0 or -1. */
int rawbox_read(struct bench_io *io, struct rawbox_pair *pairs, size_t *n);
/* The value of `key` in a parsed box, or NULL. */
const struct rawbox_pair *rawbox_find(const struct rawbox_pair *pairs, size_t n,
                                        const char *key);

#endif
