/* amp-cli shell: libedit on the terminal (see shell_edit.h). */
#include "shell_edit.h"

#include <errno.h>
#include <histedit.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

#include "term_text.h"

struct shell_edit {
    EditLine *el;
    History *hist;
    FILE *out;
    char *prompt, *history_path;
    shell_wait_fn wait;
    shell_complete_fn complete;
    void *ud;
    int reading;     /* inside el_gets(): a prompt and a line are on screen */
    int interrupted; /* Ctrl-C while reading: the line is dropped */
};

int shell_matches_add(shell_matches *m, const char *s, size_t n)
{
    if (m->count == SHELL_MATCHES_MAX)
        return 0;
    if (m->count == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        char **items = realloc(m->items, cap * sizeof *items);
        if (!items)
            return -1;
        m->items = items;
        m->cap = cap;
    }
    char *copy = strndup(s, n);
    if (!copy)
        return -1;
    m->items[m->count++] = copy;
    return 0;
}

void shell_matches_free(shell_matches *m)
{
    for (size_t i = 0; i < m->count; i++)
        free(m->items[i]);
    free(m->items);
    memset(m, 0, sizeof *m);
}

static shell_edit *of(EditLine *el)
{
    void *ed = NULL;
    el_get(el, EL_CLIENTDATA, &ed);
    return ed;
}

static char *prompt_of(EditLine *el)
{
    return of(el)->prompt;
}

/* The editor's source of keys: waits through the owner (who keeps the
 * connection going meanwhile), then decodes one character of the locale's
 * encoding. Returns 1 with *wc, 0 to end the line reading (EOF), -1 on a
 * read error. */
static int get_key(EditLine *el, wchar_t *wc)
{
    shell_edit *ed = of(el);
    mbstate_t st;
    memset(&st, 0, sizeof st);
    for (;;) {
        int w = ed->wait(ed->ud);
        if (w == SHELL_IN_RESIZED) {
            el_resize(el);
            continue;
        }
        if (w == SHELL_IN_END)
            return 0;
        if (w == SHELL_IN_INTERRUPT) {
            ed->interrupted = 1;
            *wc = L'\n'; /* ends el_gets(); the line is then dropped */
            return 1;
        }
        char c;
        ssize_t r = read(STDIN_FILENO, &c, 1);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return r == 0 ? 0 : -1;
        size_t k = mbrtowc(wc, &c, 1, &st);
        if (k == (size_t)-2)
            continue; /* more bytes of this character to come */
        if (k == (size_t)-1) {
            *wc = (unsigned char)c; /* not in the locale's encoding: as is */
            memset(&st, 0, sizeof st);
        }
        return 1;
    }
}

/* Put `s` into the line at the cursor. */
static void insert(EditLine *el, const char *s)
{
    if (*s)
        el_insertstr(el, s);
}

/* Print the candidates below the line, in columns (escaped as table cells,
 * though shell_complete offers no name that needs it). */
static void list_matches(shell_edit *ed, const shell_matches *m)
{
    size_t width = 0;
    for (size_t i = 0; i < m->count; i++) {
        char *shown = term_dup((const uint8_t *)m->items[i], strlen(m->items[i]), TERM_CELL);
        size_t w = shown ? term_width(shown) : 0;
        if (w > width)
            width = w;
        free(shown);
    }
    width += 2;
    int cols = 80;
    el_get(ed->el, EL_GETTC, "co", &cols);
    size_t per_row = cols > 0 && (size_t)cols > width ? (size_t)cols / width : 1;
    fputc('\n', ed->out);
    for (size_t i = 0; i < m->count; i++) {
        char *shown = term_dup((const uint8_t *)m->items[i], strlen(m->items[i]), TERM_CELL);
        if (!shown)
            continue;
        fputs(shown, ed->out);
        if ((i + 1) % per_row == 0 || i + 1 == m->count)
            fputc('\n', ed->out);
        else
            fprintf(ed->out, "%*s", (int)(width - term_width(shown)), "");
        free(shown);
    }
    fflush(ed->out);
}

/* Tab: complete the word before the cursor as far as every candidate
 * agrees; list the candidates when that adds nothing. */
static unsigned char complete_key(EditLine *el, int ch)
{
    (void)ch;
    shell_edit *ed = of(el);
    const LineInfo *li = el_line(el);
    shell_matches m;
    memset(&m, 0, sizeof m);
    m.suffix = " ";
    const char *word = "";
    ed->complete(ed->ud, li->buffer, (size_t)(li->cursor - li->buffer), &word, &m);
    unsigned char result = CC_REFRESH_BEEP;
    if (m.count > 0) {
        size_t common = strlen(m.items[0]), wl = strlen(word);
        for (size_t i = 1; i < m.count; i++) {
            size_t k = 0;
            while (k < common && m.items[i][k] == m.items[0][k])
                k++;
            common = k;
        }
        if (m.count == 1) {
            insert(el, m.items[0] + (wl < common ? wl : common));
            insert(el, m.suffix);
            result = CC_REFRESH;
        } else if (common > wl) {
            char *part = strndup(m.items[0] + wl, common - wl);
            if (part)
                insert(el, part);
            free(part);
            result = CC_REFRESH;
        } else {
            list_matches(ed, &m);
            result = CC_REDISPLAY;
        }
    }
    shell_matches_free(&m);
    return result;
}

