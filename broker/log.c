#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum log_level log_threshold = LOG_INFO;
uint64_t log_lines_suppressed;

static const char *names[] = {"error", "warn", "info", "debug"};
static const char hex[] = "0123456789abcdef";

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

static int needs_escape(unsigned char c)
{
    return c < 0x20 || c >= 0x7f;
}

/* Appends \xNN for c at out[k]; returns the new length. */
static size_t put_escaped(char *out, size_t k, unsigned char c)
{
    out[k++] = '\\';
    out[k++] = 'x';
    out[k++] = hex[c >> 4];
    out[k++] = hex[c & 15];
    return k;
}

const char *log_field(char buf[LOG_FIELD_BUF], const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t keep = n > LOG_FIELD_MAX ? LOG_FIELD_MAX : n, k = 0;
    for (size_t i = 0; i < keep; i++) {
        if (needs_escape(b[i]) || b[i] == '\\')
            k = put_escaped(buf, k, b[i]);
        else
            buf[k++] = (char)b[i];
    }
    buf[k] = 0;
    if (keep < n)
        snprintf(buf + k, LOG_FIELD_BUF - k, "...(%zu bytes)", n);
    return buf;
}

static void vlog(enum log_level level, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX + 1];
    int len = vsnprintf(msg, sizeof msg, fmt, ap);
    if (len < 0)
        return;
    size_t n = (size_t)len > LOG_LINE_MAX ? LOG_LINE_MAX : (size_t)len;

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);

    /* the whole line is built first and written at once (on the stack:
     * any thread may log) */
    char line[64 + LOG_LINE_MAX * 4 + 64];
    size_t k = (size_t)snprintf(line, 64, "%s.%03ldZ %-5s ", when, ts.tv_nsec / 1000000,
                                names[level]);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (needs_escape(c))
            k = put_escaped(line, k, c);
        else
            line[k++] = (char)c;
    }
    if ((size_t)len > n)
        k += (size_t)snprintf(line + k, 64, "...(cut at %d bytes)", LOG_LINE_MAX);
    line[k++] = '\n';
    fwrite(line, 1, k, stderr);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level > log_threshold)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void summary(log_bucket *b, enum log_level level)
{
    if (b->name)
        log_msg(level, "%s: %llu log lines suppressed", b->name,
                (unsigned long long)b->suppressed);
    else
        log_msg(level, "peer %llu: %llu log lines suppressed", (unsigned long long)b->id,
                (unsigned long long)b->suppressed);
    b->suppressed = 0;
}

void log_peer(log_bucket *b, enum log_level level, const char *fmt, ...)
{
    if (level > log_threshold)
        return;
    double now = mono_now();
    double burst = b->burst > 0 ? b->burst : LOG_PEER_BURST;
    double rate = b->per_second > 0 ? b->per_second : LOG_PEER_PER_SECOND;
    if (!b->last) {
        b->tokens = burst;
    } else {
        b->tokens += (now - b->last) * rate;
        if (b->tokens > burst)
            b->tokens = burst;
    }
    b->last = now;
    if (b->tokens < 1) {
        b->suppressed++;
        log_lines_suppressed++;
        return;
    }
    b->tokens -= 1;
    if (b->suppressed)
        summary(b, level < LOG_INFO ? level : LOG_INFO);
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void log_peer_flush(log_bucket *b)
{
    if (b->suppressed)
        summary(b, LOG_INFO);
}
