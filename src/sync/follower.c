/*
 * follower.c - a replica's side of replication: one thread that follows the upstream's change log
 * (GET {upstream}/edgeflag/v1/replication/stream?since=LOCAL_SEQ, see feed.c) with libcurl,
 * applies each transaction as one local SQLite transaction (which publishes the new snapshots),
 * and loads a full dump atomically when its position was trimmed upstream.
 *
 * The position is always the local store's seq, so after any disconnect, crash or restart it
 * resumes exactly where the persisted state ends. It must never apply an entry out of order or
 * twice, never go back in version within a history (only a reset from another history, or from a
 * primary behind it, replaces the state with an older one, loudly: on_reset), and never wait
 * on the network without a bound: connecting is limited to CONNECT_TIMEOUT_MS and a stream silent
 * for EF_SYNC_HEARTBEAT_DEAD_S is dropped (the upstream sends a heartbeat every second). Bytes are
 * not enough to count as alive: from its last complete event on, a stream must deliver
 * EF_SYNC_EVENT_MIN_RATE bytes a second on average once EF_SYNC_HEARTBEAT_DEAD_S have passed
 * (link_dead), so a link trickling an entry a few bytes at a time, with the heartbeats queued
 * behind it, is dropped too instead of passing for live with a lag of 0. Retries use exponential
 * backoff with jitter, capped low so a healed link is used again within a second.
 *
 * What the upstream sends is bounded (base/sse.c): a line or an event past its limit (per event
 * type: a dump may be large, a heartbeat never is) is a protocol error. A connection that ends
 * because of what the upstream sent (an entry that cannot be applied, a dump that is refused, a
 * protocol error) makes the next attempt wait longer each time the follower is still at the same
 * position (up to FAILURE_BACKOFF_CAP_MS), so a poisoned entry never turns into a reconnect every
 * 100 ms (nor, for a reset, into a full dump built upstream every 100 ms); /ready and the metrics
 * say why the replica is stuck.
 *
 * Once the node is stopping (ef_follower_wind_down, first thing in ef_sync_drain), the live stream
 * is still followed until ef_follower_stop, but one that ends is not resumed and is logged at info:
 * a replica stopped together with its upstream (as the benchmarks and tests stop them) used to log
 * "upstream stream lost; retrying ... upstream closed the stream" at warn, announcing a retry it
 * never made, and that read as a link dropped under load.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/sse.h"
#include "sync/sync_int.h"
#include "base/thread.h"

#define CONNECT_TIMEOUT_MS 2000
#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 1000
#define ERRBODY_MAX 512
/* after failures caused by what the upstream sent: 100 ms doubling per failure at the same
 * position, up to 30 s */
#define FAILURE_BACKOFF_CAP_MS 30000
/* stream bounds (the limits of txn and reset events are in ef_sync_config) */
#define SSE_MAX_LINE 4096                 /* comments, ids, event names */
#define SSE_MAX_SMALL_EVENT (64u << 10)   /* heartbeats and event types this version skips */

struct ef_follower {
    ef_sync *s;
    pthread_t thread;
    bool running;
    pthread_mutex_t mu; /* stop, winding_down + the backoff sleep */
    pthread_cond_t cv;
    bool stop;
    bool winding_down; /* ef_follower_wind_down: a stream that ends is not resumed */
    unsigned rng; /* jitter; this thread only */

    /* the current connection (follower thread only) */
    CURL *curl;
    long status;
    uint64_t local;  /* the local store's seq */
    ef_sse sse;      /* the stream reader (bounded) */
    ef_sse_limit limits[2];
    ef_buf data;     /* the data of the event being read (filled by sse) */
    bool failed;     /* dispatch failed: abort the transfer */
    bool content_failure; /* it failed because of what the upstream sent (not the network) */
    bool protocol_error;  /* ... because the stream broke the protocol (a bound) */
    uint64_t fail_seq;    /* the entry (or dump) that failed, when known */
    /* repeated content failures (follower thread only) */
    unsigned strikes;     /* consecutive ones at the same local position */
    uint64_t strike_local; /* that position */
    bool got_event;  /* this connection delivered at least one event */
    int64_t last_byte_ns; /* monotonic: when the stream last delivered anything */
    int64_t last_event_ns; /* monotonic: when the last complete event was handled (or connect) */
    uint64_t event_bytes; /* bytes delivered since then */
    char why[600];   /* why the connection was abandoned */
    char history[EF_STORE_ID_MAX + 1]; /* the local store's history ("" when it has none) */
    bool history_agreed; /* this connection's upstream has shown itself on that history */
    char logged_why[600]; /* the last reason logged at warn level */
    char curl_err[CURL_ERROR_SIZE]; /* libcurl's own account of a failed transfer */
    ef_buf errbody;  /* the start of a non-200 answer */
};

