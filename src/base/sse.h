/*
 * sse.h - a bounded, incremental reader of server-sent events (text/event-stream), shared by the
 * replica's follower (src/sync/follower.c) and libedgeflag's stream (src/client/replica.c).
 *
 * Bytes are fed as they arrive from the network, in chunks of any size; each complete event is
 * handed to a callback with its name and its data (data lines joined by '\n'). Lines may end in
 * LF, CRLF or CR. Fields other than `event` and `data` (id, retry, comments) are skipped.
 *
 * Every byte held is bounded: an event's data may not exceed the limit of its event type (a
 * replication dump may be large, a heartbeat never is), and any other line (comment, id, event
 * name) may not exceed max_line. Data that comes before its event's name is held to the default
 * limit (edgeflag's streams always name the event first). Past a bound the reader stops with EF_SSE_TOO_LONG and a reason:
 * the caller treats that as a protocol error (drop the connection, back off). The reader never
 * holds more than the current event's data plus a few dozen bytes, and must never read past the
 * chunk it is given or call back with a partial event.
 */
#ifndef EF_BASE_SSE_H
#define EF_BASE_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* The data limit of one event type. */
typedef struct ef_sse_limit {
    const char *event;
    size_t max_data;
} ef_sse_limit;

typedef struct ef_sse ef_sse;

/* Called for each complete event with a name or data. `event` is NUL-terminated ("" when the event
 * had no name); the data is in p->data (data, len; NUL-terminated). Return 0 to go on, anything
 * else to stop: ef_sse_feed then returns EF_SSE_STOPPED. The data buffer is cleared afterwards. */
typedef int (*ef_sse_event_fn)(void *ud, const char *event, ef_sse *p);

typedef struct ef_sse_config {
    const ef_sse_limit *limits; /* per event type; an event not listed gets default_max_data */
    size_t nlimits;
    size_t default_max_data;
    size_t max_line;            /* any line that is not a data line */
    ef_sse_event_fn on_event;
    void *ud;
} ef_sse_config;

enum {
    EF_SSE_OK = 0,
    EF_SSE_STOPPED = 1,    /* the callback asked to stop */
    EF_SSE_TOO_LONG = -1,  /* a line or an event past its limit (p->why says which) */
    EF_SSE_NOMEM = -2,
};

#define EF_SSE_EVENT_MAX 31 /* longer event names are unknown events: skipped, never dispatched */

struct ef_sse {
    ef_sse_config cfg;
    ef_buf *data;         /* borrowed from the caller, who owns (and frees) it */
    /* the line being read */
    uint8_t state;
    uint8_t kind;
    bool after_cr;        /* a CR ended the last line: a following LF belongs to it */
    char field[8];
    size_t field_len;
    size_t line_len;      /* bytes of a non-data line so far */
    /* the event being read */
    bool has_data;
    bool event_unknown;   /* its name was longer than EF_SSE_EVENT_MAX */
    char event[EF_SSE_EVENT_MAX + 1];
    size_t event_len;
    size_t max_data;      /* the limit for this event's data */
    uint64_t lines;       /* complete lines read since the last reset */
    uint64_t events;      /* events dispatched since the last reset */
    char why[160];        /* set with EF_SSE_TOO_LONG / EF_SSE_NOMEM */
};

/* data is the caller's buffer that receives each event's data. */
void ef_sse_init(ef_sse *p, ef_buf *data, const ef_sse_config *cfg);
/* Forgets any partial line or event (a new connection). */
void ef_sse_reset(ef_sse *p);
/* Reads n bytes. Returns EF_SSE_OK, EF_SSE_STOPPED, EF_SSE_TOO_LONG or EF_SSE_NOMEM; after an
 * error the reader must be reset before it is fed again. */
int ef_sse_feed(ef_sse *p, const char *buf, size_t n);
/* The data limit that applies to an event of this name. */
size_t ef_sse_limit_of(const ef_sse *p, const char *event);

#endif
