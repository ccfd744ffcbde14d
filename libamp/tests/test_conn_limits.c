/* Connection limits a peer cannot get around: descriptors passed over a
 * UNIX socket (kept only on opt-in, capped) and boxes that stop arriving
 * (box_timeout). One side is a real amp_conn on a socketpair, the other a
 * raw socket the test writes to byte by byte. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "amp/amp.h"

struct side {
    struct ev_loop *loop;
    amp_conn *c;
    int raw;  /* the test's end of the socketpair */
    int answered, closed, closed_reason;
    char error[300];
};

static void echo(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    ((struct side *)ud)->answered++;
    amp_request_answer(req, NULL, 0);
}

static void on_closed(amp_conn *c, int reason, void *ud)
{
    struct side *sd = ud;
    sd->closed++;
    sd->closed_reason = reason;
    snprintf(sd->error, sizeof sd->error, "%s", amp_conn_error_text(c));
    sd->c = NULL;
}

static void side_init(struct side *sd, const amp_conn_config *base)
{
    memset(sd, 0, sizeof *sd);
    signal(SIGPIPE, SIG_IGN);
    sd->loop = ev_loop_new(EVFLAG_AUTO);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    amp_conn_config cfg = *base;
    cfg.callbacks.closed = on_closed;
    cfg.user_data = sd;
    cr_assert_eq(amp_conn_adopt(sd->loop, sv[0], &cfg, &sd->c), AMP_OK);
    amp_session_serve_str(amp_conn_session(sd->c), "Echo", echo, sd);
    sd->raw = sv[1];
    fcntl(sd->raw, F_SETFL, O_NONBLOCK);
}

static void side_free(struct side *sd)
{
    if (sd->c)
        amp_conn_abort(sd->c);
    close(sd->raw);
    ev_loop_destroy(sd->loop);
}

/* An Echo call whose bytes the tests send in pieces. */
static size_t echo_box(uint8_t *out, size_t cap, size_t value_len)
{
    static uint8_t value[4096];
    memset(value, 'v', sizeof value);
    cr_assert(value_len <= sizeof value);
    amp_buf b;
    amp_buf_init_fixed(&b, out, cap);
    amp_pair p[3] = {{(const uint8_t *)"_command", 8, (const uint8_t *)"Echo", 4},
                     {(const uint8_t *)"_ask", 4, (const uint8_t *)"1", 1},
                     {(const uint8_t *)"a", 1, value, value_len}};
    cr_assert_eq(amp_encode_box(&b, p, 3), AMP_OK);
    return b.len;
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* One byte with one descriptor, as Twisted sends them; runs the loop while
 * the socket is full. */
static void send_byte_with_fd(struct side *sd, uint8_t byte, int fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {&byte, 1};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    for (int tries = 0; tries < 10000; tries++) {
        if (sendmsg(sd->raw, &msg, MSG_NOSIGNAL) == 1)
            return;
        cr_assert(errno == EAGAIN || errno == EWOULDBLOCK, "sendmsg: %s", strerror(errno));
        ev_run(sd->loop, EVRUN_NOWAIT);
    }
    cr_assert_fail("the connection does not read");
}

static void send_bytes(struct side *sd, const uint8_t *p, size_t n)
{
    for (int tries = 0; n && tries < 10000; tries++) {
        ssize_t w = write(sd->raw, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        cr_assert(errno == EAGAIN || errno == EWOULDBLOCK, "write: %s", strerror(errno));
        ev_run(sd->loop, EVRUN_NOWAIT);
    }
    cr_assert_eq(n, 0, "the connection does not read");
}

static void run_until(struct side *sd, const int *flag, int want)
{
    for (int i = 0; i < 20000 && *flag < want; i++)
        ev_run(sd->loop, EVRUN_ONCE);
}

Test(fds, refused_without_opt_in_and_the_table_does_not_grow)
{
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg); /* max_fds = 0: no opt-in */
    struct side sd;
    side_init(&sd, &cfg);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    uint8_t box[2048];
    size_t len = echo_box(box, sizeof box, 1000);
    cr_assert(len >= 1000);
    int before = open_fds();
    for (size_t i = 0; i < 1000; i++)
        send_byte_with_fd(&sd, box[i], devnull);
    send_bytes(&sd, box + 1000, len - 1000);
    run_until(&sd, &sd.answered, 1);
    cr_assert_eq(sd.answered, 1, "the call still goes through");
    cr_assert_eq(sd.closed, 0);
    cr_assert_eq(amp_conn_fds_refused(sd.c), 1000);
    int after = open_fds();
    cr_assert(after <= before + 2, "open descriptors grew from %d to %d", before, after);
    cr_assert_eq(amp_conn_take_fd(sd.c, 0), -1);
    close(devnull);
    side_free(&sd);
}

Test(fds, opt_in_keeps_at_most_max_fds_and_numbers_every_one)
{
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_fds = 3;
    struct side sd;
    side_init(&sd, &cfg);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    uint8_t box[256];
    size_t len = echo_box(box, sizeof box, 20);
    int before = open_fds();
    /* ordinals 0..9 arrive before anything is taken: only 0, 1, 2 stay */
    for (size_t i = 0; i < 10; i++)
        send_byte_with_fd(&sd, box[i], devnull);
    send_bytes(&sd, box + 10, 1);
    for (int i = 0; i < 50; i++)
        ev_run(sd.loop, EVRUN_NOWAIT);
    cr_assert_eq(amp_conn_fds_refused(sd.c), 7);
    cr_assert_eq(amp_conn_take_fd(sd.c, 3), -1, "refused: closed on arrival");
    int fd1 = amp_conn_take_fd(sd.c, 1);
    cr_assert(fd1 >= 0);
    cr_assert_eq(amp_conn_take_fd(sd.c, 1), -1, "taken once");
    close(fd1);
    /* room for one more: ordinal 10 (the count went on through refusals) */
    send_byte_with_fd(&sd, box[11], devnull);
    send_byte_with_fd(&sd, box[12], devnull); /* 11: over the cap again */
    send_bytes(&sd, box + 13, len - 13);
    run_until(&sd, &sd.answered, 1);
    cr_assert_eq(sd.answered, 1);
    cr_assert_eq(amp_conn_fds_refused(sd.c), 8);
    int fd10 = amp_conn_take_fd(sd.c, 10);
    cr_assert(fd10 >= 0);
    close(fd10);
    cr_assert_eq(amp_conn_take_fd(sd.c, 11), -1);
    int held = open_fds() - before; /* 0 and 2 */
    cr_assert(held <= 3, "%d descriptors held with max_fds 3", held);
    close(devnull);
    side_free(&sd); /* closes 0 and 2, never taken */
}

/* ---- box_timeout ---------------------------------------------------------- */

struct trickle {
    struct side *sd;
    const uint8_t *p;
    size_t len, sent, step;
    ev_timer t;
};

static void trickle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct trickle *tr = w->data;
    size_t n = tr->len - tr->sent < tr->step ? tr->len - tr->sent : tr->step;
    if (!tr->sd->c || n == 0 || write(tr->sd->raw, tr->p + tr->sent, n) != (ssize_t)n) {
        ev_timer_stop(loop, w);
        return;
    }
    tr->sent += n;
}

