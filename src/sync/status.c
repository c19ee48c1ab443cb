/*
 * status.c - the ef_sync object and what it reports: version waits, replication lag, the cluster
 * status document and its stream (GET /edgeflag/v1/cluster[/stream], the web UI's contract),
 * readiness (GET /ready) and the replication metrics.
 *
 * Readiness is not liveness: /health stays 200 while the process works; /ready says whether this
 * node has a state worth serving and how old it is. Nothing here may block on the network or hold
 * ef_sync.mu while calling the store or waking a stream.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "base/clock.h"
#include "base/cnum.h"
#include "base/json.h"
#include "base/log.h"
#include "sync/sync_int.h"
#include "base/thread.h"

/* ---- versions and status ---- */

void ef_sync_status_changed_locked(ef_sync *s)
{
    s->status_gen++;
    pthread_cond_broadcast(&s->cv);
    ef_waits_kick(s->waits); /* the version may have risen: suspended requests look again */
}

void ef_sync_version_raised(ef_sync *s, uint64_t v)
{
    if (ef_node_version(s->node) >= v) return;
    ef_node_raise_version(s->node, v);
    pthread_mutex_lock(&s->mu);
    ef_sync_status_changed_locked(s);
    pthread_mutex_unlock(&s->mu);
}

/* Registry listener: the node's own listener raised the version already; wake waiters. */
static void on_publish(ef_bytes ns, void *ctx)
{
    (void)ns;
    ef_sync *s = ctx;
    pthread_mutex_lock(&s->mu);
    ef_sync_status_changed_locked(s);
    pthread_mutex_unlock(&s->mu);
}

static void deadline_after(struct timespec *t, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, t);
    t->tv_sec += ms / 1000;
    t->tv_nsec += (ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) t->tv_sec++, t->tv_nsec -= 1000000000L;
}

double ef_sync_lag_locked(const ef_sync *s, int64_t now)
{
    if (!s->replica) return 0;
    const ef_sync_status *st = &s->st;
    /* In sync as of the last heartbeat or entry (synced_at_ns): the upstream's lag, for one
     * heartbeat period; after that the quiet time counts, so a link whose heartbeats stopped
     * arriving (stuck behind an entry trickling in) shows its staleness before it is dropped. */
    if (st->connected && st->synced_at_ns && ef_node_version(s->node) >= st->upstream_head) {
        double quiet = (double)(now - st->synced_at_ns) / 1e9 - EF_SYNC_LAG_SLACK_MS / 1000.0;
        return st->upstream_lag_s + (quiet > 0 ? quiet : 0);
    }
    int64_t since = st->synced_at_ns ? st->synced_at_ns
                    : st->last_applied_ns ? st->last_applied_ns
                                          : s->node->started_ns;
    double lag = (double)(now - since) / 1e9 + (st->synced_at_ns ? st->upstream_lag_s : 0);
    return lag < 0 ? 0 : lag;
}

static void put_time_or_null(ef_buf *out, int64_t ns)
{
    if (!ns) {
        ef_buf_puts(out, "null");
        return;
    }
    char t[EF_RFC3339_MAX];
    ef_rfc3339_format(ns, t);
    ef_json_put_cstr(out, t);
}

void ef_sync_status_json(ef_sync *s, ef_buf *out)
{
    int64_t now = ef_clock_wall_ns();
    pthread_mutex_lock(&s->mu);
    ef_sync_status st = s->st;
    double lag = ef_sync_lag_locked(s, now);
    pthread_mutex_unlock(&s->mu);
    ef_buf_puts(out, "{\"name\":");
    ef_json_put_cstr(out, s->node->name ? s->node->name : "edgeflag");
    ef_buf_puts(out, ",\"role\":");
    ef_json_put_cstr(out, s->node->role ? s->node->role : "primary");
    ef_buf_printf(out, ",\"version\":%" PRIu64 ",\"upstream\":", ef_node_version(s->node));
    if (s->upstream)
        ef_json_put_cstr(out, s->upstream);
    else
        ef_buf_puts(out, "null");
    /* a node without an upstream is the source of its own state: it is never "disconnected" */
    ef_buf_printf(out, ",\"connected\":%s,\"lagSeconds\":", s->replica ? (st.connected ? "true" : "false") : "true");
    ef_json_put_double(out, lag);
    ef_buf_puts(out, ",\"lastAppliedAt\":");
    put_time_or_null(out, st.last_applied_ns);
    ef_buf_puts(out, ",\"upstreamName\":");
    if (s->replica && st.upstream_name[0])
        ef_json_put_cstr(out, st.upstream_name);
    else
        ef_buf_puts(out, "null");
    ef_buf_printf(out, ",\"reconnects\":%" PRIu64 ",\"downstream\":", st.reconnects);
    ef_feed_downstream_json(s->feed, out);
    ef_buf_putc(out, ',');
    ef_tree_put_json(s->tree, out);
    ef_buf_putc(out, '}');
}

