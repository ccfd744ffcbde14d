/* The broker's command list (amp.Commands), page by page.
 *
 * A broker with paging answers amp.Commands with `after` (Unicode, "" for
 * the first page) by the commands named > after in byte order, as many as
 * fit in one answer, plus `more` (Boolean) True while more remain; the next
 * page is asked with after = the last name listed. A broker that does not
 * know `after` ignores it and answers without `more`: that answer is the
 * whole list. With `command` (one name) there is one request and no paging.
 *
 * Caps (the peer decides how many pages there are): at most
 * COMMANDS_MAX_ITEMS commands and COMMANDS_MAX_PAGES pages are read; past
 * them the list is cut (info->cut). A page that lists nothing new while
 * saying `more` is a malformed answer (it would never end). An item named
 * <= after (listed already) is left out, so each command comes once. */
#ifndef AMP_CLI_COMMANDS_LIST_H
#define AMP_CLI_COMMANDS_LIST_H

#include <stddef.h>

#include "amp/amp.h"

#define COMMANDS_MAX_ITEMS 10000
#define COMMANDS_MAX_PAGES 1000

/* Called for each item (a box with `command`, `policy`, `providers` and,
 * with a signature, `arguments`, `response`, `errors`; views valid during
 * the call). 0 goes on; non-zero stops the listing, with a message in err. */
typedef int (*commands_item_fn)(const amp_box *item, void *ud, char *err, size_t err_len);

typedef struct commands_info {
    size_t items, pages;
    int cut; /* more commands remained past the caps */
} commands_info;

/* List the commands (all, or `command` only when not NULL) to fn. Returns
 * CLI_OK, or a cli.h status with a message in err, escaped for a terminal
 * and without the "amp-cli VERB: " prefix: CLI_REMOTE an error answer,
 * err "CODE: DESCRIPTION" as call prints a peer's error (OVERLOADED, the
 * broker's listing budget spent, gets a sentence saying so),
 * CLI_TIMEOUT, CLI_CONN, CLI_BAD_INPUT a malformed answer or fn's refusal.
 * Items already passed to fn stay passed when a later page fails. */
int commands_list(amp_client *cl, const char *command, double timeout, commands_item_fn fn,
                  void *ud, commands_info *info, char *err, size_t err_len);

#endif