static bool stopping(ef_follower *f)
{
    pthread_mutex_lock(&f->mu);
    bool s = f->stop;
    pthread_mutex_unlock(&f->mu);
    return s;
}

static bool winding_down(ef_follower *f)
{
    pthread_mutex_lock(&f->mu);
    bool w = f->winding_down;
    pthread_mutex_unlock(&f->mu);
    return w;
}

static uint64_t parse_seq_field(const char *p, size_t n)
{
    /* entries and dumps begin with {"seq":N (docs/storage.md); a tree parse of a large dump only
     * to read its seq would double the work */
    static const char key[] = "\"seq\":";
    const char *end = p + n;
    const char *k = memmem(p, n < 64 ? n : 64, key, sizeof(key) - 1);
    if (!k) return 0;
    uint64_t v = 0;
    for (k += sizeof(key) - 1; k < end && *k >= '0' && *k <= '9'; k++) v = v * 10 + (uint64_t)(*k - '0');
    return v;
}

/* The entry's "time" (the primary's wall clock at its commit), right after its seq; 0 if absent. */
static int64_t parse_time_field(const char *p, size_t n)
{
    static const char key[] = "\"time\":";
    const char *end = p + n;
    const char *k = memmem(p, n < 64 ? n : 64, key, sizeof(key) - 1);
    if (!k) return 0;
    int64_t v = 0;
    for (k += sizeof(key) - 1; k < end && *k >= '0' && *k <= '9' && v < INT64_MAX / 10 - 10; k++)
        v = v * 10 + (*k - '0');
    return v;
}

/* A recovering replica holds everything its upstream had when it last heard from it. */
static void caught_up_locked(ef_sync *s, uint64_t seq)
{
    if (!s->st.recovering) return;
    s->st.recovering = false;
    char v[24];
    snprintf(v, sizeof(v), "%" PRIu64, seq);
    ef_log(EF_LOG_INFO, "recovered: caught up with the upstream after an unclean stop", "version", v, NULL);
}

static void applied_now(ef_follower *f, uint64_t seq, bool dump)
{
    ef_sync *s = f->s;
    f->local = seq;
    ef_sync_version_raised(s, seq);
    int64_t now = ef_clock_wall_ns();
    pthread_mutex_lock(&s->mu);
    s->st.last_applied_ns = now;
    s->st.has_state = true;
    if (dump)
        s->st.dumps_loaded++;
    else
        s->st.applied++;
    if (seq >= s->st.upstream_head) s->st.synced_at_ns = now;
    if (seq >= s->st.upstream_head && s->st.heard_upstream) caught_up_locked(s, seq);
    s->st.stuck[0] = '\0'; /* progress: whatever failed before is behind us */
    s->st.apply_backoff_ms = 0;
    ef_sync_status_changed_locked(s);
    pthread_mutex_unlock(&s->mu);
    ef_feed_kick(s->feed); /* chained replicas see it next */
}

static void fail(ef_follower *f, const char *fmt, const char *detail)
{
    snprintf(f->why, sizeof(f->why), fmt, detail);
    f->failed = true;
    f->content_failure = true;
}