/* ---- routes ---- */

static void on_cluster(ef_http_req *req, void *ctx)
{
    ef_sync_status_json(ctx, ef_http_out(req));
    ef_http_reply(req, 200);
}

/* GET /ready[?maxStaleness=SECONDS]: 200 when this node has a state no older than allowed. */
static void on_ready(ef_http_req *req, void *ctx)
{
    ef_sync *s = ctx;
    double max = s->cfg.max_staleness_s;
    const char *q = ef_http_query(req, "maxStaleness");
    if (q && *q) {
        char *end;
        max = ef_strtod_c(q, &end);
        if (*end == 's' && end[1] == '\0') end++;
        if (*end || max < 0) {
            ef_http_bad_request(req, "invalid maxStaleness '%s': want seconds, e.g. 5 or 2.5s", q);
            return;
        }
    }
    int64_t now = ef_clock_wall_ns();
    pthread_mutex_lock(&s->mu);
    double lag = ef_sync_lag_locked(s, now);
    bool connected = s->replica ? s->st.connected : true;
    bool has_state = s->replica ? s->st.has_state : true;
    char stuck[sizeof(s->st.stuck)], link[sizeof(s->st.link_error)];
    memcpy(stuck, s->st.stuck, sizeof(stuck));
    bool recovering = s->st.recovering;
    memcpy(link, s->st.link_error, sizeof(link));
    pthread_mutex_unlock(&s->mu);
    if (connected) link[0] = '\0';
    const char *reason = NULL;
    char why[sizeof(stuck) + sizeof(link) + 40];
    if (recovering) {
        reason = "recovering: the previous run of this replica stopped without a clean close (a "
                 "crash of the process or the machine) while entries it had applied were not yet "
                 "written or synced to disk, so it may be behind a version it served before; it "
                 "serves its durable state until it has caught up with its upstream";
    } else if (stuck[0]) {
        /* it cannot bring its state forward: say why rather than look healthy (or merely empty) */
        snprintf(why, sizeof(why), "replication is stuck: %s", stuck);
        reason = why;
    } else if (!has_state) {
        snprintf(why, sizeof(why), "no state yet: the replica has not loaded anything from its upstream%s%s",
                 link[0] ? " (" : "", link[0] ? link : "");
        if (link[0]) strcat(why, ")");
        reason = why;
    } else if (max > 0 && lag > max) {
        snprintf(why, sizeof(why), "state is %.3f s old, more than the allowed %.3f s", lag, max);
        reason = why;
    }
    ef_buf *out = ef_http_out(req);
    ef_buf_printf(out, "{\"ready\":%s,\"role\":", reason ? "false" : "true");
    ef_json_put_cstr(out, s->node->role ? s->node->role : "primary");
    ef_buf_printf(out, ",\"version\":%" PRIu64 ",\"hasState\":%s,\"connected\":%s,\"recovering\":%s,\"lagSeconds\":",
                  ef_node_version(s->node), has_state ? "true" : "false",
                  connected ? "true" : "false", recovering ? "true" : "false");
    ef_json_put_double(out, lag);
    if (link[0]) { /* why the upstream cannot be reached now (names it; a refused certificate too) */
        ef_buf_puts(out, ",\"upstreamError\":");
        ef_json_put_cstr(out, link);
    }
    if (s->node->ready_extra) { /* degraded services are reported; they do not fail readiness */
        bool degraded = false;
        ef_buf_putc(out, ',');
        s->node->ready_extra(s->node->ready_extra_ctx, out, &degraded);
        ef_buf_printf(out, ",\"degraded\":%s", degraded ? "true" : "false");
    }
    if (reason) {
        ef_buf_puts(out, ",\"reason\":");
        ef_json_put_cstr(out, reason);
    }
    ef_buf_putc(out, '}');
    ef_http_reply(req, reason ? 503 : 200);
}

