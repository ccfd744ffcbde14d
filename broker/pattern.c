#include "pattern.h"

#include <string.h>

/* Next token of x[*pos..n): sets *t, *tn; returns 0 when none is left. */
static int token(const uint8_t *x, size_t n, size_t *pos, const uint8_t **t, size_t *tn)
{
    if (*pos > n)
        return 0;
    const uint8_t *dot = memchr(x + *pos, '.', n - *pos);
    size_t end = dot ? (size_t)(dot - x) : n;
    *t = x + *pos;
    *tn = end - *pos;
    *pos = end + 1;
    return 1;
}

int pattern_check(const uint8_t *p, size_t n, const char **why)
{
    if (n == 0) {
        *why = "empty pattern";
        return -1;
    }
    size_t pos = 0;
    const uint8_t *t;
    size_t tn;
    while (token(p, n, &pos, &t, &tn)) {
        if (tn == 0) {
            *why = "empty token (two dots, or a dot at an end)";
            return -1;
        }
        if (memchr(t, '*', tn) && tn != 1) {
            *why = "'*' must be a whole token";
            return -1;
        }
        if (memchr(t, '>', tn) && (tn != 1 || pos <= n)) {
            *why = "'>' must be the whole last token";
            return -1;
        }
    }
    return 0;
}

size_t pattern_tokens(const uint8_t *p, size_t n)
{
    size_t dots = 0;
    for (const uint8_t *d = p, *end = p + n; (d = memchr(d, '.', (size_t)(end - d))); d++)
        dots++;
    return dots + 1;
}

int pattern_match(const uint8_t *p, size_t pn, const uint8_t *s, size_t sn)
{
    size_t pp = 0, sp = 0;
    const uint8_t *pt, *st;
    size_t ptn, stn;
    for (;;) {
        int hp = token(p, pn, &pp, &pt, &ptn);
        int hs = token(s, sn, &sp, &st, &stn);
        if (!hp)
            return !hs;
        if (ptn == 1 && pt[0] == '>')
            return hs; /* one or more remaining tokens */
        if (!hs)
            return 0;
        if (ptn == 1 && pt[0] == '*')
            continue;
        if (ptn != stn || memcmp(pt, st, ptn))
            return 0;
    }
}

static int is_tok(const uint8_t *t, size_t n, char c)
{
    return n == 1 && t[0] == (uint8_t)c;
}

int pattern_covers(const uint8_t *p, size_t pn, const uint8_t *sub, size_t sn)
{
    size_t pp = 0, sp = 0;
    const uint8_t *pt, *st;
    size_t ptn, stn;
    for (;;) {
        int hp = token(p, pn, &pp, &pt, &ptn);
        int hs = token(sub, sn, &sp, &st, &stn);
        if (!hp)
            return !hs;
        if (is_tok(pt, ptn, '>'))
            return hs; /* covers one or more tokens, wildcards included */
        if (!hs || is_tok(st, stn, '>'))
            return 0; /* sub can be longer than p allows */
        if (is_tok(pt, ptn, '*'))
            continue; /* covers any single token, '*' included */
        if (is_tok(st, stn, '*') || ptn != stn || memcmp(pt, st, ptn))
            return 0;
    }
}

int pattern_overlaps(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t ap = 0, bp = 0;
    const uint8_t *at, *bt;
    size_t atn, btn;
    for (;;) {
        int ha = token(a, an, &ap, &at, &atn);
        int hb = token(b, bn, &bp, &bt, &btn);
        if (!ha || !hb)
            return !ha && !hb;
        if (is_tok(at, atn, '>') || is_tok(bt, btn, '>'))
            return 1;
        if (is_tok(at, atn, '*') || is_tok(bt, btn, '*'))
            continue;
        if (atn != btn || memcmp(at, bt, atn))
            return 0;
    }
}
