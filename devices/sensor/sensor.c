/* amp-sensor: a small device on the bus. It connects to amp-broker over
 * TCP, registers ReadSensor (answered with a reading) and publishes a
 * reading as an event every interval. It uses amp::core's session with
 * plain POSIX sockets and poll(): no event library, no TLS, no threads,
 * which is what a device with a few hundred KiB and a Linux kernel has.
 *
 *   amp-sensor [--name NAME] [--interval MS] [--count N] ADDRESS PORT
 *
 * ADDRESS is a numeric IPv4 or IPv6 address (no resolver: a static binary
 * stays free of NSS). Prints "ready" once the broker accepted the
 * registration. Events are calls without _ask named sensor.NAME.reading
 * with channel (Integer), seq (Integer) and value (Float); after N of them
 * (--count, 0: no end) it keeps serving ReadSensor. Exits 0 on SIGTERM or
 * SIGINT, 1 when the broker refuses or closes, 2 for a bad command line.
 *
 * ReadSensor: channel (Integer, 0..3, default 0) -> channel, seq, value
 * (Float: 20 + channel + seq / 4, exact in binary so that every peer prints
 * the same digits) and unit (Unicode, "C"). Another channel: the error
 * NO_SUCH_CHANNEL. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "amp/box.h"
#include "amp/session.h"
#include "amp/value.h"

#define CHANNELS 4
#define REGISTER_TIMEOUT_MS 5000

typedef struct sensor {
    int fd;
    amp_session *session;
    char name[64];
    char event[96];       /* sensor.NAME.reading */
    uint64_t interval_ms;
    uint64_t count;       /* events to publish; 0: no end */
    uint64_t published;
    uint64_t next_publish;
    uint64_t readings;    /* every reading taken, events and answers */
    int registered;
    int failed;           /* the broker refused, or the connection ended */
} sensor;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static double reading(int64_t channel, uint64_t seq)
{
    return 20.0 + (double)channel + (double)seq / 4.0;
}

static amp_pair text_pair(const char *key, const char *value, size_t n)
{
    amp_pair p = {(const uint8_t *)key, strlen(key), (const uint8_t *)value, n};
    return p;
}

/* ---- serving ReadSensor --------------------------------------------------- */

static void read_sensor(amp_session *s, amp_request *req, const amp_box *args, void *ud)
{
    sensor *dev = ud;
    int64_t channel = 0;
    const amp_pair *c = amp_box_find_str(args, "channel");
    if (c && amp_int_parse(c->value, c->value_len, &channel) != AMP_OK) {
        amp_request_error(req, "BAD_ARGUMENT", "channel must be an Integer", 0);
        return;
    }
    if (channel < 0 || channel >= CHANNELS) {
        amp_request_error(req, "NO_SUCH_CHANNEL", "channels are 0 to 3", 0);
        return;
    }
    uint64_t seq = dev->readings++;
    char ch[AMP_INT_MAX_LEN], sq[AMP_INT_MAX_LEN], val[AMP_FLOAT_MAX_LEN];
    amp_pair out[] = {
        text_pair("channel", ch, amp_int_format(channel, ch)),
        text_pair("seq", sq, amp_int_format((int64_t)seq, sq)),
        text_pair("unit", "C", 1),
        text_pair("value", val, amp_float_format(reading(channel, seq), val)),
    };
    amp_request_answer(req, out, sizeof out / sizeof out[0]);
}

/* ---- registering and publishing ------------------------------------------- */

static void registered(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    sensor *dev = ud;
    if (r->status != AMP_OK) {
        if (r->status == AMP_E_REMOTE)
            fprintf(stderr, "amp-sensor: amp.Register refused: %.*s: %.*s\n",
                    (int)r->error_code->value_len, (const char *)r->error_code->value,
                    (int)r->error_description->value_len,
                    (const char *)r->error_description->value);
        else
            fprintf(stderr, "amp-sensor: amp.Register: %s\n", amp_strerror(r->status));
        dev->failed = 1;
        return;
    }
    dev->registered = 1;
    dev->next_publish = now_ms();
    printf("ready\n");
    fflush(stdout);
}

static amp_err register_command(sensor *dev)
{
    amp_pair arg = text_pair("command", "ReadSensor", 10);
    amp_call_opts opts = {0, 1, now_ms() + REGISTER_TIMEOUT_MS};
    return amp_session_call_str(dev->session, "amp.Register", &arg, 1, &opts, registered, dev,
                                NULL);
}

/* An event is a call without _ask: the broker hands it to every subscriber
 * of a matching pattern and nothing comes back. */