bool ef_sync_recovering(ef_sync *s)
{
    if (!s || !s->replica) return false;
    pthread_mutex_lock(&s->mu);
    bool r = s->st.recovering;
    pthread_mutex_unlock(&s->mu);
    return r;
}

static void collect_metrics(ef_buf *out, void *ctx)
{
    ef_sync *s = ctx;
    int64_t now = ef_clock_wall_ns();
    pthread_mutex_lock(&s->mu);
    ef_sync_status st = s->st;
    double lag = ef_sync_lag_locked(s, now);
    pthread_mutex_unlock(&s->mu);
    ef_buf_printf(out,
                  "# HELP edgeflag_replication_applied_seq Change-log position this node has applied.\n"
                  "# TYPE edgeflag_replication_applied_seq gauge\n"
                  "edgeflag_replication_applied_seq %" PRIu64 "\n"
                  "# HELP edgeflag_replication_lag_seconds Age of this node's state relative to the primary.\n"
                  "# TYPE edgeflag_replication_lag_seconds gauge\n"
                  "edgeflag_replication_lag_seconds %.6f\n"
                  "# HELP edgeflag_replication_connected Whether the follower has a live upstream stream (1 on a primary).\n"
                  "# TYPE edgeflag_replication_connected gauge\n"
                  "edgeflag_replication_connected %d\n"
                  "# HELP edgeflag_replication_reconnects_total Upstream streams that ended and were retried.\n"
                  "# TYPE edgeflag_replication_reconnects_total counter\n"
                  "edgeflag_replication_reconnects_total %" PRIu64 "\n"
                  "# HELP edgeflag_replication_applied_total Upstream transactions applied.\n"
                  "# TYPE edgeflag_replication_applied_total counter\n"
                  "edgeflag_replication_applied_total %" PRIu64 "\n"
                  "# HELP edgeflag_replication_dumps_loaded_total Full dumps loaded from upstream.\n"
                  "# TYPE edgeflag_replication_dumps_loaded_total counter\n"
                  "edgeflag_replication_dumps_loaded_total %" PRIu64 "\n"
                  "# HELP edgeflag_replication_forwarded_writes_total Writes forwarded upstream, by result.\n"
                  "# TYPE edgeflag_replication_forwarded_writes_total counter\n"
                  "edgeflag_replication_forwarded_writes_total{result=\"answered\"} %" PRIu64 "\n"
                  "edgeflag_replication_forwarded_writes_total{result=\"unavailable\"} %" PRIu64 "\n"
                  "# HELP edgeflag_replication_downstream_streams Replication streams served to downstream nodes.\n"
                  "# TYPE edgeflag_replication_downstream_streams gauge\n"
                  "edgeflag_replication_downstream_streams %u\n"
                  "# HELP edgeflag_replication_apply_failures_total Upstream entries or dumps this node could not apply.\n"
                  "# TYPE edgeflag_replication_apply_failures_total counter\n"
                  "edgeflag_replication_apply_failures_total %" PRIu64 "\n"
                  "# HELP edgeflag_replication_protocol_errors_total Upstream streams dropped for breaking the protocol (a line or event past its limit).\n"
                  "# TYPE edgeflag_replication_protocol_errors_total counter\n"
                  "edgeflag_replication_protocol_errors_total %" PRIu64 "\n"
                  "# HELP edgeflag_replication_apply_backoff_seconds Wait before retrying what could not be applied (0: not stuck).\n"
                  "# TYPE edgeflag_replication_apply_backoff_seconds gauge\n"
                  "edgeflag_replication_apply_backoff_seconds %.3f\n",
                  ef_node_version(s->node), lag, s->replica ? (st.connected ? 1 : 0) : 1,
                  st.reconnects, st.applied, st.dumps_loaded, st.forwarded, st.forward_failed,
                  ef_feed_subscribers(s->feed), st.apply_failures, st.protocol_errors,
                  st.apply_backoff_ms / 1000.0);
    ef_feed_dumps fd;
    ef_feed_get_dumps(s->feed, &fd);
    ef_buf_printf(out,
                  "# HELP edgeflag_replication_dumps_built_total Full dumps built for downstream nodes (one is shared by every node needing one in that round).\n"
                  "# TYPE edgeflag_replication_dumps_built_total counter\n"
                  "edgeflag_replication_dumps_built_total %" PRIu64 "\n"
                  "# HELP edgeflag_replication_dumps_reused_total Rounds that gave downstream nodes a full dump built earlier (at most 2 s and 512 entries old) instead of building one.\n"
                  "# TYPE edgeflag_replication_dumps_reused_total counter\n"
                  "edgeflag_replication_dumps_reused_total %" PRIu64 "\n"
                  "# HELP edgeflag_replication_dumps_live Full dumps held in memory for downstream nodes (one is shared by every stream sending it).\n"
                  "# TYPE edgeflag_replication_dumps_live gauge\n"
                  "edgeflag_replication_dumps_live %d\n",
                  fd.built, fd.reused, fd.live);
    ef_feed_memory fm;
    ef_feed_get_memory(s->feed, &fm);
    ef_buf_printf(out,
                  "# HELP edgeflag_replication_feed_held_bytes Bytes queued for downstream streams besides dumps (an entry shared by several counted once), at the feed's last check against sync-feed-budget.\n"
                  "# TYPE edgeflag_replication_feed_held_bytes gauge\n"
                  "edgeflag_replication_feed_held_bytes %" PRIu64 "\n"
                  "# HELP edgeflag_replication_feed_entry_block_bytes Bytes of large entries held once for every downstream stream sending them.\n"
                  "# TYPE edgeflag_replication_feed_entry_block_bytes gauge\n"
                  "edgeflag_replication_feed_entry_block_bytes %" PRIu64 "\n"
                  "# HELP edgeflag_replication_feed_evicted_total Downstream streams ended because the feed held more than sync-feed-budget for its streams (each held the most).\n"
                  "# TYPE edgeflag_replication_feed_evicted_total counter\n"
                  "edgeflag_replication_feed_evicted_total %" PRIu64 "\n",
                  fm.held_bytes, fm.entry_bytes, fm.evicted);
    if (s->replica) {
        ef_store_batches b;
        ef_store_get_batches(s->node->store, &b);
        ef_buf_printf(out,
                      "# HELP edgeflag_replica_durable_seq Change-log position this replica has synced to its disk (its batches: docs/replication.md, \"After a crash\").\n"
                      "# TYPE edgeflag_replica_durable_seq gauge\n"
                      "edgeflag_replica_durable_seq %" PRIu64 "\n"
                      "# HELP edgeflag_replica_unsynced_entries Entries applied and served but not yet synced to this replica's disk.\n"
                      "# TYPE edgeflag_replica_unsynced_entries gauge\n"
                      "edgeflag_replica_unsynced_entries %" PRIu64 "\n"
                      "# HELP edgeflag_replica_batches_total Batches of applied entries committed to this replica's file.\n"
                      "# TYPE edgeflag_replica_batches_total counter\n"
                      "edgeflag_replica_batches_total %" PRIu64 "\n"
                      "# HELP edgeflag_replica_batches_lost_total Batches whose commit failed (disk full, I/O error): their entries were applied again from upstream.\n"
                      "# TYPE edgeflag_replica_batches_lost_total counter\n"
                      "edgeflag_replica_batches_lost_total %" PRIu64 "\n"
                      "# HELP edgeflag_replica_sync_failures_total fdatasync calls on this replica's WAL that failed (retried a second later).\n"
                      "# TYPE edgeflag_replica_sync_failures_total counter\n"
                      "edgeflag_replica_sync_failures_total %" PRIu64 "\n",
                      b.durable_seq, b.applied_seq > b.durable_seq ? b.applied_seq - b.durable_seq : 0,
                      b.commits, b.lost, b.sync_failures);
    }
    ef_buf_puts(out, "# HELP edgeflag_node_info This node's name (serve --name), role and build.\n"
                     "# TYPE edgeflag_node_info gauge\nedgeflag_node_info{node=\"");
    ef_metrics_put_label_value(out, ef_bytes_of(s->node->name ? s->node->name : "edgeflag"));
    ef_buf_puts(out, "\",role=\"");
    ef_metrics_put_label_value(out, ef_bytes_of(s->node->role ? s->node->role : "primary"));
    ef_buf_puts(out, "\",build=\"" EF_VERSION "\"} 1\n");
    ef_buf_printf(out,
                  "# HELP edgeflag_waiting_requests Requests suspended until this node reaches a version (X-Edgeflag-Min-Version, forwarded writes' read-your-write).\n"
                  "# TYPE edgeflag_waiting_requests gauge\n"
                  "edgeflag_waiting_requests %u\n"
                  "# HELP edgeflag_replication_forwarded_writes_in_flight Writes sent to the upstream and not answered yet.\n"
                  "# TYPE edgeflag_replication_forwarded_writes_in_flight gauge\n"
                  "edgeflag_replication_forwarded_writes_in_flight %u\n",
                  ef_waits_count(s->waits), ef_forwarder_inflight(s->forwarder));
}

