/*
 * clock.c - time and ids (see clock.h). getrandom never blocks after boot; if it fails, the UUID
 * falls back to time and address entropy rather than failing a request.
 */
#include "base/clock.h"

#include <stdio.h>
#include <sys/random.h>
#include <time.h>

int64_t ef_clock_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ef_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

size_t ef_rfc3339_format(int64_t unix_ns, char *out)
{
    int64_t secs = unix_ns / 1000000000;
    int64_t nanos = unix_ns % 1000000000;
    if (nanos < 0) {
        nanos += 1000000000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, EF_RFC3339_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
    if (nanos == 0) {
    } else if (nanos % 1000000 == 0) {
        n += (size_t)snprintf(out + n, EF_RFC3339_MAX - n, ".%03d", (int)(nanos / 1000000));
    } else if (nanos % 1000 == 0) {
        n += (size_t)snprintf(out + n, EF_RFC3339_MAX - n, ".%06d", (int)(nanos / 1000));
    } else {
        n += (size_t)snprintf(out + n, EF_RFC3339_MAX - n, ".%09d", (int)nanos);
    }
    out[n++] = 'Z';
    out[n] = '\0';
    return n;
}

void ef_uuid_v4(char out[EF_UUID_LEN + 1])
{
    unsigned char r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        uint64_t x = (uint64_t)ef_clock_mono_ns() ^ ((uint64_t)(uintptr_t)out << 17);
        for (int i = 0; i < 16; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            r[i] = (unsigned char)x;
        }
    }
    r[6] = (unsigned char)((r[6] & 0x0F) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3F) | 0x80);
    snprintf(out, EF_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
}
