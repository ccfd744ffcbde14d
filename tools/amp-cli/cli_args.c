/* amp-cli: option values shared by the verbs. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int cli_positive(const char *verb, const char *option, const char *arg, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    /* the whole argument, finite and above 0 ("5x", "nan", "inf" refused) */
    if (end == arg || *end || errno || !(v > 0) || v > 1e9) {
        fprintf(stderr, "amp-cli %s: --%s needs a positive number, not '%s'\n", verb, option,
                arg);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_positive_count(const char *verb, const char *option, const char *arg, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end || errno || v <= 0) {
        fprintf(stderr, "amp-cli %s: --%s needs a positive whole number, not '%s'\n", verb,
                option, arg);
        return -1;
    }
    *out = v;
    return 0;
}