/* ---- the cluster status stream ---- */

typedef struct cl_sub cl_sub;
struct cl_sub {
    ef_cluster_hub *h;
    ef_http_stream *stream;
    uint64_t gen; /* the document generation sent last (under the stream lock via fill) */
    bool closed;  /* under h->mu */
    cl_sub *next;
};

struct ef_cluster_hub {
    ef_sync *s;
    pthread_mutex_t mu; /* the subscriber list */
    cl_sub *subs;
    pthread_mutex_t doc_mu; /* the latest document; never held while waking */
    ef_buf doc;
    uint64_t doc_gen;
    pthread_t thread;
    bool running;
    bool stop;    /* under s->mu */
    bool kicked;  /* under s->mu: a subscriber arrived, publish now */
};

static int cl_fill(void *state, ef_buf *out, ef_shared **block)
{
    (void)block; /* bytes only */
    cl_sub *c = state;
    int r = 0;
    pthread_mutex_lock(&c->h->doc_mu);
    if (c->h->doc_gen && c->gen != c->h->doc_gen) {
        ef_buf_puts(out, "event: status\ndata: ");
        ef_buf_append(out, c->h->doc.data, c->h->doc.len);
        ef_buf_puts(out, "\n\n");
        c->gen = c->h->doc_gen;
        r = 1;
    }
    pthread_mutex_unlock(&c->h->doc_mu);
    return r;
}

