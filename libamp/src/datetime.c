/* DateTime values: YYYY-MM-DDTHH:MM:SS.ffffff+HH:MM, always 32 bytes. */
#include <string.h>

#include "amp/value.h"

static int num(const uint8_t *p, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

static int valid(const amp_datetime *t)
{
    if (t->year < 1 || t->year > 9999 || t->month < 1 || t->month > 12)
        return 0;
    if (t->day < 1 || t->day > days_in_month(t->year, t->month))
        return 0;
    if (t->hour < 0 || t->hour > 23 || t->minute < 0 || t->minute > 59 || t->second < 0 ||
        t->second > 59 || t->microsecond < 0 || t->microsecond > 999999)
        return 0;
    return t->offset_minutes > -1440 && t->offset_minutes < 1440;
}

amp_err amp_datetime_parse(const uint8_t *p, size_t n, amp_datetime *out)
{
    if (!p || n != AMP_DATETIME_LEN)
        return AMP_E_BAD_VALUE;
    static const struct {
        unsigned char pos;
        char c;
    } seps[] = {{4, '-'}, {7, '-'}, {10, 'T'}, {13, ':'}, {16, ':'}, {19, '.'}, {29, ':'}};
    for (size_t i = 0; i < sizeof seps / sizeof seps[0]; i++)
        if (p[seps[i].pos] != seps[i].c)
            return AMP_E_BAD_VALUE;
    if (p[26] != '+' && p[26] != '-')
        return AMP_E_BAD_VALUE;
    amp_datetime t;
    int oh, om;
    if (!num(p, 4, &t.year) || !num(p + 5, 2, &t.month) || !num(p + 8, 2, &t.day) ||
        !num(p + 11, 2, &t.hour) || !num(p + 14, 2, &t.minute) || !num(p + 17, 2, &t.second) ||
        !num(p + 20, 6, &t.microsecond) || !num(p + 27, 2, &oh) || !num(p + 30, 2, &om))
        return AMP_E_BAD_VALUE;
    if (om > 59)
        return AMP_E_RANGE;
    t.offset_minutes = (p[26] == '-' ? -1 : 1) * (oh * 60 + om);
    if (!valid(&t))
        return AMP_E_RANGE;
    if (out)
        *out = t;
    return AMP_OK;
}

static void put2(char *w, int v)
{
    w[0] = (char)('0' + v / 10);
    w[1] = (char)('0' + v % 10);
}

amp_err amp_datetime_format(const amp_datetime *t, char *out)
{
    if (!t || !out)
        return AMP_E_INVALID;
    if (!valid(t))
        return AMP_E_RANGE;
    char w[AMP_DATETIME_LEN];
    put2(w, t->year / 100);
    put2(w + 2, t->year % 100);
    w[4] = '-';
    put2(w + 5, t->month);
    w[7] = '-';
    put2(w + 8, t->day);
    w[10] = 'T';
    put2(w + 11, t->hour);
    w[13] = ':';
    put2(w + 14, t->minute);
    w[16] = ':';
    put2(w + 17, t->second);
    w[19] = '.';
    put2(w + 20, t->microsecond / 10000);
    put2(w + 22, t->microsecond / 100 % 100);
    put2(w + 24, t->microsecond % 100);
    /* Twisted writes '+' only for offsets > 0, so UTC is "-00:00" */
    int off = t->offset_minutes;
    w[26] = off > 0 ? '+' : '-';
    if (off < 0)
        off = -off;
    put2(w + 27, off / 60);
    w[29] = ':';
    put2(w + 30, off % 60);
    memcpy(out, w, AMP_DATETIME_LEN);
    return AMP_OK;
}
