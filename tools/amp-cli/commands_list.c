/* The broker's command list, page by page (commands_list.h). */
#include "commands_list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "signature.h"
#include "term_text.h"

struct page {
    commands_item_fn fn;
    void *ud;
    commands_info *info;
    const uint8_t *after; /* names <= after were listed on earlier pages */
    size_t after_len;
    int paged;
    const uint8_t *last; /* the page's last new name (a view into the answer) */
    size_t last_len;
    size_t fresh; /* new items on this page */
    char *err;
    size_t err_len;
};

/* Byte order, a prefix first (as the broker sorts). */
static int name_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

enum { STOP_CUT = 2 };

static int one_item(const amp_box *item, void *ud)
{
    struct page *pg = ud;
    const amp_pair *name = amp_box_find_str(item, "command");
    if (!name) {
        snprintf(pg->err, pg->err_len, "amp.Commands: an item without 'command'");
        return -1;
    }
    if (pg->paged && pg->after &&
        name_cmp(name->value, name->value_len, pg->after, pg->after_len) <= 0)
        return 0; /* listed already */
    if (pg->info->items == COMMANDS_MAX_ITEMS) {
        pg->info->cut = 1;
        return STOP_CUT;
    }
    if (pg->fn(item, pg->ud, pg->err, pg->err_len))
        return -1;
    pg->info->items++;
    pg->fresh++;
    pg->last = name->value;
    pg->last_len = name->value_len;
    return 0;
}

/* `more`: absent or False 0, True 1, -1 anything else. */
static int more_of(const amp_box *box)
{
    const amp_pair *m = amp_box_find_str(box, "more");
    if (!m || (m->value_len == 5 && !memcmp(m->value, "False", 5)))
        return 0;
    return m->value_len == 4 && !memcmp(m->value, "True", 4) ? 1 : -1;
}

static int call_failed(amp_client *cl, amp_err r, const amp_reply *reply, double timeout,
                       char *err, size_t err_len)
{
    if (r == AMP_E_REMOTE) {
        const amp_pair *c = reply->error_code, *d = reply->error_description;
        char *code = term_dup(c->value, c->value_len, TERM_LINE);
        char *desc = term_dup(d->value, d->value_len, TERM_LINE);
        if (c->value_len == 10 && !memcmp(c->value, "OVERLOADED", 10))
            snprintf(err, err_len,
                     "OVERLOADED: the broker is too busy to list its commands now (%s); "
                     "try again later",
                     desc ? desc : "");
        else
            snprintf(err, err_len, "%s: %s", code ? code : "", desc ? desc : "");
        free(code);
        free(desc);
        return CLI_REMOTE;
    }
    if (r == AMP_E_TIMEOUT) {
        snprintf(err, err_len, "amp.Commands timed out after %g s", timeout);
        return CLI_TIMEOUT;
    }
    const char *why = amp_client_error_text(cl);
    char *safe = term_dup((const uint8_t *)why, strlen(why), TERM_LINE);
    snprintf(err, err_len, "amp.Commands: %s%s%s", amp_strerror(r), *why ? ": " : "",
             safe ? safe : "");
    free(safe);
    return r == AMP_E_CLOSED ? CLI_CONN : CLI_BAD_INPUT;
}

int commands_list(amp_client *cl, const char *command, double timeout, commands_item_fn fn,
                  void *ud, commands_info *info, char *err, size_t err_len)
{
    memset(info, 0, sizeof *info);
    if (err_len)
        *err = 0;
    uint8_t *after = NULL; /* the last name listed, owned */
    size_t after_len = 0;
    int status = CLI_OK;
    for (;;) {
        if (info->pages == COMMANDS_MAX_PAGES) {
            info->cut = 1;
            break;
        }
        amp_pair arg = command ? (amp_pair){(const uint8_t *)"command", 7,
                                            (const uint8_t *)command, strlen(command)}
                               : (amp_pair){(const uint8_t *)"after", 5,
                                            after ? after : (const uint8_t *)"", after_len};
        amp_reply *reply = NULL;
        amp_err r = amp_client_call(cl, "amp.Commands", &arg, 1, timeout, &reply);
        if (r != AMP_OK) {
            status = call_failed(cl, r, reply, timeout, err, err_len);
            amp_reply_free(reply);
            break;
        }
        info->pages++;
        struct page pg = {fn, ud, info, after, after_len, !command, NULL, 0, 0, err, err_len};
        const amp_pair *list = amp_box_find_str(&reply->box, "commands");
        int more = more_of(&reply->box), stop = 0;
        char why[128];
        if (!list) {
            snprintf(err, err_len, "amp.Commands: no 'commands' in the answer (not a broker?)");
            status = CLI_BAD_INPUT;
        } else if (more < 0) {
            snprintf(err, err_len, "amp.Commands: 'more' is not a Boolean");
            status = CLI_BAD_INPUT;
        } else if ((stop = amplist_foreach(list->value, list->value_len, one_item, &pg, why,
                                           sizeof why)) < 0) {
            if (!*err) /* else fn or one_item said why */
                snprintf(err, err_len, "amp.Commands: %s", why);
            status = CLI_BAD_INPUT;
        } else if (stop == 0 && more && !command && pg.fresh == 0) {
            snprintf(err, err_len, "amp.Commands: a page with nothing new that says 'more'");
            status = CLI_BAD_INPUT;
        }
        if (status == CLI_OK && stop == 0 && more && !command) {
            uint8_t *next = malloc(pg.last_len ? pg.last_len : 1);
            if (!next) {
                snprintf(err, err_len, "out of memory");
                status = CLI_BAD_INPUT;
            } else {
                memcpy(next, pg.last, pg.last_len);
                free(after);
                after = next;
                after_len = pg.last_len;
            }
        }
        amp_reply_free(reply);
        if (status != CLI_OK || stop || !more || command)
            break;
    }
    free(after);
    return status;
}