static void cl_done(void *state)
{
    cl_sub *c = state;
    ef_cluster_hub *h = c->h;
    pthread_mutex_lock(&h->mu);
    for (cl_sub **pp = &h->subs; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    pthread_mutex_unlock(&h->mu);
    free(c);
}

static void cl_publish(ef_cluster_hub *h)
{
    ef_buf doc;
    ef_buf_init(&doc);
    ef_sync_status_json(h->s, &doc);
    if (!ef_buf_ok(&doc)) {
        ef_buf_free(&doc);
        return;
    }
    pthread_mutex_lock(&h->doc_mu);
    ef_buf old = h->doc;
    h->doc = doc;
    h->doc_gen++;
    pthread_mutex_unlock(&h->doc_mu);
    ef_buf_free(&old);
    pthread_mutex_lock(&h->mu);
    for (cl_sub *c = h->subs; c; c = c->next) ef_http_stream_wake(c->stream);
    pthread_mutex_unlock(&h->mu);
}

/* Whether any stream is subscribed. Taken under s->mu by cl_main: the lock order is s->mu, then
 * h->mu (nothing takes s->mu while holding h->mu). */
static bool has_subscribers(ef_cluster_hub *h)
{
    pthread_mutex_lock(&h->mu);
    bool any = h->subs != NULL;
    pthread_mutex_unlock(&h->mu);
    return any;
}

/* Publishes the status on every change, at most every 50 ms, and at least every second, while
 * someone subscribes. With nobody subscribed it builds nothing and sets no timer: the document is
 * a few hundred bytes, but building it after a second asleep took 0.7-2 ms of a core here
 * (everything it touches is cold), every second, on every node, on the core serving requests. A
 * new subscriber kicks the thread and gets a document made after it arrived (on_cluster_stream). */
static void *cl_main(void *arg)
{
    ef_thread_name("ef-status");
    ef_cluster_hub *h = arg;
    ef_sync *s = h->s;
    pthread_mutex_lock(&s->mu);
    /* gen is the generation last published: taken just before each publish (not at the top of
     * the loop), so a change landing while we publish or pause is sent at once, not a second later */
    uint64_t gen = s->status_gen;
    while (!h->stop) {
        bool wanted = has_subscribers(h);
        struct timespec until;
        deadline_after(&until, 1000);
        while (!h->stop && !h->kicked && gen == s->status_gen) {
            if (!wanted)
                pthread_cond_wait(&s->cv, &s->mu); /* nobody to send to: no timer either */
            else if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
                break;
        }
        if (h->stop) break;
        gen = s->status_gen;
        h->kicked = false;
        if (!has_subscribers(h)) continue; /* a change with nobody subscribed */
        pthread_mutex_unlock(&s->mu);
        cl_publish(h);
        struct timespec pause = {0, 50000000L};
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void on_cluster_stream(ef_http_req *req, void *ctx)
{
    ef_cluster_hub *h = ctx;
    cl_sub *c = calloc(1, sizeof(*c));
    if (!c) {
        ef_http_error(req, 500, 13, "out of memory");
        return;
    }
    c->h = h;
    /* The document on hand may be from before anyone listened (cl_main builds none then): the
     * first one this stream sends is the next, made at once for the kick below. */
    pthread_mutex_lock(&h->doc_mu);
    c->gen = h->doc_gen;
    pthread_mutex_unlock(&h->doc_mu);
    static const ef_http_stream_ops ops = {.fill = cl_fill, .done = cl_done};
    ef_http_stream *st = ef_http_reply_stream(req, 200, "text/event-stream", &ops, c);
    if (!st) {
        free(c);
        return;
    }
    pthread_mutex_lock(&h->mu);
    c->stream = st;
    c->next = h->subs;
    h->subs = c;
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_lock(&h->s->mu);
    h->kicked = true;
    pthread_cond_broadcast(&h->s->cv);
    pthread_mutex_unlock(&h->s->mu);
}

ef_cluster_hub *ef_cluster_hub_new(ef_sync *s)
{
    ef_cluster_hub *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->s = s;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->doc_mu, NULL);
    ef_buf_init(&h->doc);
    return h;
}

int ef_cluster_hub_start(ef_cluster_hub *h)
{
    if (pthread_create(&h->thread, NULL, cl_main, h) != 0) return -1;
    h->running = true;
    return 0;
}

void ef_cluster_hub_stop(ef_cluster_hub *h)
{
    if (!h || !h->running) return;
    pthread_mutex_lock(&h->s->mu);
    h->stop = true;
    pthread_cond_broadcast(&h->s->cv);
    pthread_mutex_unlock(&h->s->mu);
    pthread_join(h->thread, NULL);
    h->running = false;
}

void ef_cluster_hub_free(ef_cluster_hub *h)
{
    if (!h) return;
    ef_cluster_hub_stop(h);
    ef_buf_free(&h->doc);
    pthread_mutex_destroy(&h->doc_mu);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

int ef_cluster_register(ef_router *r, ef_cluster_hub *h)
{
    int rc = 0;
    rc |= ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/edgeflag/v1/cluster",
                                             .fn = on_cluster, .ctx = h->s, .cls = EF_ROUTE_INTERNAL});
    rc |= ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/edgeflag/v1/cluster/stream",
                                             .fn = on_cluster_stream, .ctx = h, .cls = EF_ROUTE_INTERNAL,
                                             .flags = EF_RF_STREAM});
    rc |= ef_router_add_route(r, &(ef_route){.methods = EF_GET | EF_HEAD, .pattern = "/ready",
                                             .fn = on_ready, .ctx = h->s, .cls = EF_ROUTE_OPEN});
    return rc ? -1 : 0;
}

