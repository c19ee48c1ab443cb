/*
 * sse.c - bounded incremental server-sent-events reader (see sse.h).
 *
 * A small state machine over the bytes of a line: the field name (kept up to 8 bytes: only
 * "data" and "event" matter), the optional space after the colon, then the value, which is
 * appended to the data buffer (data lines), to the event name, or only counted (anything else).
 * A data line's value is copied once, straight from the network chunk into the event's data: a
 * large dump is never held twice. Every append is checked against its bound first.
 */
#include "base/sse.h"

#include <stdio.h>
#include <string.h>

enum { ST_FIELD, ST_VALUE_START, ST_VALUE };
enum { K_NONE, K_DATA, K_EVENT, K_OTHER };

size_t ef_sse_limit_of(const ef_sse *p, const char *event)
{
    for (size_t i = 0; i < p->cfg.nlimits; i++)
        if (!strcmp(p->cfg.limits[i].event, event)) return p->cfg.limits[i].max_data;
    return p->cfg.default_max_data;
}

static void event_clear(ef_sse *p)
{
    p->has_data = false;
    p->event_unknown = false;
    p->event[0] = '\0';
    p->event_len = 0;
    p->max_data = p->cfg.default_max_data;
    ef_buf_clear_shrink(p->data, EF_BUF_KEEP); /* an idle reader gives a large event's memory back */
}

static void line_clear(ef_sse *p)
{
    p->state = ST_FIELD;
    p->kind = K_NONE;
    p->field_len = 0;
    p->line_len = 0;
}

void ef_sse_init(ef_sse *p, ef_buf *data, const ef_sse_config *cfg)
{
    memset(p, 0, sizeof(*p));
    p->cfg = *cfg;
    p->data = data;
    ef_sse_reset(p);
}

void ef_sse_reset(ef_sse *p)
{
    line_clear(p);
    event_clear(p);
    p->after_cr = false;
    p->lines = 0;
    p->events = 0;
    p->why[0] = '\0';
}

static int too_long(ef_sse *p, const char *what, size_t limit)
{
    snprintf(p->why, sizeof(p->why), "%s longer than %zu bytes", what, limit);
    return EF_SSE_TOO_LONG;
}

static int data_too_long(ef_sse *p)
{
    char what[64];
    snprintf(what, sizeof(what), "the data of a%s%s event", p->event[0] ? " " : "n unnamed",
             p->event);
    return too_long(p, what, p->max_data);
}

static int append_data(ef_sse *p, const char *s, size_t n)
{
    if (n > p->max_data || p->data->len > p->max_data - n) return data_too_long(p);
    ef_buf_append(p->data, s, n);
    if (!ef_buf_ok(p->data)) {
        snprintf(p->why, sizeof(p->why), "out of memory reading an event");
        return EF_SSE_NOMEM;
    }
    return EF_SSE_OK;
}

/* The field name is complete (a colon, or the end of a line without one). */
static int field_done(ef_sse *p)
{
    bool fits = p->field_len <= sizeof(p->field);
    if (fits && p->field_len == 4 && !memcmp(p->field, "data", 4)) {
        p->kind = K_DATA;
        int rc = p->has_data ? append_data(p, "\n", 1) : EF_SSE_OK;
        p->has_data = true;
        return rc;
    }
    if (fits && p->field_len == 5 && !memcmp(p->field, "event", 5)) {
        p->kind = K_EVENT;
        p->event_len = 0;
        p->event[0] = '\0';
        p->event_unknown = false;
        return EF_SSE_OK;
    }
    p->kind = K_OTHER;
    return EF_SSE_OK;
}

static int dispatch(ef_sse *p)
{
    int rc = EF_SSE_OK;
    if ((p->event[0] || p->has_data) && !p->event_unknown) {
        /* the name may have come after the data: the limit is the one of the final name */
        if (p->data->len > p->max_data) return data_too_long(p);
        if (!ef_buf_reserve(p->data, 0)) {
            snprintf(p->why, sizeof(p->why), "out of memory reading an event");
            return EF_SSE_NOMEM;
        }
        p->data->data[p->data->len] = '\0';
        p->events++;
        if (p->cfg.on_event(p->cfg.ud, p->event, p) != 0) rc = EF_SSE_STOPPED;
    }
    event_clear(p);
    return rc;
}

static int line_done(ef_sse *p)
{
    int rc = EF_SSE_OK;
    p->lines++;
    if (p->state == ST_FIELD) {
        if (p->field_len == 0) {
            rc = dispatch(p); /* an empty line ends the event */
        } else {
            rc = field_done(p); /* "data" alone is an empty data line */
        }
    }
    if (rc == EF_SSE_OK && p->kind == K_EVENT) {
        p->event[p->event_len] = '\0';
        p->max_data = p->event_unknown ? p->cfg.default_max_data : ef_sse_limit_of(p, p->event);
    }
    line_clear(p);
    return rc;
}

/* The length of the run of s[0..n) before the first CR or LF. */
static size_t value_run(const char *s, size_t n)
{
    const char *lf = memchr(s, '\n', n);
    size_t m = lf ? (size_t)(lf - s) : n;
    const char *cr = memchr(s, '\r', m);
    return cr ? (size_t)(cr - s) : m;
}

int ef_sse_feed(ef_sse *p, const char *buf, size_t n)
{
    size_t i = 0;
    int rc;
    while (i < n) {
        char ch = buf[i];
        if (p->after_cr) {
            p->after_cr = false;
            if (ch == '\n') {
                i++;
                continue;
            }
        }
        if (ch == '\n' || ch == '\r') {
            p->after_cr = ch == '\r';
            i++;
            if ((rc = line_done(p)) != EF_SSE_OK) return rc;
            continue;
        }
        switch (p->state) {
        case ST_FIELD:
            if (ch == ':') {
                i++;
                if (p->field_len == 0) { /* a comment line */
                    p->kind = K_OTHER;
                    p->line_len = 1;
                    p->state = ST_VALUE;
                    break;
                }
                if ((rc = field_done(p)) != EF_SSE_OK) return rc;
                p->state = ST_VALUE_START;
                break;
            }
            if (p->field_len < sizeof(p->field)) p->field[p->field_len] = ch;
            p->field_len++;
            if (++p->line_len > p->cfg.max_line) return too_long(p, "a field name", p->cfg.max_line);
            i++;
            break;
        case ST_VALUE_START:
            p->state = ST_VALUE;
            if (ch == ' ') {
                i++;
                break;
            }
            __attribute__((fallthrough)); /* the value starts with this byte */
        default: {
            size_t run = value_run(buf + i, n - i);
            if (p->kind == K_DATA) {
                if ((rc = append_data(p, buf + i, run)) != EF_SSE_OK) return rc;
            } else {
                if (run > p->cfg.max_line || p->line_len + run > p->cfg.max_line)
                    return too_long(p, "a line", p->cfg.max_line);
                p->line_len += run;
                if (p->kind == K_EVENT) {
                    size_t room = EF_SSE_EVENT_MAX - p->event_len;
                    size_t k = run < room ? run : room;
                    memcpy(p->event + p->event_len, buf + i, k);
                    p->event_len += k;
                    if (run > room) p->event_unknown = true;
                }
            }
            i += run;
            break;
        }
        }
    }
    return EF_SSE_OK;
}
