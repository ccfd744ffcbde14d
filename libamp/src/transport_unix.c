/* UNIX sockets with descriptor passing, as Twisted does it: each descriptor
 * sent rides with one byte of the stream (SCM_RIGHTS), and each one received
 * gets the next ordinal, the number the Descriptor argument carries. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn_internal.h"
#include "transport.h"

#define MAX_FDS_PER_READ 16

struct unix_transport {
    amp__transport base;
    int saved_errno;
    int *send_fds; /* queued by amp_conn_send_fd(), sent one per byte */
    size_t nsend_fds;
    int64_t sent_fd_count;
    struct held_fd {
        int64_t ordinal;
        int fd;
    } *held_fds; /* received, not yet taken: at most max_fds */
    size_t nheld_fds, held_cap, max_fds;
    int64_t recv_fd_count; /* ordinal of the next descriptor received */
    uint64_t fds_refused;
};

/* Keep one received descriptor if the connection opted in and has room;
 * else close it now. Its ordinal counts either way (Twisted numbers every
 * descriptor received), so later ones keep the sender's numbering. */
static void keep_fd(struct unix_transport *u, int fd)
{
    int64_t ordinal = u->recv_fd_count++;
    if (u->nheld_fds >= u->max_fds) {
        close(fd);
        u->fds_refused++;
        return;
    }
    if (u->nheld_fds == u->held_cap) {
        size_t cap = u->held_cap ? u->held_cap * 2 : 4;
        if (cap > u->max_fds)
            cap = u->max_fds;
        struct held_fd *p = realloc(u->held_fds, cap * sizeof *p);
        if (!p) {
            close(fd);
            u->fds_refused++;
            return;
        }
        u->held_fds = p;
        u->held_cap = cap;
    }
    u->held_fds[u->nheld_fds].ordinal = ordinal;
    u->held_fds[u->nheld_fds].fd = fd;
    u->nheld_fds++;
}

static void keep_fds(struct unix_transport *u, struct msghdr *msg)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof fd, sizeof fd);
            keep_fd(u, fd);
        }
    }
}

static ssize_t unix_read(amp__transport *t, uint8_t *buf, size_t n)
{
    struct unix_transport *u = (struct unix_transport *)t;
    union {
        char buf[CMSG_SPACE(MAX_FDS_PER_READ * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {buf, n};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    ssize_t r = recvmsg(t->fd, &msg, MSG_CMSG_CLOEXEC);
    if (r >= 0 && msg.msg_controllen)
        keep_fds(u, &msg);
    return amp__stream_result(r, &u->saved_errno, 1);
}

/* One descriptor rides with one byte, as in Twisted. */
static ssize_t send_with_fd(struct unix_transport *u, const uint8_t *p)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {(void *)p, 1};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &u->send_fds[0], sizeof(int));
    ssize_t r = sendmsg(u->base.fd, &msg, MSG_NOSIGNAL);
    if (r == 1) {
        close(u->send_fds[0]);
        memmove(u->send_fds, u->send_fds + 1, --u->nsend_fds * sizeof(int));
    }
    return r;
}

static ssize_t unix_write(amp__transport *t, const uint8_t *p, size_t n)
{
    struct unix_transport *u = (struct unix_transport *)t;
    ssize_t r = u->nsend_fds ? send_with_fd(u, p) : send(t->fd, p, n, MSG_NOSIGNAL);
    return amp__stream_result(r, &u->saved_errno, 0);
}

static amp_err unix_failure(amp__transport *t, enum amp__io_op op, char *buf, size_t len)
{
    return amp__stream_failure(((struct unix_transport *)t)->saved_errno, op, buf, len);
}

static void unix_free(amp__transport *t)
{
    struct unix_transport *u = (struct unix_transport *)t;
    for (size_t i = 0; i < u->nheld_fds; i++)
        close(u->held_fds[i].fd);
    for (size_t i = 0; i < u->nsend_fds; i++)
        close(u->send_fds[i]);
    free(u->held_fds);
    free(u->send_fds);
    free(u);
}

static const amp__transport_ops unix_ops = {
    .name = "unix",
    .read = unix_read,
    .write = unix_write,
    .failure = unix_failure,
    .free = unix_free,
    .starttls_ok = 0, /* descriptors cannot ride inside TLS */
};

amp__transport *amp__transport_unix_new(int fd, size_t max_fds)
{
    struct unix_transport *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->base.ops = &unix_ops;
    u->base.fd = fd;
    u->max_fds = max_fds;
    return &u->base;
}

int amp__transport_is_unix(const amp__transport *t)
{
    return t->ops == &unix_ops;
}

static struct unix_transport *unix_of(const amp_conn *c)
{
    return c && amp__transport_is_unix(c->t) ? (struct unix_transport *)c->t : NULL;
}

amp_err amp_conn_send_fd(amp_conn *c, int fd, int64_t *ordinal)
{
    struct unix_transport *u = unix_of(c);
    if (!u || fd < 0)
        return AMP_E_INVALID;
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0)
        return AMP_E_IO;
    int *p = realloc(u->send_fds, (u->nsend_fds + 1) * sizeof *p);
    if (!p) {
        close(copy);
        return AMP_E_NOMEM;
    }
    u->send_fds = p;
    u->send_fds[u->nsend_fds++] = copy;
    if (ordinal)
        *ordinal = u->sent_fd_count;
    u->sent_fd_count++;
    return AMP_OK;
}

int amp_conn_take_fd(amp_conn *c, int64_t ordinal)
{
    struct unix_transport *u = unix_of(c);
    if (!u || ordinal < 0)
        return -1;
    for (size_t i = 0; i < u->nheld_fds; i++) {
        if (u->held_fds[i].ordinal != ordinal)
            continue;
        int fd = u->held_fds[i].fd;
        u->held_fds[i] = u->held_fds[--u->nheld_fds]; /* order does not matter */
        return fd;
    }
    return -1;
}

uint64_t amp_conn_fds_refused(const amp_conn *c)
{
    struct unix_transport *u = unix_of(c);
    return u ? u->fds_refused : 0;
}