/* ---- the object ---- */

void ef_sync_observe_stage(ef_sync *s, const char *stage, double seconds)
{
    if (!s || !s->stage_seconds) return;
    ef_bytes label = ef_bytes_of(stage);
    ef_histogram_observe(s->stage_seconds, &label, seconds < 0 ? 0 : seconds);
}

static char *dup_or_null(const char *v)
{
    return v && *v ? strdup(v) : NULL;
}

ef_sync *ef_sync_new(ef_node *node, const ef_sync_config *cfg, char *err, size_t errlen)
{
    ef_sync *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->node = node;
    s->cfg = *cfg;
    s->replica = cfg->upstream && *cfg->upstream;
    s->st.recovering = s->replica && cfg->recovering;
    pthread_mutex_init(&s->mu, NULL);
    ef_cond_init_monotonic(&s->cv);
    if (node->metrics) {
        static const double bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005,
                                        0.01, 0.025, 0.05, 0.1, 0.25, 1};
        static const char *const stage_label[] = {"stage"};
        s->stage_seconds = ef_metrics_histogram(
            node->metrics, "edgeflag_replication_stage_seconds",
            "Replication stages of a write: feed_wake (primary: commit to queued downstream), "
            "commit_to_receive (replica: primary's commit to the entry read here), replica_apply "
            "(replica: apply and publish; synced to disk in batches after).",
            1, stage_label, 8, bounds, (unsigned)(sizeof(bounds) / sizeof(bounds[0])));
    }
    if (s->replica) {
        s->upstream = strdup(cfg->upstream);
        if (!s->upstream) goto oom;
        size_t n = strlen(s->upstream);
        while (n && s->upstream[n - 1] == '/') s->upstream[--n] = '\0';
        if (strncmp(s->upstream, "http://", 7) != 0 && strncmp(s->upstream, "https://", 8) != 0) {
            snprintf(err, errlen, "--upstream must be an http:// or https:// URL, not '%s'", cfg->upstream);
            ef_sync_free(s);
            return NULL;
        }
        if (!node->store) {
            snprintf(err, errlen, "--upstream needs a database (--db) to persist the replica's state");
            ef_sync_free(s);
            return NULL;
        }
        s->upstream_token = dup_or_null(cfg->upstream_token);
        if (cfg->upstream_token && *cfg->upstream_token && !s->upstream_token) goto oom;
        const char *files[3] = {cfg->upstream_tls.ca_file, cfg->upstream_tls.cert_file, cfg->upstream_tls.key_file};
        for (int i = 0; i < 3; i++)
            if (files[i] && !(s->tls_files[i] = strdup(files[i]))) goto oom;
        s->cfg.upstream_tls = (ef_tls_client){s->tls_files[0], s->tls_files[1], s->tls_files[2], false};
        if (ef_tls_client_check(&s->cfg.upstream_tls, "upstream", err, errlen) != 0) {
            ef_sync_free(s);
            return NULL;
        }
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, errlen, "libcurl failed to initialise");
            ef_sync_free(s);
            return NULL;
        }
        if (!(s->follower = ef_follower_new(s))) goto oom;
    }
    s->cfg.upstream = s->upstream;
    s->cfg.upstream_token = s->upstream_token;
    if (node->store && !(s->feed = ef_feed_new(s))) goto oom;
    if (!(s->waits = ef_waits_new(node))) goto oom;
    if (s->replica && !(s->forwarder = ef_forwarder_new(s))) goto oom;
    if (!(s->cluster = ef_cluster_hub_new(s))) goto oom;
    if (!(s->tree = ef_tree_new(s))) goto oom;
    if (s->replica && !(s->reporter = ef_reporter_new(s))) goto oom;
    if (s->replica && node->store) {
        /* a replica restarted with its upstream down serves its persisted state at once */
        uint64_t seq = 0, first = 0;
        ef_store_err se;
        if (ef_store_seq(node->store, &seq, &first, &se) == 0 && seq > 0) s->st.has_state = true;
    }
    return s;
