/* amp.Commands: the command table listed whole, by pages in name order, or
 * one command; ACL-filtered; within a broker-wide budget of commands
 * examined per second (spec/amp.md 6b.1). */
#include "registry.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "router_internal.h"
#include "signature.h"

/* ---- the budget ------------------------------------------------------------- */

void registry_list_init(router *r)
{
    r->reg.list_tokens = (double)r->cfg.commands_list_budget;
    r->reg.list_stamp = ev_now(r->loop);
}

/* Take `cost` commands from the bucket: 1, or 0 if it cannot pay. A full
 * bucket pays for any request, even one costing more than a second's
 * worth (a table larger than the budget can still be listed): the debt is
 * paid back before the next one, so the rate holds on average. Every
 * request costs at least 1, so a flood on an empty table is bounded too. */
static int charge(router *r, size_t cost)
{
    double rate = (double)r->cfg.commands_list_budget, now = ev_now(r->loop);
    if (now > r->reg.list_stamp) {
        r->reg.list_tokens += (now - r->reg.list_stamp) * rate;
        if (r->reg.list_tokens > rate)
            r->reg.list_tokens = rate;
        r->reg.list_stamp = now;
    }
    double c = cost ? (double)cost : 1.0;
    if (r->reg.list_tokens < c && r->reg.list_tokens < rate)
        return 0;
    r->reg.list_tokens -= c;
    return 1;
}

/* ---- items ------------------------------------------------------------------ */

/* With auth, a peer sees what it may call or serve, nothing else. */
static int visible(router *r, struct peer *p, const struct command *cmd)
{
    return login_allows_any(r, p, ACT_CALL | ACT_REGISTER, cmd->name, cmd->name_len);
}

/* One item: command, policy, providers and, with a signature, its three
 * values as stored (canonical already). */
static void encode_item(amp_buf *out, const struct command *cmd)
{
    char num[AMP_INT_MAX_LEN];
    amp_encode_pair(out, (const uint8_t *)"command", 7, cmd->name, cmd->name_len);
    amp_encode_pair_str(out, "policy", registry_policy_names[cmd->policy]);
    amp_encode_pair(out, (const uint8_t *)"providers", 9, (uint8_t *)num,
                    amp_int_format((int64_t)cmd->n, num));
    if (cmd->sig) {
        amp_pair v[3];
        sig_values(cmd->sig, &v[0], &v[1], &v[2]);
        for (int i = 0; i < 3; i++)
            amp_encode_pair(out, v[i].key, v[i].key_len, v[i].value, v[i].value_len);
    }
    amp_encode_end(out);
}

static void answer_list(router *r, amp_request *req, const amp_buf *list, const char *more)
{
    amp_pair pr[2] = {
        {(const uint8_t *)"commands", 8, list->data ? list->data : (const uint8_t *)"", list->len},
        {(const uint8_t *)"more", 4, (const uint8_t *)more, more ? strlen(more) : 0},
    };
    reply_sent(r, amp_request_answer(req, pr, more ? 2 : 1));
}

/* ---- the whole list --------------------------------------------------------- */

struct whole {
    router *r;
    struct peer *p;
    amp_buf *out;
};

static void list_one(const uint8_t *key, size_t n, void *value, void *ud)
{
    (void)key;
    (void)n;
    struct whole *w = ud;
    if (w->out->len > AMP_MAX_VALUE_LEN)
        return; /* too large already: the answer is TOO_LARGE; skip the ACL checks */
    if (visible(w->r, w->p, value))
        encode_item(w->out, value);
}

/* All of them (`only` NULL), or the one `only` names. */
static void list_whole(router *r, struct peer *p, amp_request *req, const amp_pair *only)
{
    amp_buf list;
    amp_buf_init(&list);
    struct whole w = {r, p, &list};
    if (!only)
        amp_strmap_foreach(&r->reg.commands, list_one, &w);
    else if (only->value_len <= r->cfg.max_command_name) { /* else no command has it */
        struct command *cmd = amp_strmap_get(&r->reg.commands, only->value, only->value_len);
        if (cmd)
            list_one(cmd->name, cmd->name_len, cmd, &w);
    }
    if (list.len > AMP_MAX_VALUE_LEN)
        reply_error(r, req, "TOO_LARGE",
                    "the command list is over 65535 bytes; page through it with `after`");
    else
        answer_list(r, req, &list, NULL);
    amp_buf_free(&list);
}

/* ---- one page --------------------------------------------------------------- */

/* Byte order of names (a prefix first). */
static int name_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

static int by_name(const void *x, const void *y)
{
    const struct command *a = *(struct command *const *)x, *b = *(struct command *const *)y;
    return name_cmp(a->name, a->name_len, b->name, b->name_len);
}

struct page {
    router *r;
    struct peer *p;
    const amp_pair *after;
    struct command **v; /* the visible commands after `after` */
    size_t n;
};

static void collect(const uint8_t *key, size_t n, void *value, void *ud)
{
    struct page *pg = ud;
    if (name_cmp(key, n, pg->after->value, pg->after->value_len) > 0 &&
        visible(pg->r, pg->p, value))
        pg->v[pg->n++] = value;
}

/* The visible commands named after `after`, sorted; as many whole items as
 * fit in a value, and `more` when some are left. The walk is the budget's
 * (one per command); the sort is of what the caller may see, at most the
 * table. */
static void list_page(router *r, struct peer *p, amp_request *req, const amp_pair *after)
{
    struct page pg = {r, p, after, NULL, 0};
    size_t total = r->reg.commands.count;
    if (total && !(pg.v = malloc(total * sizeof *pg.v))) {
        reply_error(r, req, "UNKNOWN", "Unknown Error");
        return;
    }
    if (total) { /* qsort is not to be given NULL, even for nothing */
        amp_strmap_foreach(&r->reg.commands, collect, &pg);
        qsort(pg.v, pg.n, sizeof *pg.v, by_name);
    }
    amp_buf list;
    amp_buf_init(&list);
    size_t i = 0;
    for (; i < pg.n; i++) {
        size_t before = list.len;
        encode_item(&list, pg.v[i]);
        if (list.len > AMP_MAX_VALUE_LEN) {
            list.len = before; /* whole items only */
            break;
        }
    }
    if (i == 0 && pg.n)
        /* only with a max_command_name near 65535: the caller cannot step past it */
        reply_error(r, req, "TOO_LARGE", "the next command's item alone is over 65535 bytes");
    else
        answer_list(r, req, &list, i < pg.n ? "True" : "False");
    amp_buf_free(&list);
    free(pg.v);
}

/* ---- the request ------------------------------------------------------------ */

void registry_list(router *r, struct peer *p, amp_request *req, const amp_box *box)
{
    const amp_pair *only = amp_box_find_str(box, "command"),
                   *after = amp_box_find_str(box, "after");
    if (only && after) {
        reply_error(r, req, "BAD_REQUEST", "amp.Commands takes command or after, not both");
        return;
    }
    /* what it examines: one command, or the whole table */
    if (!charge(r, only ? 1 : r->reg.commands.count)) {
        char d[160];
        snprintf(d, sizeof d,
                 "amp.Commands: the broker examines at most %zu commands per second for "
                 "listings; try again shortly", r->cfg.commands_list_budget);
        reply_error(r, req, "OVERLOADED", d);
        return;
    }
    if (after)
        list_page(r, p, req, after);
    else
        list_whole(r, p, req, only);
}
