/* A deliberately small HTTP/1.0 server: one request per connection, GET
 * /metrics only, 8 KiB of request at most, 5 s to send it and read the
 * answer, at most MAX_CLIENTS at once. Nothing blocks or spins: the answer
 * is written as the socket takes it, and when the process is out of
 * descriptors the listener (libamp's amp_acceptor, as for AMP listeners)
 * sheds the waiting connection and pauses. */
#include "metrics.h"

#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_REQUEST 8192
#define MAX_CLIENTS 16
#define CLIENT_SECONDS 5.0
#define EMFILE_PAUSE 0.25

struct metrics_server {
    struct ev_loop *loop;
    router *r;
    amp_acceptor *acc;
    int port;
    struct sockaddr_storage addr; /* bound: for the URL in the log */
    socklen_t addr_len;
    size_t clients; /* connected now */
};

struct client {
    metrics_server *m;
    int fd;
    ev_io io;
    ev_timer timer;
    char buf[MAX_REQUEST];
    size_t len;
    amp_buf out; /* the answer, written from `sent` on as the socket takes it */
    size_t sent;
};

static void client_free(struct client *c)
{
    ev_io_stop(c->m->loop, &c->io);
    ev_timer_stop(c->m->loop, &c->timer);
    close(c->fd);
    amp_buf_free(&c->out);
    c->m->clients--;
    free(c);
}

static void respond(struct client *c)
{
    amp_buf body;
    amp_buf_init(&body);
    const char *status = "404 Not Found";
    if (!strncmp(c->buf, "GET /metrics ", 13) || !strncmp(c->buf, "GET /metrics?", 13)) {
        status = "200 OK";
        router_metrics(c->m->r, &body);
    } else {
        amp_buf_append(&body, (const uint8_t *)"try /metrics\n", 13);
    }
    char head[256];
    int k = snprintf(head, sizeof head,
                     "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, body.len);
    amp_buf_append(&c->out, (const uint8_t *)head, (size_t)k);
    amp_buf_append(&c->out, body.data, body.len);
    amp_buf_free(&body);
}

/* Writes what the socket takes; the client is freed when all is sent or the
 * peer is gone. EAGAIN waits for EV_WRITE (the timer still bounds it). */
static void client_write(struct ev_loop *loop, ev_io *w, int revents)
{
    struct client *c = w->data;
    while (c->sent < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            break;
        }
    }
    client_free(c);
}

static void client_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct client *c = w->data;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        client_free(c);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = 0;
    if (strstr(c->buf, "\r\n\r\n") || strstr(c->buf, "\n\n") || c->len == sizeof c->buf - 1) {
        respond(c);
        ev_io_stop(loop, &c->io);
        ev_io_init(&c->io, client_write, c->fd, EV_WRITE);
        ev_io_start(loop, &c->io);
        client_write(loop, &c->io, EV_WRITE);
    }
}

static void client_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    client_free(w->data);
}

static void on_shed(amp_acceptor *a, void *ud)
{
    metrics_server *m = ud;
    router_metrics_refused(m->r);
}

static void on_accept(amp_acceptor *a, int fd, void *ud)
{
    metrics_server *m = ud;
    struct client *c = m->clients < MAX_CLIENTS ? calloc(1, sizeof *c) : NULL;
    if (!c) { /* busy: a scraper asks again */
        close(fd);
        router_metrics_refused(m->r);
        return;
    }
    m->clients++;
    c->m = m;
    c->fd = fd;
    amp_buf_init(&c->out);
    ev_io_init(&c->io, client_read, fd, EV_READ);
    c->io.data = c;
    ev_timer_init(&c->timer, client_timeout, CLIENT_SECONDS, 0);
    c->timer.data = c;
    ev_io_start(m->loop, &c->io);
    ev_timer_start(m->loop, &c->timer);
}

metrics_server *metrics_listen(struct ev_loop *loop, const char *endpoint, router *r, char *err,
                               size_t err_len)
{
    amp_endpoint ep;
    if (amp_endpoint_parse(endpoint, 1, &ep, err, err_len) != AMP_OK)
        return NULL;
    if (ep.kind != AMP_ENDPOINT_TCP) {
        snprintf(err, err_len, "metrics endpoint '%s': only tcp: is supported", endpoint);
        amp_endpoint_free(&ep);
        return NULL;
    }
    metrics_server *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, err_len, "metrics endpoint '%s': out of memory", endpoint);
        amp_endpoint_free(&ep);
        return NULL;
    }
    m->loop = loop;
    m->r = r;
    ep.backlog = 16;
    amp_acceptor_config acfg;
    amp_acceptor_config_init(&acfg);
    acfg.accept = on_accept;
    acfg.shed = on_shed;
    acfg.user_data = m;
    acfg.pause = EMFILE_PAUSE;
    char why[256] = "";
    if (amp_acceptor_new(loop, &ep, &acfg, &m->acc, why, sizeof why) != AMP_OK) {
        snprintf(err, err_len, "metrics endpoint '%s': %s", endpoint, why);
        free(m);
        amp_endpoint_free(&ep);
        return NULL;
    }
    m->port = amp_acceptor_port(m->acc);
    m->addr_len = sizeof m->addr;
    getsockname(amp_acceptor_fd(m->acc), (struct sockaddr *)&m->addr, &m->addr_len);
    amp_endpoint_free(&ep);
    return m;
}

int metrics_port(const metrics_server *m)
{
    return m->port;
}

const char *metrics_url(const metrics_server *m, char *buf, size_t len)
{
    char host[NI_MAXHOST];
    if (getnameinfo((const struct sockaddr *)&m->addr, m->addr_len, host, sizeof host, NULL, 0,
                    NI_NUMERICHOST))
        snprintf(host, sizeof host, "?");
    int v6 = m->addr.ss_family == AF_INET6;
    snprintf(buf, len, "http://%s%s%s:%d/metrics", v6 ? "[" : "", host, v6 ? "]" : "", m->port);
    return buf;
}

void metrics_free(metrics_server *m)
{
    if (!m)
        return;
    amp_acceptor_free(m->acc);
    free(m);
}
