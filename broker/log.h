/* Leveled logging to stderr, safe against what peers send.
 *
 * Every message is escaped as a whole before it is written: bytes below 0x20
 * and from 0x7f up become \xNN, so nothing a peer supplies (a user name, a
 * command name, an error text) can start a new line, move the cursor or
 * pass for other characters. A message is cut at LOG_LINE_MAX bytes with a
 * marker. Peer-supplied strings should also go through log_field(), which
 * caps each one so it cannot crowd out the rest of the line, and lines a
 * peer can cause at will go through log_peer(), which rate-limits them per
 * peer.
 *
 * Who calls it: every file of the broker. log_threshold is set by main.c
 * and settings.c before the loop starts. Threads: the loop thread (and the
 * main thread before it: they are one); the login workers never log. A
 * log_bucket is its owner's (one per peer, a few per router) and lives as
 * long as it. */
#ifndef AMP_BROKER_LOG_H
#define AMP_BROKER_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern enum log_level log_threshold;

/* The longest message written, before escaping (longer ones are cut). */
#define LOG_LINE_MAX 2048
/* The most bytes of one peer-supplied string that log_field() keeps. */
#define LOG_FIELD_MAX 128
/* Room for log_field()'s result: every kept byte escaped, plus the marker. */
#define LOG_FIELD_BUF (LOG_FIELD_MAX * 4 + 40)

/* "error", "warn", "info", "debug"; -1 if unknown. */
int log_level_parse(const char *name);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A peer-supplied byte string (any bytes, NULs included) as text for a "%s"
 * argument: its first LOG_FIELD_MAX bytes with control bytes, bytes from 0x7f
 * up and '\' written as \xNN, then "...(N bytes)" if it was longer. Returns
 * buf. */
const char *log_field(char buf[LOG_FIELD_BUF], const void *p, size_t n);

/* Per-peer rate limit: a burst of LOG_PEER_BURST lines, then
 * LOG_PEER_PER_SECOND lines a second. Zero-initialise; set id to the peer's
 * number (it names the peer in the "suppressed" summary). */
#define LOG_PEER_BURST 20
#define LOG_PEER_PER_SECOND 1.0
typedef struct log_bucket {
    uint64_t id;
    const char *name;    /* names it in the summary instead of "peer <id>" */
    double burst, per_second; /* 0: LOG_PEER_BURST, LOG_PEER_PER_SECOND */
    double tokens;
    double last;         /* monotonic seconds of the last refill; 0: never */
    uint64_t suppressed; /* lines dropped since the last summary */
} log_bucket;

/* Lines dropped by every bucket since the start (for the broker's stats). */
extern uint64_t log_lines_suppressed;

/* log_msg() for a line a peer's requests cause. Over the peer's rate the
 * line is dropped and counted; the next line that passes is preceded by
 * "peer N: M log lines suppressed". */
void log_peer(log_bucket *b, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Write the summary of lines still suppressed (when the peer goes away). */
void log_peer_flush(log_bucket *b);

#endif
