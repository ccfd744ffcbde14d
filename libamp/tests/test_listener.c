/* Listeners under stress: an accept callback that frees its listener, and a
 * process out of descriptors (a child with a low RLIMIT_NOFILE). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amp/amp.h"

static const uint8_t echo_call[] = "\0\x08" "_command" "\0\x04" "Echo" "\0\x04" "_ask"
                                   "\0\x01" "1" "\0\0";
#define ECHO_LEN (sizeof echo_call - 1)

static void echo(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    amp_request_answer(req, NULL, 0);
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "%s", strerror(errno));
    return fd;
}

/* What the server did with a connection within `seconds`: 1 answered the
 * Echo call, 0 closed it, -1 nothing (still waiting). */
static int outcome(int fd, double seconds)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, (int)(seconds * 1000)) <= 0)
        return -1;
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    return n > 0 ? 1 : 0;
}

/* ---- an accept callback that frees the listener --------------------------- */

struct selfkill {
    amp_listener *l;
    int accepted;
    amp_conn *c;
};

static void free_on_accept(amp_listener *l, amp_conn *c, void *ud)
{
    struct selfkill *k = ud;
    k->accepted++;
    k->c = c;
    amp_session_serve_str(amp_conn_session(c), "Echo", echo, NULL);
    amp_listener_free(l); /* the listener is still on the stack */
    k->l = NULL;
}

Test(listener, the_accept_callback_may_free_the_listener)
{
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct selfkill k = {0};
    char err[256];
    cr_assert_eq(amp_listen(loop, "tcp:0:interface=127.0.0.1", NULL, free_on_accept, &k, &k.l,
                            err, sizeof err),
                 AMP_OK, "%s", err);
    int port = amp_listener_port(k.l);
    /* three connections wait in the queue: the accept loop would go on */
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = tcp_connect(port);
        cr_assert_eq(send(fds[i], echo_call, ECHO_LEN, 0), (ssize_t)ECHO_LEN);
    }
    for (int i = 0; i < 100 && !k.accepted; i++)
        ev_run(loop, EVRUN_NOWAIT);
    cr_assert_eq(k.accepted, 1, "accepted after the listener was freed");
    cr_assert_null(k.l);
    /* the accepted connection lives on; the others were never accepted */
    int answered = -1;
    for (int i = 0; i < 200 && answered < 0; i++) {
        ev_run(loop, EVRUN_NOWAIT);
        answered = outcome(fds[0], 0.01);
    }
    cr_assert_eq(answered, 1);
    for (int i = 1; i < 3; i++)
        cr_assert_neq(outcome(fds[i], 1), 1);
    amp_conn_abort(k.c);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    ev_loop_destroy(loop);
}

/* ---- out of descriptors --------------------------------------------------- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", "..", and the directory itself */
}

static void control_closed(struct ev_loop *loop, ev_io *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

static void serve_accept(amp_listener *l, amp_conn *c, void *ud)
{
    amp_session_serve_str(amp_conn_session(c), "Echo", echo, NULL);
}

/* The child: a listener in a process allowed only `room` more descriptors.
 * Reports its port on `report`; runs until `control` closes; exits 0 if
 * the listener shed connections. */
static void limited_server(int report, int control, int room)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    amp_listener *l;
    char err[256];
    if (amp_listen(loop, "tcp:0:interface=127.0.0.1", NULL, serve_accept, NULL, &l, err,
                   sizeof err))
        _exit(2);
    int port = amp_listener_port(l);
    ev_io ctl;
    ev_io_init(&ctl, control_closed, control, EV_READ);
    ev_io_start(loop, &ctl);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = (rlim_t)(count_fds() + room);
    if (setrlimit(RLIMIT_NOFILE, &rl) || write(report, &port, sizeof port) != sizeof port)
        _exit(2);
    close(report);
    ev_run(loop, 0);
    _exit(amp_listener_shed(l) > 0 ? 0 : 3);
}

static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* utime and stime are fields 14 and 15, counted after the ")" */
    char *p = strrchr(buf, ')');
    unsigned long utime = 0, stime = 0;
    cr_assert_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                        &stime),
                 2);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

Test(listener, out_of_descriptors_sheds_backs_off_and_recovers, .timeout = 60)
{
    signal(SIGPIPE, SIG_IGN);
    int rep[2], ctl[2];
    cr_assert_eq(pipe(rep), 0);
    cr_assert_eq(pipe(ctl), 0);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(rep[0]);
        close(ctl[1]);
        limited_server(rep[1], ctl[0], 3);
    }
    close(rep[1]);
    close(ctl[0]);
    int port = 0;
    cr_assert_eq(read(rep[0], &port, sizeof port), (ssize_t)sizeof port);
    close(rep[0]);

    /* fill the server's descriptor table with live connections */
    int held[16], nheld = 0;
    for (;;) {
        int fd = tcp_connect(port);
        cr_assert_eq(send(fd, echo_call, ECHO_LEN, 0), (ssize_t)ECHO_LEN);
        int r = outcome(fd, 5);
        if (r != 1) {
            /* the first one the server could not keep: closed, not left
             * waiting in the queue */
            cr_assert_eq(r, 0, "a connection the server has no room for was left waiting");
            close(fd);
            break;
        }
        held[nheld++] = fd;
        cr_assert(nheld < 16, "the descriptor limit did not take");
    }
    cr_assert(nheld >= 1);

    /* clients keep coming while the table is full: each is closed, and the
     * listener does not spin (generous bound: a spin burns the whole 2 s) */
    double cpu0 = cpu_seconds(pid);
    for (int i = 0; i < 20; i++) {
        int fd = tcp_connect(port);
        cr_assert_eq(outcome(fd, 5), 0, "connection %d while full: not closed", i);
        close(fd);
        usleep(100 * 1000);
    }
    double cpu = cpu_seconds(pid) - cpu0;
    cr_log_info("listener CPU while out of descriptors: %.2f s over 20 connections in ~2 s", cpu);
    cr_assert(cpu < 1.0, "the listener used %.2f s of CPU in about 2 s", cpu);

    /* descriptors free up: connections are served again */
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    int served = 0;
    for (int attempt = 0; attempt < 50 && !served; attempt++) {
        usleep(100 * 1000); /* the server notices the closes, the pause ends */
        int fd = tcp_connect(port);
        send(fd, echo_call, ECHO_LEN, 0);
        served = outcome(fd, 5) == 1;
        close(fd);
    }
    cr_assert(served, "no connection served after descriptors were freed");

    close(ctl[1]); /* the server stops and tells whether it shed */
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "server status %d", status);
}
