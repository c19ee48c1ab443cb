/*
 * clock.h - wall and monotonic time, RFC 3339 formatting, and request ids.
 */
#ifndef EF_BASE_CLOCK_H
#define EF_BASE_CLOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Nanoseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t ef_clock_wall_ns(void);
/* Nanoseconds from an arbitrary start (CLOCK_MONOTONIC), for durations. */
int64_t ef_clock_mono_ns(void);
/* The same clock as ef_clock_mono_ns as of the last timer tick (CLOCK_MONOTONIC_COARSE): behind it
 * by at most a tick (a few milliseconds), and a few nanoseconds to read where the precise one
 * costs ~30 on a virtual machine's clock. For deadlines counted in seconds, never durations. */
int64_t ef_clock_mono_coarse_ns(void);

/* The wall clock as of the last timer tick (CLOCK_REALTIME_COARSE): behind it by at most a tick,
 * a few nanoseconds to read. For what is shown to the second (an HTTP Date header). */
int64_t ef_clock_wall_coarse_ns(void);

/* The wall clock at mono_ns, a reading of ef_clock_mono_ns just taken: mono_ns plus the two
 * clocks' offset, which each thread reads again every 10 ms of monotonic time. Saves a precise
 * read (~16 ns here) on paths that read the monotonic clock anyway (an evaluation's answer); a
 * step of the wall clock shows in it within 10 ms. */
int64_t ef_clock_wall_at(int64_t mono_ns);

/* Initialises a condition variable whose timed waits count on CLOCK_MONOTONIC, so setting the
 * wall clock neither cuts a wait short nor stretches it. Returns pthread_cond_init's result. */
int ef_cond_init_monotonic(pthread_cond_t *cv);

#define EF_RFC3339_MAX 40
/* Formats a UTC time as Flipt's protobuf JSON does: 0, 3, 6 or 9 fraction digits, then 'Z'.
 * out must hold EF_RFC3339_MAX bytes; returns the length written. */
size_t ef_rfc3339_format(int64_t unix_ns, char *out);

/* A duration in nanoseconds as milliseconds in the shortest exact decimal ("0.035788"): the same
 * double a shortest-repr printer would give, without trial formatting. */
size_t ef_millis_format(int64_t ns, char *out); /* out holds 32 bytes */

#define EF_HTTP_DATE_LEN 29
/* An HTTP date (RFC 9110's IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT") for seconds since the
 * Unix epoch, NUL-terminated; returns EF_HTTP_DATE_LEN. Years outside 0-9999 are clamped. */
size_t ef_http_date(int64_t unix_s, char out[EF_HTTP_DATE_LEN + 1]);

#define EF_UUID_LEN 36
/* A random (version 4) UUID in its 36-character text form plus NUL. */
void ef_uuid_v4(char out[EF_UUID_LEN + 1]);
/* A version 7 UUID for wall_ns: 48 bits of Unix milliseconds, 12 bits of the millisecond's
 * fraction (RFC 9562 method 3), 62 random bits; ids made one after another sort in that order. */
void ef_uuid_v7(char out[EF_UUID_LEN + 1], int64_t wall_ns);

#endif