oom:
    snprintf(err, errlen, "out of memory");
    ef_sync_free(s);
    return NULL;
}

int ef_sync_start(ef_sync *s, char *err, size_t errlen)
{
    if (ef_registry_listen(s->node->registry, on_publish, s) != 0) {
        snprintf(err, errlen, "cannot listen to snapshot changes");
        return -1;
    }
    s->started = true;
    ef_store_identity id;
    ef_store_err se;
    if (!s->replica && s->node->store && ef_store_get_identity(s->node->store, &id, &se) == 0)
        snprintf(s->primary_history, sizeof(s->primary_history), "%s", id.history);
    if (ef_metrics_add_collector(s->node->metrics, collect_metrics, s) != 0) {
        snprintf(err, errlen, "cannot add replication metrics");
        return -1;
    }
    if (s->feed && ef_feed_start(s->feed) != 0) {
        snprintf(err, errlen, "cannot start the replication feed");
        return -1;
    }
    if (ef_cluster_hub_start(s->cluster) != 0) {
        snprintf(err, errlen, "cannot start the cluster status stream");
        return -1;
    }
    if (ef_waits_start(s->waits) != 0 || (s->forwarder && ef_forwarder_start(s->forwarder) != 0)) {
        snprintf(err, errlen, "cannot start the request-wait threads");
        return -1;
    }
    if (s->follower && ef_follower_start(s->follower) != 0) {
        snprintf(err, errlen, "cannot start the replication follower");
        return -1;
    }
    if (s->reporter && ef_reporter_start(s->reporter) != 0) {
        snprintf(err, errlen, "cannot start the cluster reports");
        return -1;
    }
    return 0;
}