shell_edit *shell_edit_open(const char *prompt, const char *history_file, void *out_stream,
                            shell_wait_fn wait, shell_complete_fn complete, void *ud)
{
    shell_edit *ed = calloc(1, sizeof *ed);
    if (!ed)
        return NULL;
    ed->out = out_stream;
    ed->wait = wait;
    ed->complete = complete;
    ed->ud = ud;
    ed->prompt = strdup(prompt);
    ed->history_path = history_file ? strdup(history_file) : NULL;
    ed->el = el_init("amp-cli", stdin, ed->out, stderr);
    ed->hist = history_init();
    if (!ed->prompt || (history_file && !ed->history_path) || !ed->el || !ed->hist) {
        shell_edit_close(ed);
        return NULL;
    }
    HistEvent ev;
    history(ed->hist, &ev, H_SETSIZE, SHELL_HISTORY_MAX);
    history(ed->hist, &ev, H_SETUNIQUE, 1);
    if (ed->history_path)
        history(ed->hist, &ev, H_LOAD, ed->history_path); /* none yet is fine */
    el_set(ed->el, EL_CLIENTDATA, ed);
    el_set(ed->el, EL_EDITOR, "emacs");
    el_set(ed->el, EL_PROMPT, prompt_of);
    el_set(ed->el, EL_HIST, history, ed->hist);
    el_set(ed->el, EL_GETCFN, get_key);
    /* the wide form: the narrow one copies the two strings and never frees
     * them (a leak libedit's own source notes) */
    el_wset(ed->el, EL_ADDFN, L"amp-complete", L"complete a command or argument name",
            complete_key);
    el_set(ed->el, EL_BIND, "^I", "amp-complete", NULL);
    el_source(ed->el, NULL); /* ~/.editrc, as other libedit programs */
    return ed;
}

const char *shell_edit_read(shell_edit *ed)
{
    int n = 0;
    ed->interrupted = 0;
    ed->reading = 1;
    const char *line = el_gets(ed->el, &n);
    ed->reading = 0;
    if (ed->interrupted)
        return "";
    if (!line || n <= 0)
        return NULL;
    /* el_gets keeps the newline; the buffer is the editor's until next time */
    char *l = (char *)line;
    if (n > 0 && l[n - 1] == '\n')
        l[n - 1] = 0;
    return l;
}

void shell_edit_remember(shell_edit *ed, const char *line)
{
    HistEvent ev;
    if (*line)
        history(ed->hist, &ev, H_ENTER, line);
}

void shell_edit_pause(shell_edit *ed)
{
    if (!ed || !ed->reading)
        return;
    /* up to the prompt's first row, then clear to the end of the screen */
    const LineInfo *li = el_line(ed->el);
    int cols = 80;
    el_get(ed->el, EL_GETTC, "co", &cols);
    size_t at = strlen(ed->prompt) + (size_t)(li->cursor - li->buffer);
    size_t up = cols > 0 ? at / (size_t)cols : 0;
    if (up)
        fprintf(ed->out, "\033[%zuA", up);
    fputs("\r\033[J", ed->out);
    fflush(ed->out);
}

void shell_edit_resume(shell_edit *ed)
{
    if (!ed || !ed->reading)
        return;
    fflush(stdout);
    fflush(stderr);
    el_set(ed->el, EL_REFRESH);
}

void shell_edit_leave(shell_edit *ed)
{
    if (!ed || !ed->reading)
        return;
    el_set(ed->el, EL_PREP_TERM, 0);
    fputc('\n', ed->out);
    fflush(ed->out);
}

void shell_edit_enter(shell_edit *ed)
{
    if (!ed || !ed->reading)
        return;
    el_set(ed->el, EL_PREP_TERM, 1);
    el_set(ed->el, EL_REFRESH);
}

/* Write the history to a new file beside it (mode 0600 from the start),
 * then put it in place: a crash or a full disk leaves the old one. */
/* Where the history goes: through a symbolic link the user owns (a dotfile
 * kept elsewhere) to its target, so the link stays; a link someone else
 * planted is replaced, never followed. Returns a malloc'd path. */
static char *history_target(const char *path)
{
    struct stat st;
    char *real;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && st.st_uid == geteuid() &&
        (real = realpath(path, NULL)))
        return real;
    return strdup(path);
}

static int save_history(shell_edit *ed)
{
    char *target = history_target(ed->history_path);
    size_t n = target ? strlen(target) : 0;
    char *tmp = target ? malloc(n + 8) : NULL;
    if (!tmp) {
        free(target);
        return -1;
    }
    memcpy(tmp, target, n);
    memcpy(tmp + n, ".XXXXXX", 8);
    int fd = mkstemp(tmp), status = -1;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    HistEvent ev;
    if (f && fchmod(fd, S_IRUSR | S_IWUSR) == 0 && history(ed->hist, &ev, H_SAVE_FP, f) >= 0 &&
        fflush(f) == 0 && fsync(fd) == 0)
        status = 0;
    if (f)
        status |= fclose(f);
    else if (fd >= 0)
        close(fd);
    if (status == 0 && rename(tmp, target) != 0)
        status = -1;
    if (status != 0) {
        fprintf(stderr, "amp-cli shell: cannot save the history in %s: %s\n", target,
                strerror(errno));
        if (fd >= 0)
            unlink(tmp);
    }
    free(tmp);
    free(target);
    return status;
}

int shell_edit_close(shell_edit *ed)
{
    if (!ed)
        return 0;
    int status = 0;
    if (ed->history_path && ed->hist)
        status = save_history(ed);
    if (ed->el)
        el_end(ed->el);
    if (ed->hist)
        history_end(ed->hist);
    free(ed->prompt);
    free(ed->history_path);
    free(ed);
    return status;
}