static void trickle_start(struct trickle *tr, struct side *sd, const uint8_t *p, size_t len,
                          size_t step, double every)
{
    memset(tr, 0, sizeof *tr);
    tr->sd = sd;
    tr->p = p;
    tr->len = len;
    tr->step = step;
    ev_timer_init(&tr->t, trickle_cb, 0, every);
    tr->t.data = tr;
    ev_timer_start(sd->loop, &tr->t);
}

Test(box_timeout, a_box_trickling_in_is_closed_from_its_first_byte)
{
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.box_timeout = 0.5;
    struct side sd;
    side_init(&sd, &cfg);
    uint8_t box[512];
    size_t len = echo_box(box, sizeof box, 200);
    struct trickle tr;
    trickle_start(&tr, &sd, box, len, 1, 0.1); /* one byte every 0.1 s */
    run_until(&sd, &sd.closed, 1);
    ev_timer_stop(sd.loop, &tr.t);
    cr_assert_eq(sd.closed, 1);
    cr_assert_eq(sd.closed_reason, AMP_E_TIMEOUT);
    cr_assert_str_eq(sd.error, "incomplete box timed out");
    cr_assert_eq(sd.answered, 0);
    /* 0.5 s at 10 bytes a second: far from the 200+ bytes of the box */
    cr_assert(tr.sent < 60, "closed only after %zu bytes", tr.sent);
    side_free(&sd);
}

Test(box_timeout, boxes_that_complete_in_time_each_get_a_fresh_clock)
{
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.box_timeout = 2.0;
    struct side sd;
    side_init(&sd, &cfg);
    /* four boxes back to back, each taking about 0.75 s to arrive: 3 s in
     * all, longer than the limit, but every box is within it */
    uint8_t one[256], all[1024];
    size_t len = echo_box(one, sizeof one, 40), total = 0;
    for (int i = 0; i < 4; i++, total += len)
        memcpy(all + total, one, len);
    struct trickle tr;
    trickle_start(&tr, &sd, all, total, (len + 3) / 4, 0.25);
    run_until(&sd, &sd.answered, 4);
    cr_assert_eq(sd.answered, 4);
    cr_assert_eq(sd.closed, 0, "closed: %s", sd.error);
    side_free(&sd);
}

static void stop_loop(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ONE);
}

Test(box_timeout, zero_means_no_limit)
{
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    struct side sd;
    side_init(&sd, &cfg);
    uint8_t box[256];
    size_t len = echo_box(box, sizeof box, 10);
    cr_assert_eq(write(sd.raw, box, 5), 5);
    ev_timer idle;
    ev_timer_init(&idle, stop_loop, 0.3, 0);
    ev_timer_start(sd.loop, &idle);
    ev_run(sd.loop, 0);
    cr_assert_eq(sd.closed, 0);
    cr_assert_eq(write(sd.raw, box + 5, len - 5), (ssize_t)(len - 5));
    run_until(&sd, &sd.answered, 1);
    cr_assert_eq(sd.answered, 1);
    side_free(&sd);
}
