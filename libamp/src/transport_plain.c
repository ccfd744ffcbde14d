/* The plain stream transport: TCP bytes with recv()/send(). Also the
 * helpers every stream transport shares (transport_unix.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "transport.h"

struct plain {
    amp__transport base;
    int saved_errno; /* of the last failure */
};

ssize_t amp__stream_result(ssize_t r, int *saved_errno, int reading)
{
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return AMP__IO_AGAIN;
    if (reading && errno == ECONNRESET)
        return 0; /* the peer went away: an end like any other */
    *saved_errno = errno;
    return AMP__IO_FAILED;
}

amp_err amp__stream_failure(int saved_errno, enum amp__io_op op, char *buf, size_t len)
{
    snprintf(buf, len, "%s failed: %s", op == AMP__OP_READ ? "read" : "write",
             strerror(saved_errno));
    return AMP_E_IO;
}

static ssize_t plain_read(amp__transport *t, uint8_t *buf, size_t n)
{
    struct plain *p = (struct plain *)t;
    return amp__stream_result(recv(t->fd, buf, n, 0), &p->saved_errno, 1);
}

static ssize_t plain_write(amp__transport *t, const uint8_t *buf, size_t n)
{
    struct plain *p = (struct plain *)t;
    return amp__stream_result(send(t->fd, buf, n, MSG_NOSIGNAL), &p->saved_errno, 0);
}

static amp_err plain_failure(amp__transport *t, enum amp__io_op op, char *buf, size_t len)
{
    return amp__stream_failure(((struct plain *)t)->saved_errno, op, buf, len);
}

static void plain_free(amp__transport *t)
{
    free(t);
}

static const amp__transport_ops plain_ops = {
    .name = "tcp",
    .read = plain_read,
    .write = plain_write,
    .failure = plain_failure,
    .free = plain_free,
    .starttls_ok = 1,
};

amp__transport *amp__transport_plain_new(int fd)
{
    struct plain *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->base.ops = &plain_ops;
    p->base.fd = fd;
    return &p->base;
}

amp__transport *amp__transport_socket_new(int fd, int is_unix, size_t max_fds)
{
    return is_unix ? amp__transport_unix_new(fd, max_fds) : amp__transport_plain_new(fd);
}
