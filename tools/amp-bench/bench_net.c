/* amp-bench: processes and raw wire I/O shared by the broker benchmarks. */
#include "bench_net.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- processes ---------------------------------------------------------------- */

static int nodelay_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int bench_tcp_connect(int port)
{
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    for (int i = 0; i < 200; i++) {
        int fd = nodelay_socket();
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
        if (fd >= 0)
            close(fd);
        usleep(10000);
    }
    return -1;
}

pid_t bench_spawn(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

void bench_stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

long bench_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

int bench_write_file(const char *dir, const char *name, const char *text, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* ---- buffered blocking I/O ---------------------------------------------------- */

void io_init(struct bench_io *io, int fd)
{
    memset(io, 0, sizeof *io);
    io->fd = fd;
}

void io_release(struct bench_io *io)
{
    free(io->out);
    io->out = NULL;
    io->olen = io->ocap = 0;
}

void io_put(struct bench_io *io, const void *p, size_t n)
{
    if (io->olen + n > io->ocap) {
        io->ocap = (io->olen + n) * 2;
        io->out = realloc(io->out, io->ocap);
        if (!io->out) {
            fprintf(stderr, "amp-bench: out of memory\n");
            exit(1);
        }
    }
    memcpy(io->out + io->olen, p, n);
    io->olen += n;
}

int io_flush(struct bench_io *io)
{
    size_t off = 0;
    while (off < io->olen) {
        ssize_t w = write(io->fd, io->out + off, io->olen - off);
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    io->olen = 0;
    return 0;
}

int io_need(struct bench_io *io, size_t n)
{
    if (io->len - io->pos >= n)
        return 0;
    if (n > sizeof io->in)
        return -1;
    memmove(io->in, io->in + io->pos, io->len - io->pos);
    io->len -= io->pos;
    io->pos = 0;
    while (io->len < n) {
        ssize_t r = read(io->fd, io->in + io->len, sizeof io->in - io->len);
        if (r <= 0)
            return -1;
        io->len += (size_t)r;
    }
    return 0;
}

int io_buffered(const struct bench_io *io)
{
    return io->len > io->pos;
}

char *io_line(struct bench_io *io)
{
    for (;;) {
        char *nl = memchr(io->in + io->pos, '\n', io->len - io->pos);
        if (nl) {
            char *line = io->in + io->pos;
            *nl = 0;
            if (nl > line && nl[-1] == '\r')
                nl[-1] = 0;
            io->pos = (size_t)(nl - io->in) + 1;
            return line;
        }
        if (io_need(io, io->len - io->pos + 1))
            return NULL;
    }
}

/* ---- the raw NATS client ------------------------------------------------------ */

int nats_open(struct bench_io *io, int port)
{
    io_init(io, bench_tcp_connect(port));
    if (io->fd < 0)
        return -1;
    char *l = io_line(io); /* INFO */
    if (!l || strncmp(l, "INFO", 4))
        return -1;
    const char *hello = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";
    io_put(io, hello, strlen(hello));
    return nats_sync(io);
}

int nats_sync(struct bench_io *io)
{
    io_put(io, "PING\r\n", 6);
    if (io_flush(io))
        return -1;
    char *l;
    while ((l = io_line(io)) && strcmp(l, "PONG")) {
        if (!strncmp(l, "-ERR", 4)) {
            fprintf(stderr, "amp-bench: nats-server: %s\n", l);
            return -1;
        }
        if (!strcmp(l, "PING")) {
            io_put(io, "PONG\r\n", 6);
            io_flush(io);
        }
    }
    return l ? 0 : -1;
}

int nats_msg(struct bench_io *io, char *subject, char *reply, size_t *len)
{
    for (;;) {
        char *l = io_line(io);
        if (!l)
            return -1;
        if (!strcmp(l, "PING")) {
            io_put(io, "PONG\r\n", 6);
            io_flush(io);
            continue;
        }
        if (strncmp(l, "MSG ", 4))
            continue;
        char sid[32];
        unsigned long n;
        reply[0] = 0;
        if (sscanf(l + 4, "%255s %31s %255s %lu", subject, sid, reply, &n) != 4) {
            reply[0] = 0;
            if (sscanf(l + 4, "%255s %31s %lu", subject, sid, &n) != 3)
                return -1;
        }
        if (io_need(io, n + 2))
            return -1;
        *len = n;
        io->pos += n + 2;
        return 0;
    }
}

/* ---- raw AMP boxes ------------------------------------------------------------ */

static void put16(struct bench_io *io, size_t n)
{
    uint8_t b[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    io_put(io, b, 2);
}

void rawbox_put(struct bench_io *io, const char *key, const void *value, size_t n)
{
    size_t k = strlen(key);
    put16(io, k);
    io_put(io, key, k);
    put16(io, n);
    io_put(io, value, n);
}

void rawbox_end(struct bench_io *io)
{
    put16(io, 0);
}

static size_t get16(const uint8_t *p)
{
    return (size_t)p[0] << 8 | p[1];
}

long rawbox_parse(const uint8_t *buf, size_t len, struct rawbox_pair *pairs, size_t *n)
{
    size_t off = 0;
    *n = 0;
    for (;;) {
        if (len - off < 2)
            return 0;
        size_t k = get16(buf + off);
        if (!k)
            return (long)(off + 2);
        if (k > 255 || *n == RAWBOX_MAX_PAIRS)
            return -1;
        if (len - off < 2 + k + 2)
            return 0;
        size_t v = get16(buf + off + 2 + k);
        if (len - off < 4 + k + v)
            return 0;
        pairs[*n] = (struct rawbox_pair){buf + off + 2, buf + off + 4 + k, k, v};
        ++*n;
        off += 4 + k + v;
    }
}

int rawbox_read(struct bench_io *io, struct rawbox_pair *pairs, size_t *n)
{
    for (;;) {
        long got = rawbox_parse((const uint8_t *)io->in + io->pos, io->len - io->pos, pairs, n);
        if (got < 0)
            return -1;
        if (got > 0) {
            io->pos += (size_t)got;
            return 0;
        }
        if (io_need(io, io->len - io->pos + 1))
            return -1;
    }
}

const struct rawbox_pair *rawbox_find(const struct rawbox_pair *pairs, size_t n, const char *key)
{
    size_t k = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (pairs[i].key_len == k && !memcmp(pairs[i].key, key, k))
            return &pairs[i];
    return NULL;
}
