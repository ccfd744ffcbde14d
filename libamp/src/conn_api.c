/* The connection's public setters, accessors and calls: everything of
 * conn.h that is not the state machine (conn.c) or connecting (connect.c). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "amp/conn.h"
#include "conn_internal.h"

void amp_conn_callbacks_init(amp_conn_callbacks *cb)
{
    memset(cb, 0, sizeof *cb);
}

void amp_conn_config_init(amp_conn_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    amp_limits_default(&cfg->limits);
    cfg->output_high_water = 1u << 20;
    cfg->output_hard_cap = 64u << 20;
    cfg->handshake_timeout = 10;
}

void amp_conn_set_callbacks_full(amp_conn *c, const amp_conn_callbacks *cb, void *user_data,
                                 void (*user_data_free)(void *user_data))
{
    void (*old_free)(void *) = c->user_data_free;
    void *old = c->user_data;
    if (cb)
        c->cb = *cb;
    else
        memset(&c->cb, 0, sizeof c->cb);
    c->user_data = user_data;
    c->user_data_free = user_data_free;
    /* after the swap: a notify that looks at the connection sees the new */
    if (old_free && (old_free != user_data_free || old != user_data))
        old_free(old);
}

void amp_conn_set_callbacks(amp_conn *c, const amp_conn_callbacks *cb, void *user_data)
{
    amp_conn_set_callbacks_full(c, cb, user_data, NULL);
}

amp_session *amp_conn_session(amp_conn *c)
{
    return c->s;
}

struct ev_loop *amp_conn_loop(amp_conn *c)
{
    return c->loop;
}

int amp_conn_fd(const amp_conn *c)
{
    return c->t->fd;
}

const char *amp_conn_error_text(const amp_conn *c)
{
    return c->error;
}

/* ---- calls ---------------------------------------------------------------------------- */

amp_err amp_conn_call_bytes(amp_conn *c, const uint8_t *command, size_t command_len,
                            const amp_pair *args, size_t n, double timeout, amp_result_cb cb,
                            void *user_data, uint64_t *call_id)
{
    if (!c)
        return AMP_E_INVALID;
    amp_call_opts opts = {0, 0, 0};
    if (timeout > 0) {
        opts.has_deadline = 1;
        /* a fresh monotonic clock: the loop's cached time may be old (the
         * caller did not run the loop for a while), which would make the
         * deadline already past */
        opts.deadline = amp__now_ms() + (uint64_t)(timeout * 1000.0 + 0.5);
    }
    amp_err r = amp_session_call(c->s, command, command_len, args, n, &opts, cb, user_data,
                                 call_id);
    if (r == AMP_OK && timeout > 0)
        amp__conn_arm_call_timer(c);
    return r;
}

amp_err amp_conn_call(amp_conn *c, const char *command, const amp_pair *args, size_t n,
                      double timeout, amp_result_cb cb, void *user_data, uint64_t *call_id)
{
    if (!command)
        return AMP_E_INVALID;
    return amp_conn_call_bytes(c, (const uint8_t *)command, strlen(command), args, n, timeout,
                               cb, user_data, call_id);
}

amp_err amp_conn_send(amp_conn *c, const char *command, const amp_pair *args, size_t n)
{
    if (!c)
        return AMP_E_INVALID;
    amp_call_opts opts = {1, 0, 0};
    return amp_session_call_str(c->s, command, args, n, &opts, NULL, NULL, NULL);
}

uint64_t amp_conn_bytes_in(const amp_conn *c)
{
    return c->bytes_in;
}

uint64_t amp_conn_bytes_out(const amp_conn *c)
{
    return c->bytes_out;
}

const char *amp_conn_peer_name(amp_conn *c)
{
    if (!c->peer_name[0]) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char host[48] = "?";
        int fd = c->t->fd;
        if (amp__transport_is_unix(c->t)) {
            snprintf(c->peer_name, sizeof c->peer_name, "%s", "unix");
        } else if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
            return "?"; /* not connected (yet): ask again later */
        } else if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
            snprintf(c->peer_name, sizeof c->peer_name, "%s:%u", host, ntohs(a->sin_port));
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
            snprintf(c->peer_name, sizeof c->peer_name, "[%s]:%u", host, ntohs(a->sin6_port));
        }
    }
    return c->peer_name;
}

