/* amp-cli serve: its usage text (long enough for a file of its own). */
#ifndef AMP_CLI_SERVE_USAGE_H
#define AMP_CLI_SERVE_USAGE_H

#include <stdio.h>

/* The usage on `out`; stop_grace: the seconds children get on a signal. */
void serve_usage(FILE *out, double stop_grace);

#endif