static void apply_txn(ef_follower *f)
{
    uint64_t seq = parse_seq_field(f->data.data, f->data.len);
    if (!seq) { fail(f, "%s", "a txn event without a seq"); return; }
    if (seq <= f->local) return; /* already applied (a resumed stream may repeat the edge) */
    if (seq != f->local + 1) {
        char m[96];
        snprintf(m, sizeof(m), "gap: got seq %" PRIu64 " after %" PRIu64, seq, f->local);
        { fail(f, "%s", m); return; }
    }
    int64_t t_time = parse_time_field(f->data.data, f->data.len);
    if (t_time > 0) /* same-host wall clocks in a bench; across hosts it includes their skew */
        ef_sync_observe_stage(f->s, "commit_to_receive", (double)(ef_clock_wall_ns() - t_time) / 1e9);
    int64_t t_apply = ef_clock_mono_ns();
    ef_store_err err;
    int arc = ef_store_apply_changes(f->s->node->store, f->data.data, f->data.len, &err);
    int64_t t_applied = ef_clock_wall_ns(); /* before anything that could let a chained replica see it */
    ef_sync_observe_stage(f->s, "replica_apply", (double)(ef_clock_mono_ns() - t_apply) / 1e9);
    if (arc != 0) {
        /* "committed, but not republished" still moved the seq: re-read it either way */
        uint64_t cur, first;
        ef_store_err e2;
        int src = ef_store_seq(f->s->node->store, &cur, &first, &e2);
        if (src == 0 && cur >= seq) {
            applied_now(f, cur, false);
            ef_log(EF_LOG_ERROR, "applied a transaction but could not republish", "error",
                   err.message, NULL);
            return;
        }
        if (src == 0 && cur < f->local) {
            /* The store went back: a batch it could not write was rolled back
             * (src/store/sqlite_persist.c). Not the upstream's fault: resume from the file's seq
             * at once; what was published stays served until the same entries pass it again. */
            snprintf(f->why, sizeof(f->why),
                     "the local store went back to seq %" PRIu64 " (entries it could not write to disk); "
                     "resuming from there", cur);
            f->failed = true;
            return;
        }
        { fail(f, "apply failed: %s", err.message); return; }
    }
    /* The write's timeline: here, this long after its commit. Recorded before applied_now kicks
     * the feed, and timed as the apply returned, so a replica chained to this one can never be
     * shown applying it first. */
    ef_tree_applied(f->s->tree, seq, t_time, t_applied);
    applied_now(f, seq, false);
    ef_reporter_kick(f->s->reporter);
}

/* A transaction, with the requests waiting for its version completed on this thread once it is
 * published (waits.c: no hop through the waits thread). */
static void on_txn(ef_follower *f)
{
    ef_waits_hold(f->s->waits);
    apply_txn(f);
    ef_waits_release(f->s->waits);
}

/* The "history" of a dump: it follows "seq" at the start (docs/storage.md), so a prefix scan does,
 * as for the seq. Empty when absent (an upstream without histories). */
static void parse_history_field(const char *p, size_t n, char *out, size_t cap)
{
    static const char key[] = "\"history\":\"";
    out[0] = '\0';
    const char *k = memmem(p, n < 160 ? n : 160, key, sizeof(key) - 1);
    if (!k) return;
    k += sizeof(key) - 1;
    size_t i = 0;
    while (k + i < p + n && k[i] != '"' && i + 1 < cap) {
        out[i] = k[i];
        i++;
    }
    out[i] = '\0';
}

/* Loads the dump in f->data with the feed's rounds held off (ef_feed_reset_begin), then has the
 * feed end the streams of the replicas chained to this one: they were checked against the state
 * the dump replaces (was: this node's identity before). */
static int load_dump(ef_follower *f, const ef_store_identity *was, ef_store_err *err)
{
    ef_store *store = f->s->node->store;
    ef_feed_reset_begin(f->s->feed);
    /* until on_reset has set the version the dump gives, no history is this node's: a forwarded
     * write waiting on the dump's history must not be taken as reached at the old one's numbers */
    ef_waits_set_history(f->s->waits, NULL);
    int rc = ef_store_load_dump(store, f->data.data, f->data.len, err);
    ef_feed_reset r = {.replaced = rc == 0, .was_seq = f->local, .was_history = was->history};
    uint64_t first;
    ef_store_identity now;
    ef_store_err e2;
    if (ef_store_seq(store, &r.seq, &first, &e2) != 0 || ef_store_get_identity(store, &now, &e2) != 0) {
        r.replaced = true; /* cannot tell: the streams reconnect, which is always safe */
        r.seq = f->local;
        now = *was;
    }
    r.history = now.history;
    if (r.seq != f->local || strcmp(now.history, was->history) != 0) r.replaced = true;
    snprintf(f->history, sizeof(f->history), "%s", now.history);
    ef_feed_reset_end(f->s->feed, &r);
    return rc;
}