static void publish(sensor *dev)
{
    uint64_t seq = dev->readings++;
    char sq[AMP_INT_MAX_LEN], val[AMP_FLOAT_MAX_LEN];
    amp_pair args[] = {
        text_pair("channel", "0", 1),
        text_pair("seq", sq, amp_int_format((int64_t)seq, sq)),
        text_pair("value", val, amp_float_format(reading(0, seq), val)),
    };
    amp_call_opts opts = {1, 0, 0};
    amp_err r = amp_session_call_str(dev->session, dev->event, args, 3, &opts, NULL, NULL, NULL);
    if (r != AMP_OK)
        fprintf(stderr, "amp-sensor: publish: %s\n", amp_strerror(r));
    dev->published++;
}

/* ---- the socket ---------------------------------------------------------- */

static int connect_to(const char *address, const char *port_text)
{
    char *end;
    long port = strtol(port_text, &end, 10);
    if (*end || port <= 0 || port > 65535)
        return -1;
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        len = sizeof *v6;
    } else {
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return -1;
    }
    int one = 1; /* small boxes: send each at once */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Write what the session has queued, as far as the socket takes it. */
static int flush_output(sensor *dev)
{
    for (;;) {
        const uint8_t *p;
        size_t n;
        amp_session_output(dev->session, &p, &n);
        if (n == 0)
            return 0;
        ssize_t w = send(dev->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            amp_session_consume(dev->session, (size_t)w);
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

static int read_input(sensor *dev)
{
    uint8_t buf[4096];
    for (;;) {
        ssize_t r = recv(dev->fd, buf, sizeof buf, 0);
        if (r > 0) {
            amp_err e = amp_session_feed(dev->session, buf, (size_t)r);
            if (e != AMP_OK) {
                fprintf(stderr, "amp-sensor: from the broker: %s\n", amp_strerror(e));
                return -1;
            }
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (r < 0 && errno == EINTR)
            continue;
        fprintf(stderr, "amp-sensor: the broker closed the connection\n");
        return -1;
    }
}

/* How long poll() may sleep: until the next event or call deadline. */
static int poll_timeout(const sensor *dev, uint64_t now)
{
    uint64_t wake = UINT64_MAX, deadline;
    if (dev->registered && (!dev->count || dev->published < dev->count))
        wake = dev->next_publish;
    if (amp_session_next_deadline(dev->session, &deadline) && deadline < wake)
        wake = deadline;
    if (wake == UINT64_MAX)
        return -1;
    return wake <= now ? 0 : (int)(wake - now > 60000 ? 60000 : wake - now);
}

static int run(sensor *dev)
{
    while (!stop_requested && !dev->failed) {
        uint64_t now = now_ms();
        amp_session_expire(dev->session, now);
        while (dev->registered && (!dev->count || dev->published < dev->count) &&
               dev->next_publish <= now) {
            publish(dev);
            dev->next_publish += dev->interval_ms;
        }
        if (flush_output(dev) != 0) {
            fprintf(stderr, "amp-sensor: write: %s\n", strerror(errno));
            return 1;
        }
        const uint8_t *p;
        size_t pending;
        amp_session_output(dev->session, &p, &pending);
        struct pollfd pfd = {dev->fd, (short)(POLLIN | (pending ? POLLOUT : 0)), 0};
        int n = poll(&pfd, 1, poll_timeout(dev, now_ms()));
        if (n < 0 && errno != EINTR) {
            perror("amp-sensor: poll");
            return 1;
        }
        if (n > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)) && read_input(dev) != 0)
            return 1;
    }
    return dev->failed ? 1 : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: amp-sensor [--name NAME] [--interval MS] [--count N] ADDRESS PORT\n");
    return 2;
}

int main(int argc, char **argv)
{
    sensor dev;
    memset(&dev, 0, sizeof dev);
    strcpy(dev.name, "s1");
    dev.interval_ms = 100;
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--name") == 0 && strlen(argv[i + 1]) < sizeof dev.name)
            strcpy(dev.name, argv[i + 1]);
        else if (strcmp(argv[i], "--interval") == 0)
            dev.interval_ms = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--count") == 0)
            dev.count = strtoull(argv[i + 1], NULL, 10);
        else
            return usage();
    }
    if (argc - i != 2 || dev.interval_ms == 0)
        return usage();
    snprintf(dev.event, sizeof dev.event, "sensor.%s.reading", dev.name);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    errno = 0;
    dev.fd = connect_to(argv[i], argv[i + 1]);
    if (dev.fd < 0) {
        fprintf(stderr, "amp-sensor: cannot connect to %s port %s: %s\n", argv[i], argv[i + 1],
                errno ? strerror(errno) : "bad address");
        return 1;
    }
    amp_session_config cfg;
    memset(&cfg, 0, sizeof cfg);
    amp_err e = amp_session_new(&dev.session, &cfg);
    if (e == AMP_OK)
        e = amp_session_serve_str(dev.session, "ReadSensor", read_sensor, &dev);
    if (e == AMP_OK)
        e = register_command(&dev);
    if (e != AMP_OK) {
        fprintf(stderr, "amp-sensor: %s\n", amp_strerror(e));
        return 1;
    }
    int status = run(&dev);
    amp_session_free(dev.session);
    close(dev.fd);
    return status;
}
