/*
 * rfc3339.c - the RFC 3339 reader Flipt's engine uses for DATETIME constraints (Rust chrono's
 * DateTime::parse_from_rfc3339), reduced to whole seconds since the Unix epoch because the engine
 * compares timestamps to the second.
 *
 * Accepted: YYYY-MM-DD, then 'T', 't' or a space, then HH:MM:SS, an optional '.' with one or more
 * digits (dropped), then 'Z', 'z' or +HH:MM / -HH:MM. Anything else, a date-only string or a missing
 * offset is rejected. A leap second (:60) reads as :59, as chrono's timestamp does.
 */
#include "eval/model.h"

static bool digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool ef_rfc3339_parse(ef_bytes s, int64_t *secs)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s.p, *end = s.p + s.n;
    int Y, M, D, h, mi, sec;
    if (s.n < 20) return false; /* shortest form: 2006-01-02T15:04:05Z */
    if (!digits(p, 4, &Y) || p[4] != '-' || !digits(p + 5, 2, &M) || p[7] != '-' ||
        !digits(p + 8, 2, &D))
        return false;
    if (p[10] != 'T' && p[10] != 't' && p[10] != ' ') return false;
    if (!digits(p + 11, 2, &h) || p[13] != ':' || !digits(p + 14, 2, &mi) || p[16] != ':' ||
        !digits(p + 17, 2, &sec))
        return false;
    p += 19;
    if (p < end && *p == '.') {
        p++;
        const char *f = p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p == f) return false;
    }
    if (p >= end) return false;
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (end - p < 6 || !digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om))
            return false;
        if (om >= 60) return false;
        off = oh * 3600 + om * 60;
        if (off >= 86400) return false;
        if (*p == '-') off = -off;
        p += 6;
    } else {
        return false;
    }
    if (p != end) return false;
    if (M < 1 || M > 12 || D < 1) return false;
    int dim = mdays[M - 1] + (M == 2 && leap(Y));
    if (D > dim) return false;
    if (h > 23 || mi > 59 || sec > 60) return false;
    if (sec == 60) sec = 59;
    *secs = days_from_civil(Y, M, D) * 86400 + h * 3600 + mi * 60 + sec - off;
    return true;
}