/* A reset replaces the whole local state with the upstream's dump. A feed sends one when the
 * position is trimmed (the dump is ahead), when this replica is on another history (a primary
 * started on a fresh or restored database, another primary), or when a primary finds this
 * replica ahead of it on the same history (restored from a backup): in the last two the state
 * goes back, which is logged loudly, and the node's version follows it down (issue 19, item 5). */
static void on_reset(ef_follower *f)
{
    uint64_t seq = parse_seq_field(f->data.data, f->data.len);
    char hist[EF_STORE_ID_MAX + 1];
    parse_history_field(f->data.data, f->data.len, hist, sizeof(hist));
    ef_store_identity id;
    ef_store_err err;
    if (ef_store_get_identity(f->s->node->store, &id, &err) != 0)
        { fail(f, "cannot read the local history: %s", err.message); return; }
    /* a replica that holds nothing yet (seq 0) has nothing to lose: a plain bootstrap */
    bool other_history = f->local > 0 && hist[0] && id.history[0] && strcmp(hist, id.history) != 0;
    if (load_dump(f, &id, &err) != 0) {
        ef_waits_set_history(f->s->waits, f->history); /* what the store holds after the failure */
        fail(f, "loading the upstream's dump failed: %s", err.message);
        return;
    }
    f->history_agreed = true; /* the dump's history is ours now (load_dump read it back) */
    char sq[24], was[24];
    snprintf(sq, sizeof(sq), "%" PRIu64, seq);
    snprintf(was, sizeof(was), "%" PRIu64, f->local);
    if (other_history)
        ef_log(EF_LOG_WARN, "upstream is on another history: replaced the local state with its dump",
               "upstream", f->s->upstream, "history", hist, "was_history", id.history, "seq", sq,
               "was_seq", was, NULL);
    else if (seq < f->local)
        ef_log(EF_LOG_WARN, "upstream is behind this replica on the same history (restored from a "
               "backup?): replaced the local state with its dump",
               "upstream", f->s->upstream, "seq", sq, "was_seq", was, NULL);
    else
        ef_log(EF_LOG_INFO, "loaded a full dump from upstream", "seq", sq, NULL);
    if (other_history || seq < f->local) ef_node_set_version(f->s->node, seq);
    ef_waits_set_history(f->s->waits, f->history); /* after the version: see load_dump */
    applied_now(f, seq, true);
}

/* Whether the upstream's history changed under this connection: a heartbeat on another history
 * after one on ours (or after its dump made its history ours). Another history before that is
 * expected: the handshake found this replica on another history and a dump is on its way. A feed
 * ends its streams when it loads a dump (ef_feed_reset_end); one that does not (an older version)
 * would send its new history's entries on top of this replica's state, so the connection is
 * dropped here and resumed at once, and the handshake sorts it out. */
static bool history_moved(ef_follower *f, const char *hist)
{
    if (!hist[0] || !f->history[0]) return false; /* an upstream or a store without histories */
    if (strcmp(hist, f->history) == 0) {
        f->history_agreed = true;
        return false;
    }
    if (!f->history_agreed) return false;
    snprintf(f->why, sizeof(f->why), "upstream moved to another history (%s; this replica is on %s)",
             hist, f->history);
    f->failed = true; /* not a content failure: reconnect after the usual short backoff */
    ef_log(EF_LOG_WARN, "upstream moved to another history under the stream: reconnecting", "upstream",
           f->s->upstream, "history", hist, "our_history", f->history, NULL);
    return true;
}

