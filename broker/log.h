/* Leveled logging to stderr. */
#ifndef AMP_BROKER_LOG_H
#define AMP_BROKER_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern enum log_level log_threshold;

/* "error", "warn", "info", "debug"; -1 if unknown. */
int log_level_parse(const char *name);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
