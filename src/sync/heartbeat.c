/*
 * heartbeat.c - reads the data of a replication stream's heartbeat event (feed.c writes it):
 *   {"seq":N,"head":N,"time":NS,"history":"hex","lagSeconds":x,"node":"NAME"}
 * The follower believes what it reads here (its upstream's head decides whether it says it is in
 * sync, the lag is shown in /ready and /metrics and passed on down the chain), so an upstream that
 * lies or is broken must not be able to make it say anything absurd. Before this check, a head of
 * 1e30 was cast from a double to 0 (in sync), -1 wrapped, a negative lag was shown as is, 1e308
 * printed 300 digits, and a heartbeat that was not JSON still counted as one in sync (review of
 * the sync code, bug 2). Now such a heartbeat is a protocol error: refused, counted, retried.
 */
#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/json.h"
#include "sync/sync_int.h"

bool ef_sync_history_valid(ef_bytes s)
{
    if (s.n == 0 || s.n > EF_STORE_ID_MAX) return false;
    for (size_t i = 0; i < s.n; i++)
        if (!((s.p[i] >= '0' && s.p[i] <= '9') || (s.p[i] >= 'a' && s.p[i] <= 'f'))) return false;
    return true;
}

/* The upstream's lag: absent is 0, a negative one is 0 (its clock went back), and past
 * EF_SYNC_LAG_MAX_S it is that bound. False for anything but a number. */
static bool read_lag(const ef_json *v, double *out)
{
    *out = 0;
    if (!v) return true;
    if (v->type != EF_JSON_NUMBER) return false;
    double lag = v->num;
    if (!(lag > 0)) lag = 0; /* also NaN, which JSON cannot spell but a parser might let through */
    if (lag > EF_SYNC_LAG_MAX_S) lag = EF_SYNC_LAG_MAX_S;
    *out = lag;
    return true;
}

static int refuse(char *why, size_t cap, const char *what)
{
    snprintf(why, cap, "a heartbeat %s", what);
    return -1;
}

#define STR_(x) #x
#define STR(x) STR_(x)

int ef_heartbeat_parse(const char *p, size_t n, ef_heartbeat *out, char *why, size_t cap)
{
    memset(out, 0, sizeof(*out));
    ef_arena a;
    ef_arena_init(&a, 1024);
    ef_json_error je;
    ef_json_opts jo = {.max_depth = 4};
    const ef_json *v = ef_json_parse(p, n, &a, &jo, &je);
    int rc = 0;
    const ef_json *hist = v ? ef_json_get(v, "history") : NULL;
    const ef_json *name = v ? ef_json_get(v, "node") : NULL;
    if (!v || v->type != EF_JSON_OBJECT)
        rc = refuse(why, cap, "that is not a JSON object");
    else if (!ef_json_u64(ef_json_get(v, "head"), &out->head) || out->head > INT64_MAX)
        rc = refuse(why, cap, "whose head is not a change-log position (an integer from 0 to 2^63-1)");
    else if (!read_lag(ef_json_get(v, "lagSeconds"), &out->lag_s))
        rc = refuse(why, cap, "whose lagSeconds is not a number");
    else if (hist && (hist->type != EF_JSON_STRING || !ef_sync_history_valid(hist->str)))
        rc = refuse(why, cap, "whose history is not 1 to " STR(EF_STORE_ID_MAX) " lower-case hex digits");
    if (rc == 0 && hist) {
        memcpy(out->history, hist->str.p, hist->str.n);
        out->history[hist->str.n] = '\0';
    }
    /* a name that is not one is left out, as the feed's handshake would refuse it */
    if (rc == 0 && name && name->type == EF_JSON_STRING && ef_node_name_valid(name->str.p, name->str.n)) {
        memcpy(out->node, name->str.p, name->str.n);
        out->node[name->str.n] = '\0';
    }
    ef_arena_free(&a);
    return rc;
}