static void on_heartbeat(ef_follower *f)
{
    ef_heartbeat hb;
    char why[160];
    if (ef_heartbeat_parse(f->data.data, f->data.len, &hb, why, sizeof(why)) != 0) {
        fail(f, "protocol error from upstream: %s", why); /* nothing of it is used */
        f->protocol_error = true;
        return;
    }
    if (history_moved(f, hb.history)) return;
    ef_sync *s = f->s;
    int64_t now = ef_clock_wall_ns();
    pthread_mutex_lock(&s->mu);
    bool was = s->st.connected;
    s->st.connected = true;
    s->st.link_error[0] = '\0';
    s->st.upstream_head = hb.head;
    s->st.upstream_lag_s = hb.lag_s;
    s->st.heard_upstream = true;
    if (hb.node[0]) memcpy(s->st.upstream_name, hb.node, sizeof(hb.node));
    if (f->local >= s->st.upstream_head) {
        caught_up_locked(s, f->local);
        s->st.synced_at_ns = now;
        s->st.has_state = true;
        s->st.stuck[0] = '\0'; /* in sync: nothing is left that failed */
        s->st.apply_backoff_ms = 0;
    }
    ef_sync_status_changed_locked(s);
    pthread_mutex_unlock(&s->mu);
    if (!was) {
        char sq[24];
        snprintf(sq, sizeof(sq), "%" PRIu64, f->local);
        ef_log(EF_LOG_INFO, "following upstream", "upstream", s->upstream, "upstream_name",
               s->st.upstream_name[0] ? s->st.upstream_name : "-", "since", sq, NULL);
    }
}

/* A complete event from the stream reader; returns nonzero to stop reading. */
static int on_event(void *ud, const char *event, ef_sse *p)
{
    (void)p;
    ef_follower *f = ud;
    f->got_event = true;
    bool txn = !strcmp(event, "txn"), reset = !strcmp(event, "reset");
    if (txn || reset) f->fail_seq = parse_seq_field(f->data.data, f->data.len);
    if (txn)
        on_txn(f);
    else if (reset)
        on_reset(f);
    else if (!strcmp(event, "heartbeat"))
        on_heartbeat(f);
    /* unknown events are skipped: a newer upstream may send more kinds */
    /* after the work: applying a large entry or dump takes time the link is not to blame for */
    f->last_event_ns = ef_clock_mono_ns();
    f->event_bytes = 0;
    return f->failed;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    ef_follower *f = ud;
    size_t n = size * nmemb;
    f->last_byte_ns = ef_clock_mono_ns();
    if (!f->status) curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &f->status);
    if (f->status != 200) {
        size_t room = f->errbody.len < ERRBODY_MAX ? ERRBODY_MAX - f->errbody.len : 0;
        ef_buf_append(&f->errbody, p, n < room ? n : room);
        return n;
    }
    int rc = ef_sse_feed(&f->sse, p, n);
    if (rc < 0 && !f->failed) {
        fail(f, "protocol error from upstream: %s", f->sse.why);
        f->protocol_error = true;
    }
    /* counted after the events this chunk completed (which reset it): at most one chunk too
     * many, in the link's favour */
    f->event_bytes += n;
    f->last_byte_ns = ef_clock_mono_ns(); /* an apply in there took time, not the link */
    return f->failed ? 0 : n;
}

/* Whether the live stream is to be dropped as dead (why filled): silent for
 * EF_SYNC_HEARTBEAT_DEAD_S, or slower than EF_SYNC_EVENT_MIN_RATE since its last complete event
 * once that allowance has passed. A healthy link completes a heartbeat every second; a large
 * entry or dump in transit keeps it alive only while it comes at that rate. */
static bool link_dead(ef_follower *f, int64_t now)
{
    const int64_t dead_ns = EF_SYNC_HEARTBEAT_DEAD_S * 1000000000LL;
    if (now - f->last_byte_ns > dead_ns) {
        snprintf(f->why, sizeof(f->why), "no heartbeat from upstream for %d s", EF_SYNC_HEARTBEAT_DEAD_S);
        return true;
    }
    int64_t quiet = now - f->last_event_ns;
    if (quiet <= dead_ns) return false;
    double owed = (double)(quiet - dead_ns) / 1e9 * EF_SYNC_EVENT_MIN_RATE;
    if ((double)f->event_bytes >= owed) return false;
    snprintf(f->why, sizeof(f->why),
             "no complete event from upstream for %.1f s (%" PRIu64 " bytes since the last one: slower than "
             "%d bytes/s after %d s)", (double)quiet / 1e9, f->event_bytes, EF_SYNC_EVENT_MIN_RATE,
             EF_SYNC_HEARTBEAT_DEAD_S);
    return true;
}