void ef_sync_drain(ef_sync *s, unsigned grace_ms)
{
    if (!s) return;
    /* First: the node is stopping, so a stream from the upstream that ends from now on is not
     * resumed, nor reported as a lost link with a retry that never comes (a replica stopped with
     * its upstream, as tests and benchmarks stop them, saw the upstream's streams end while it
     * drained). The live stream is kept: the writes forwarded below may wait for their apply. */
    ef_follower_wind_down(s->follower);
    ef_forwarder_drain(s->forwarder, grace_ms); /* may park write-waits: drain those after */
    ef_waits_drain(s->waits);
}

void ef_sync_stop(ef_sync *s)
{
    if (!s) return;
    ef_sync_drain(s, 0);
    ef_reporter_stop(s->reporter);
    ef_follower_stop(s->follower);
    ef_cluster_hub_stop(s->cluster);
    ef_feed_stop(s->feed);
    if (s->started) ef_registry_unlisten(s->node->registry, on_publish, s);
    s->started = false;
}

void ef_sync_free(ef_sync *s)
{
    if (!s) return;
    ef_sync_stop(s);
    ef_forwarder_free(s->forwarder);
    ef_waits_free(s->waits);
    ef_reporter_free(s->reporter);
    ef_follower_free(s->follower);
    ef_cluster_hub_free(s->cluster);
    ef_tree_free(s->tree);
    ef_feed_free(s->feed);
    if (s->replica && s->follower) curl_global_cleanup();
    free(s->upstream);
    free(s->upstream_token);
    for (int i = 0; i < 3; i++) free(s->tls_files[i]);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int ef_api_register_sync(ef_router *r, ef_node *node)
{
    ef_sync *s = node->sync;
    if (!s) return 0;
    if (s->feed && ef_feed_register(r, s->feed) != 0) return -1;
    if (ef_reporter_register(r, s) != 0) return -1;
    return ef_cluster_register(r, s->cluster);
}
