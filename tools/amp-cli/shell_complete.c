/* amp-cli shell: the command cache and Tab completion (shell_complete.h). */
#include "shell_complete.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands_list.h"
#include "shell_words.h"
#include "term_text.h"

const char *const shell_keywords[] = {"call", "commands", "exit", "help", "pub",
                                      "quit", "sub",      "unsub", NULL};

static void cmd_free(shell_cmd *c)
{
    signature_free(&c->sig);
    free(c->notation);
}

void shell_cmds_free(shell_cmds *c)
{
    for (size_t i = 0; i < c->count; i++)
        cmd_free(&c->items[i]);
    free(c->items);
    memset(c, 0, sizeof *c);
}

/* One item of the answer's "commands" AmpList into the cache being made.
 * A signature the shell cannot read leaves the command without one
 * (completion then offers no argument names; calls still work). */
static int take_item(const amp_box *item, void *ud)
{
    shell_cmds *fresh = ud;
    const amp_pair *name = amp_box_find_str(item, "command");
    if (!name || fresh->count == SHELL_CMDS_MAX)
        return 0;
    shell_cmd *items = realloc(fresh->items, (fresh->count + 1) * sizeof *items);
    if (!items)
        return 1; /* out of memory */
    fresh->items = items;
    shell_cmd *c = &items[fresh->count];
    memset(c, 0, sizeof *c);
    char err[256];
    if (signature_from_item(item, &c->sig, err, sizeof err) != 0) {
        c->sig.command = strndup((const char *)name->value, name->value_len);
        if (!c->sig.command)
            return 1;
    }
    c->notation = signature_format(&c->sig);
    if (!c->notation) {
        cmd_free(c);
        return 1;
    }
    fresh->count++;
    return 0;
}

static int take_page_item(const amp_box *item, void *ud, char *err, size_t err_len)
{
    if (take_item(item, ud) == 0)
        return 0;
    snprintf(err, err_len, "amp.Commands: out of memory");
    return 1;
}

int shell_cmds_refresh(shell_cmds *c, amp_client *cl, double timeout, char *err, size_t err_len)
{
    shell_cmds fresh = {NULL, 0, 1, 0};
    commands_info info;
    int status = commands_list(cl, NULL, timeout, take_page_item, &fresh, &info, err, err_len);
    if (status != 0) {
        shell_cmds_free(&fresh);
        return status;
    }
    fresh.cut = info.cut;
    shell_cmds_free(c);
    *c = fresh;
    return 0;
}

const shell_cmd *shell_cmds_find(const shell_cmds *c, const char *name)
{
    for (size_t i = 0; i < c->count; i++)
        if (!strcmp(c->items[i].sig.command, name))
            return &c->items[i];
    return NULL;
}

static int has_prefix(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

static int is_keyword(const char *w)
{
    for (const char *const *k = shell_keywords; *k; k++)
        if (!strcmp(*k, w))
            return 1;
    return 0;
}

/* A name that would need escaping (controls, bytes that are not UTF-8, code
 * points of unknown width: term_text.h) is not offered: put into the line
 * the editor would echo it raw, and it could not be typed back anyway. */
static void add_name(shell_matches *out, const shell_cmd *cmd, const char *word)
{
    const char *name = cmd->sig.command;
    if (has_prefix(name, word) && term_is_plain((const uint8_t *)name, strlen(name), TERM_CELL))
        shell_matches_add(out, cmd->sig.command, strlen(cmd->sig.command));
}

/* The first word: keywords and command names. */
static void complete_first(shell_cmds *c, const char *word, shell_matches *out)
{
    for (const char *const *k = shell_keywords; *k; k++)
        if (has_prefix(*k, word))
            shell_matches_add(out, *k, strlen(*k));
    for (size_t i = 0; i < c->count; i++)
        add_name(out, &c->items[i], word);
}

/* Was argument `name` given among words[from..to)? ("name=..." or
 * "name:type=...") */
static int given(char **words, int from, int to, const char *name)
{
    size_t n = strlen(name);
    for (int i = from; i < to; i++)
        if (!strncmp(words[i], name, n) && (words[i][n] == '=' || words[i][n] == ':'))
            return 1;
    return 0;
}

/* A word after a command: its argument names not yet given, as "name=". */
static void complete_arg(const shell_cmd *cmd, char **words, int from, int to, const char *word,
                         shell_matches *out)
{
    if (!cmd || !cmd->sig.has_signature || strchr(word, '=') || strchr(word, ':'))
        return;
    for (size_t i = 0; i < cmd->sig.nargs; i++) {
        const char *a = cmd->sig.args[i].name;
        if (!has_prefix(a, word) || given(words, from, to, a))
            continue;
        size_t n = strlen(a);
        char s[SIG_MAX_NAME_LEN + 2];
        memcpy(s, a, n); /* names are at most SIG_MAX_NAME_LEN bytes */
        memcpy(s + n, "=", 2);
        shell_matches_add(out, s, n + 1);
    }
    out->suffix = "";
}

/* A command from the cache, asking the broker again if it is not there
 * (registered since the cache was filled). */
static const shell_cmd *find_fresh(shell_cmds *c, const char *name, void (*refresh)(void *),
                                   void *ud)
{
    const shell_cmd *cmd = c->loaded ? shell_cmds_find(c, name) : NULL;
    if (!cmd && refresh) {
        refresh(ud);
        cmd = shell_cmds_find(c, name);
    }
    return cmd;
}

void shell_complete(shell_cmds *c, const char *before, size_t n, const char **word,
                    shell_matches *out, void (*refresh)(void *), void *ud)
{
    static char current[SHELL_LINE_MAX + 1];
    char err[128];
    shell_words w;
    *word = "";
    if (shell_words_split(before, n, 1, &w, err, sizeof err) != 0)
        return;
    int done = w.last_open ? w.count - 1 : w.count; /* words complete before this one */
    snprintf(current, sizeof current, "%s", w.last_open ? w.argv[w.count - 1] : "");
    *word = current;
    if (done == 0) {
        if (!c->loaded && refresh)
            refresh(ud);
        complete_first(c, current, out);
        if (out->count == 0 && c->loaded && refresh) {
            refresh(ud); /* perhaps a command registered since */
            complete_first(c, current, out);
        }
    } else if (!strcmp(w.argv[0], "help") || !strcmp(w.argv[0], "call")) {
        if (!c->loaded && refresh)
            refresh(ud);
        if (done == 1) /* 'call X', 'help X' */
            for (size_t i = 0; i < c->count; i++)
                add_name(out, &c->items[i], current);
        if (done > 1 && !strcmp(w.argv[0], "call"))
            complete_arg(find_fresh(c, w.argv[1], refresh, ud), w.argv, 2, done, current, out);
    } else if (!is_keyword(w.argv[0])) {
        complete_arg(find_fresh(c, w.argv[0], refresh, ud), w.argv, 1, done, current, out);
    }
    shell_words_free(&w);
}