/* libcurl calls this about once a second even on an idle stream. Its own low-speed limit averages
 * over several seconds, too slowly to notice a silent link within EF_SYNC_HEARTBEAT_DEAD_S; this
 * watchdog is the bound that counts. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    ef_follower *f = ud;
    if (stopping(f)) return 1;
    return f->status == 200 && link_dead(f, ef_clock_mono_ns());
}

static int entry_fingerprint(void *ctx, const ef_store_change *c)
{
    *(uint64_t *)ctx = ef_store_entry_hash(c->entry);
    return 0;
}

/* Keeps this replica's stream key (EF_FORWARD_KEY_HEADER of the stream's answer) for the
 * forwarder, which sends it with the writes it forwards upstream; "" for none. */
static void set_forward_key(ef_sync *s, const char *key, size_t n)
{
    pthread_mutex_lock(&s->mu);
    if (n > EF_FORWARD_KEY_MAX) n = 0; /* not a key this version makes: send none */
    memcpy(s->forward_key, key, n);
    s->forward_key[n] = '\0';
    pthread_mutex_unlock(&s->mu);
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    ef_follower *f = ud;
    size_t n = size * nmemb;
    char v[EF_FORWARD_KEY_MAX + 2]; /* one byte more than a key: a longer value is no key */
    if (!ef_sync_header_value(p, n, EF_FORWARD_KEY_HEADER, v, sizeof(v))) return n;
    for (const char *c = v; *c; c++)
        if (*c <= 0x20 || *c > 0x7e) return n; /* printable, one token, as the feed makes it */
    set_forward_key(f->s, v, strlen(v));
    return n;
}

/* One connection, from connect to its end. */
static void follow_once(ef_follower *f)
{
    ef_store_err err;
    uint64_t first;
    if (ef_store_seq(f->s->node->store, &f->local, &first, &err) != 0) {
        snprintf(f->why, sizeof(f->why), "cannot read the local position: %s", err.message);
        return;
    }
    /* the history travels with the position: a feed on another history answers with a dump */
    ef_store_identity id;
    if (ef_store_get_identity(f->s->node->store, &id, &err) != 0) {
        snprintf(f->why, sizeof(f->why), "cannot read the local history: %s", err.message);
        return;
    }
    /* and the fingerprint of the entry at that position, when the log still holds it: a feed on
     * the same history whose entry there differs (a primary restored from a backup that took
     * other writes since) answers with a dump too */
    char at[40] = "";
    uint64_t fp = 0;
    if (f->local >= first && f->local > 0 &&
        ef_store_changes(f->s->node->store, f->local - 1, 1, entry_fingerprint, &fp, &err) == 0 &&
        fp)
        snprintf(at, sizeof(at), "&at=%016" PRIx64, fp);
    char url[2300];
    snprintf(url, sizeof(url), "%s/edgeflag/v1/replication/stream?since=%" PRIu64 "%s%s%s%s%s",
             f->s->upstream, f->local, id.history[0] ? "&history=" : "", id.history, at,
             f->s->node->name ? "&node=" : "", f->s->node->name ? f->s->node->name : "");
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: text/event-stream");
    char auth[1100];
    if (f->s->upstream_token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", f->s->upstream_token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    CURL *c = curl_easy_init();
    if (!c || !hdrs) {
        snprintf(f->why, sizeof(f->why), "out of memory");
        curl_slist_free_all(hdrs);
        if (c) curl_easy_cleanup(c);
        return;
    }
    f->curl = c;
    f->status = 0;
    f->failed = false;
    f->content_failure = false;
    f->protocol_error = false;
    f->fail_seq = 0;
    f->got_event = false;
    f->why[0] = '\0';
    snprintf(f->history, sizeof(f->history), "%s", id.history);
    ef_waits_set_history(f->s->waits, f->history);
    f->history_agreed = false;
    f->last_byte_ns = f->last_event_ns = ef_clock_mono_ns();
    f->event_bytes = 0;
    ef_sse_reset(&f->sse);
    ef_buf_clear(&f->errbody);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    ef_tls_client_apply(c, &f->s->cfg.upstream_tls, f->curl_err);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "edgeflag-replica/" EF_VERSION);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)EF_SYNC_HEARTBEAT_DEAD_S);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, f);
    CURLcode rc = curl_easy_perform(c);
    set_forward_key(f->s, "", 0); /* the stream ended: its key means nothing upstream any more */
    if (!f->why[0]) {
        if (f->status && f->status != 200) {
            ef_buf_putc(&f->errbody, '\0');
            snprintf(f->why, sizeof(f->why), "upstream answered %ld: %s", f->status,
                     ef_buf_ok(&f->errbody) ? f->errbody.data : "");
        } else if (rc == CURLE_OPERATION_TIMEDOUT) {
            snprintf(f->why, sizeof(f->why), "no heartbeat from upstream for %d s", EF_SYNC_HEARTBEAT_DEAD_S);
        } else {
            if (rc == CURLE_OK)
                snprintf(f->why, sizeof(f->why), "upstream closed the stream");
            else /* names the upstream; a refused certificate says why */
                ef_tls_client_error((int)rc, f->curl_err, f->s->upstream, f->why, sizeof(f->why));
        }
    }
    f->curl = NULL;
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
}

/* Whether two failure texts say the same thing, timings and counts aside ("after 3 ms"). */
static bool same_reason(const char *a, const char *b)
{
    for (;;) {
        while (*a >= '0' && *a <= '9') a++;
        while (*b >= '0' && *b <= '9') b++;
        if (*a != *b) return false;
        if (!*a) return true;
        a++, b++;
    }
}

static void *follower_main(void *arg)
{
    ef_thread_name("ef-follower");
    ef_follower *f = arg;
    ef_sync *s = f->s;
    unsigned attempt = 0;
    while (!stopping(f) && !winding_down(f)) {
        follow_once(f);
        if (stopping(f)) break;
        if (winding_down(f)) {
            /* the node is stopping: this end is expected (its upstream is often stopping too)
             * and there is no one left to reconnect for; ef_follower_stop joins the thread */
            pthread_mutex_lock(&s->mu);
            s->st.connected = false;
            snprintf(s->st.link_error, sizeof(s->st.link_error), "%s", f->why);
            ef_sync_status_changed_locked(s);
            pthread_mutex_unlock(&s->mu);
            ef_log(EF_LOG_INFO, "upstream stream ended while this node is stopping; not reconnecting",
                   "upstream", s->upstream, "error", f->why, NULL);
            break;
        }
        unsigned delay;
        if (f->content_failure) {
            /* the upstream sent something this node cannot use: retrying at once would fail the
             * same way, so wait longer each time while the position stays the same */
            f->strikes = f->strikes && f->strike_local == f->local ? f->strikes + 1 : 1;
            f->strike_local = f->local;
            unsigned shift = f->strikes - 1 < 10 ? f->strikes - 1 : 10;
            unsigned cap = BACKOFF_BASE_MS << shift;
            if (cap > FAILURE_BACKOFF_CAP_MS) cap = FAILURE_BACKOFF_CAP_MS;
            delay = cap / 2 + (unsigned)(rand_r(&f->rng) % (cap / 2 + 1));
        } else {
            if (f->got_event) attempt = 0; /* the link worked: start the backoff over */
            unsigned cap = BACKOFF_BASE_MS << (attempt < 4 ? attempt : 4);
            if (cap > BACKOFF_CAP_MS) cap = BACKOFF_CAP_MS;
            delay = cap / 2 + (unsigned)(rand_r(&f->rng) % (cap / 2 + 1)); /* jitter */
            attempt++;
        }
        pthread_mutex_lock(&s->mu);
        bool was = s->st.connected;
        s->st.connected = false;
        s->st.reconnects++;
        snprintf(s->st.link_error, sizeof(s->st.link_error), "%s", f->why);
        if (f->content_failure) {
            if (f->protocol_error)
                s->st.protocol_errors++;
            else
                s->st.apply_failures++;
            s->st.apply_backoff_ms = delay;
            snprintf(s->st.stuck, sizeof(s->st.stuck),
                     "cannot use what the upstream sent at seq %" PRIu64 " (%u failed attempt%s, next in %u ms): %s",
                     f->fail_seq ? f->fail_seq : f->local + 1, f->strikes, f->strikes == 1 ? "" : "s",
                     delay, f->why);
        }
        ef_sync_status_changed_locked(s);
        pthread_mutex_unlock(&s->mu);
        char d[16];
        snprintf(d, sizeof(d), "%ums", delay);
        if (f->content_failure)
            ef_log(EF_LOG_ERROR, "cannot use what the upstream sent; backing off", "upstream",
                   s->upstream, "error", f->why, "failures", f->strikes == 1 ? "1" : "repeated",
                   "retry_in", d, NULL);
        else
        {
            /* the first failure of a run, and every change of reason (a timeout, then the
             * certificate refused), at warn; the same failure again at debug */
            bool news = was || attempt == 1 || !same_reason(f->why, f->logged_why);
            snprintf(f->logged_why, sizeof(f->logged_why), "%s", f->why);
            ef_log(news ? EF_LOG_WARN : EF_LOG_DEBUG, "upstream stream lost; retrying",
                   "upstream", s->upstream, "error", f->why, "retry_in", d, NULL);
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += delay / 1000;
        until.tv_nsec += (long)(delay % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_mutex_lock(&f->mu);
        while (!f->stop && !f->winding_down && pthread_cond_timedwait(&f->cv, &f->mu, &until) != ETIMEDOUT) {
        }
        pthread_mutex_unlock(&f->mu);
    }
    return NULL;
}

/* The age of the persisted state, for lag reporting before the upstream is reached. */
static int last_entry_time(void *ctx, const ef_store_change *c)
{
    *(int64_t *)ctx = c->time_ns;
    return 0;
}

ef_follower *ef_follower_new(ef_sync *s)
{
    ef_follower *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->s = s;
    f->rng = (unsigned)ef_clock_mono_ns() ^ (unsigned)(uintptr_t)f;
    pthread_mutex_init(&f->mu, NULL);
    ef_cond_init_monotonic(&f->cv);
    ef_buf_init(&f->data);
    /* a dump is the whole database in one event; an entry one transaction (an import can be
     * large); anything else is small */
    size_t max = s->cfg.max_event_bytes;
    f->limits[0] = (ef_sse_limit){"txn", max ? max : EF_SYNC_MAX_ENTRY_DEFAULT};
    f->limits[1] = (ef_sse_limit){"reset", max ? max : EF_SYNC_MAX_DUMP_DEFAULT};
    ef_sse_config sc = {.limits = f->limits, .nlimits = 2, .default_max_data = SSE_MAX_SMALL_EVENT,
                        .max_line = SSE_MAX_LINE, .on_event = on_event, .ud = f};
    ef_sse_init(&f->sse, &f->data, &sc);
    ef_buf_init(&f->errbody);
    return f;
}

int ef_follower_start(ef_follower *f)
{
    uint64_t seq, first;
    ef_store_err err;
    int64_t t = 0;
    if (ef_store_seq(f->s->node->store, &seq, &first, &err) == 0 && seq >= first)
        ef_store_changes(f->s->node->store, seq - 1, 1, last_entry_time, &t, &err);
    if (t) {
        pthread_mutex_lock(&f->s->mu);
        f->s->st.last_applied_ns = t;
        pthread_mutex_unlock(&f->s->mu);
    }
    if (pthread_create(&f->thread, NULL, follower_main, f) != 0) return -1;
    f->running = true;
    return 0;
}

void ef_follower_wind_down(ef_follower *f)
{
    if (!f) return;
    pthread_mutex_lock(&f->mu);
    f->winding_down = true;
    pthread_cond_broadcast(&f->cv); /* out of a backoff sleep: no attempt is made after it */
    pthread_mutex_unlock(&f->mu);
}

void ef_follower_stop(ef_follower *f)
{
    if (!f || !f->running) return;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    f->running = false;
}

void ef_follower_free(ef_follower *f)
{
    if (!f) return;
    ef_follower_stop(f);
    ef_buf_free(&f->data);
    ef_buf_free(&f->errbody);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}
