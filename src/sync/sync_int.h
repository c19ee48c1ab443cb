/*
 * sync_int.h - what the parts of src/sync share: the ef_sync object, the feed and follower
 * handles, and the replication status they report. Not for use outside src/sync.
 *
 * Locking: `mu` guards the status fields and is the mutex of `cv`, which version waiters sleep on.
 * It is held only for short field updates: never while calling the store, libcurl or
 * ef_http_stream_wake, so it can be taken from a registry listener (which runs under the store's
 * writer lock).
 */
#ifndef EF_SYNC_SYNC_INT_H
#define EF_SYNC_SYNC_INT_H

#include <pthread.h>

#include "base/buf.h"
#include "sync/cluster_view.h"
#include "sync/sync.h"

/* Seconds between heartbeats on the feed; a follower drops a link silent for HEARTBEAT_DEAD_S. */
#define EF_SYNC_HEARTBEAT_MS 1000
#define EF_SYNC_HEARTBEAT_DEAD_S 3
/* A link must also complete events: from the last complete event (a heartbeat, an entry, a dump)
 * on, it has to deliver at least EF_SYNC_EVENT_MIN_RATE bytes per second on average once
 * EF_SYNC_HEARTBEAT_DEAD_S have passed, or the follower drops it as dead. Bytes alone are no sign
 * of life: a link trickling 30 bytes a second kept a replica "connected, lag 0" for as long as one
 * entry took to crawl through, with the heartbeats queued behind it. 16 KiB/s lets a 256 MiB
 * entry (the largest a follower takes by default) through in under 5 hours. */
#define EF_SYNC_EVENT_MIN_RATE 16384
/* How long after the last heartbeat that showed a connected replica in sync its lag is still the
 * upstream's own: one heartbeat period and some slack for scheduling. Past it, the time since that
 * heartbeat is added (a heartbeat stuck behind a slow entry does not keep the lag at 0). */
#define EF_SYNC_LAG_SLACK_MS 1500
/* The most lag a follower takes from its upstream's heartbeats (about 31 years): more than any
 * real one, and few enough digits for /ready and /metrics. */
#define EF_SYNC_LAG_MAX_S 1e9
/* The feed thread's timed round, when nothing kicks it: trims the log, sends heartbeats. */
#define EF_FEED_ROUND_MS 250

typedef struct ef_feed ef_feed;
typedef struct ef_follower ef_follower;
typedef struct ef_cluster_hub ef_cluster_hub;
typedef struct ef_waits ef_waits;
typedef struct ef_forwarder ef_forwarder;
typedef struct ef_cluster_tree ef_cluster_tree;
typedef struct ef_reporter ef_reporter;

/* A suspended request waiting for the node to reach `version` (waits.c). Owned by its creator
 * (usually in the request's arena); done() runs once, on the waits thread, the draining one or
 * the one releasing a hold (ef_waits_release), without locks held, and must complete the request
 * (answer it and/or ef_http_resume). */
typedef struct ef_wait {
    uint64_t version;
    /* and the history that version is on ("" for any: a min-version read, or an upstream that does
     * not say): a version of another history is no version of this one (a primary restarted on a
     * fresh database numbers its writes from 1 again) */
    char history[EF_STORE_ID_MAX + 1];
    int64_t deadline_ns; /* monotonic */
    void (*done)(struct ef_wait *w, bool reached);
    void *ctx;
    bool reached;
    struct ef_wait *next;
} ef_wait;

/* The header that names a replica's stream to its upstream on the writes it forwards there: the
 * feed gives every stream a random key in its answer's headers (feed.c), and a forwarded write that
 * carries the key of a stream that is live, from that stream's address, comes from a replica that
 * follows this node, whose X-Edgeflag-Forwarded-For (the caller's address it saw) is kept. */
#define EF_FORWARD_KEY_HEADER "X-Edgeflag-Forward-Key"
#define EF_FORWARD_KEY_MAX 64

/* A libcurl header callback's line "Name: value\r\n": when the header is `name` (any case),
 * copies its value without the surrounding blanks into dst (cut to cap - 1 bytes) and returns
 * true. */
bool ef_sync_header_value(const char *line, size_t n, const char *name, char *dst, size_t cap);

/* Replication status, under ef_sync.mu. Times are wall-clock ns (0: never). */
typedef struct ef_sync_status {
    bool connected;          /* the follower has a live stream from its upstream */
    uint64_t upstream_head;  /* the upstream's seq, from its last heartbeat */
    double upstream_lag_s;   /* the upstream's own lag, from its last heartbeat */
    int64_t synced_at_ns;    /* last time this node was known to hold everything upstream had */
    int64_t last_applied_ns; /* last time a transaction or dump was applied (or written) here */
    uint64_t reconnects;     /* streams that ended and were retried */
    uint64_t dumps_loaded;   /* bootstraps and re-dumps after a trimmed position */
    uint64_t applied;        /* transactions applied from upstream */
    uint64_t forwarded;      /* writes forwarded upstream (any answer) */
    uint64_t forward_failed; /* writes refused because the upstream was unreachable */
    bool has_state;          /* a replica that holds a state (persisted, dumped or in sync) */
    bool heard_upstream;     /* a heartbeat has arrived since start (upstream_head is real) */
    bool recovering;         /* may be behind what it served before a restart (cfg.recovering) */
    /* what the upstream sent that could not be used (follower.c); cleared by progress */
    uint64_t apply_failures; /* entries or dumps that failed to apply (counter) */
    uint64_t protocol_errors; /* streams dropped for breaking a bound (counter) */
    unsigned apply_backoff_ms; /* the wait before retrying them (0: not stuck) */
    char stuck[400];         /* why this replica cannot progress ("" when it can) */
    char link_error[400];    /* why the last connection to the upstream failed or ended ("" once
                              * a stream is live again): a refused certificate, a refused port */
    char upstream_name[EF_NODE_NAME_MAX + 1]; /* the upstream's name, from its heartbeats */
} ef_sync_status;

struct ef_sync {
    ef_node *node;
    ef_sync_config cfg;  /* strings are owned copies */
    char *upstream;      /* owned; without a trailing slash */
    char *upstream_token;
    char *tls_files[3];  /* owned copies of cfg.upstream_tls's CA, certificate and key */
    bool replica;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* broadcast whenever the version rises or the status changes */
    ef_sync_status st;
    /* under mu: the key of this replica's live stream from its upstream ("" without one) */
    char forward_key[EF_FORWARD_KEY_MAX + 1];
    /* a primary's history, read once at start: only a replica's changes while it runs (it loads
     * dumps), so a primary's write answers name it without a store read each ("" unknown) */
    char primary_history[EF_STORE_ID_MAX + 1];
    uint64_t status_gen; /* +1 on every status change (cluster stream), under mu */
    ef_feed *feed;
    ef_follower *follower;
    ef_cluster_hub *cluster;
    ef_waits *waits;        /* suspended requests waiting for a version (every node) */
    ef_forwarder *forwarder; /* a replica's writes in flight to the upstream */
    ef_cluster_tree *tree;   /* the cluster picture this node holds (tree.c) */
    ef_reporter *reporter;   /* a replica's reports to its upstream (reporter.c) */
    /* edgeflag_replication_stage_seconds{stage}: where a write's propagation time goes (issue 11:
     * feed_wake on a primary; commit_to_receive and replica_apply on a replica). NULL: none. */
    ef_metric_family *stage_seconds;
    bool started;
};

/* Records one stage's duration (any thread; nothing when the node has no metrics). */
void ef_sync_observe_stage(ef_sync *s, const char *stage, double seconds);

/* Raises the node's version to v (never lowers it) and wakes version waiters. Any thread. */
void ef_sync_version_raised(ef_sync *s, uint64_t v);
/* Marks a status change (bumps status_gen, wakes waiters). Caller holds s->mu. */
void ef_sync_status_changed_locked(ef_sync *s);
/* This node's replication lag in seconds (0 on a primary). Caller holds s->mu. */
double ef_sync_lag_locked(const ef_sync *s, int64_t now_ns);
/* The cluster status document (GET /edgeflag/v1/cluster) into out. */
void ef_sync_status_json(ef_sync *s, ef_buf *out);

/* feed.c */
ef_feed *ef_feed_new(ef_sync *s);
int ef_feed_start(ef_feed *f);
void ef_feed_stop(ef_feed *f);
void ef_feed_free(ef_feed *f);
/* Makes the feed look at the store now (after a write or an apply). Any thread, never blocks
 * on the store. */
void ef_feed_kick(ef_feed *f);
/* ef_feed_kick after a write of this node's own has been published: no kick when the writer's
 * thread already sent every entry committed so far (ef_feed_committed); the feed's timed round
 * does the rest of its work (trimming, heartbeats) anyway. */
void ef_feed_kick_written(ef_feed *f);
/* A write this node committed (its change-log entry), before its publish: kept for the feed to
 * send without reading the store, and queued to every subscriber at once when 16 or fewer follow
 * and the feed thread is not in a round (else the feed thread is woken for it). Copies; never
 * waits for the store or for the feed thread's round (only for a subscriber's buffer lock). */
void ef_feed_committed(ef_feed *f, const ef_store_change *c);
int ef_feed_register(ef_router *r, ef_feed *f);
/* Around a dump load on this node (the follower's reset): begin waits for the feed's round in
 * progress and holds off the next, so no round reads the store partly before and partly after the
 * load; end lets rounds run again. When the load replaced the state (or may have: it failed after
 * its commit), end also ends every downstream stream checked against the old state, so each
 * follower reconnects and its history and position are checked against the new one, and it
 * remembers a dump that took this node back on its history: a follower ahead of it on the branch
 * that was undone gets a dump instead of waiting. The caller holds no other lock; NULL: nothing. */
typedef struct ef_feed_reset {
    bool replaced;           /* the load changed the state (it succeeded, or the position moved) */
    uint64_t was_seq, seq;   /* this node's position before and after the load */
    const char *was_history, *history; /* and its history ("" when it has none) */
} ef_feed_reset;
void ef_feed_reset_begin(ef_feed *f);
void ef_feed_reset_end(ef_feed *f, const ef_feed_reset *r);
/* Full dumps this feed built and gave out again (a later follower starting from one still
 * fresh), and how many are alive (queued or being sent); all 0 for NULL. */
typedef struct ef_feed_dumps {
    uint64_t built, reused;
    int live;
} ef_feed_dumps;
void ef_feed_get_dumps(ef_feed *f, ef_feed_dumps *out);
/* What the feed holds for its streams besides dumps (its budget, ef_sync_config.feed_budget): the
 * total at its last check, the entry blocks alive, and the streams it ended for it; 0 for NULL. */
typedef struct ef_feed_memory {
    uint64_t held_bytes, entry_bytes, evicted;
} ef_feed_memory;
void ef_feed_get_memory(ef_feed *f, ef_feed_memory *out);
/* Appends [{"peer":..,"since":N,"connectedAt":..},..] of the current subscribers. */
void ef_feed_downstream_json(ef_feed *f, ef_buf *out);
unsigned ef_feed_subscribers(ef_feed *f);
/* Whether key is the key of a live downstream stream whose peer has the same address (the port
 * aside) as peer: the request comes from a replica that follows this node. */
bool ef_feed_is_downstream(ef_feed *f, const char *key, const char *peer);

/* heartbeat.c: the data of a heartbeat event, checked (a follower believes it: its upstream's
 * head decides whether it says it is in sync). */
typedef struct ef_heartbeat {
    uint64_t head;  /* the upstream's position: an exact integer, at most INT64_MAX */
    double lag_s;   /* the upstream's lag: 0 when absent or negative, at most EF_SYNC_LAG_MAX_S */
    char history[EF_STORE_ID_MAX + 1]; /* "" when absent */
    char node[EF_NODE_NAME_MAX + 1];   /* "" when absent or not a valid name */
} ef_heartbeat;
/* 0, or -1 with why filled for data that is not a heartbeat: not a JSON object, a head that is
 * not an exact position, a lagSeconds that is not a number, a history that is not one. */
int ef_heartbeat_parse(const char *p, size_t n, ef_heartbeat *out, char *why, size_t cap);
/* Whether s is a history id as a store makes it: 1 to EF_STORE_ID_MAX lower-case hex digits. */
bool ef_sync_history_valid(ef_bytes s);

/* follower.c */
ef_follower *ef_follower_new(ef_sync *s);
int ef_follower_start(ef_follower *f);
/* The node is stopping (ef_sync_drain): the stream being followed is kept until ef_follower_stop
 * (writes still draining may wait for their apply), but one that ends is not resumed. */
void ef_follower_wind_down(ef_follower *f);
void ef_follower_stop(ef_follower *f);
void ef_follower_free(ef_follower *f);

/* waits.c */
ef_waits *ef_waits_new(ef_node *node);
int ef_waits_start(ef_waits *w);
/* Parks w; false (nothing parked) when draining or not started. */
bool ef_waits_add(ef_waits *w, ef_wait *x);
/* The history this node's version is on, for waits that name one (the follower sets it when it
 * connects, and around a dump: NULL or "" while a load may be changing it, and for a replica that
 * holds no history yet; then no wait naming a history is reached). Kicks the waits. */
void ef_waits_set_history(ef_waits *w, const char *history);
/* Whether this node has reached version on history ("" or NULL: any history). */
bool ef_waits_reached(ef_waits *w, uint64_t version, const char *history);
/* The version may have risen: look at the parked waits. Any thread; never blocks for long. */
void ef_waits_kick(ef_waits *w);
/* Around a step that raises the version on the caller's own thread (the follower's apply): kicks
 * in between wake nobody, and ef_waits_release completes the waits they reached right there, on
 * the caller's thread with no lock held, one thread hop fewer for every waiting request. The
 * caller must hold no lock a done() takes. Deadlines stay the waits thread's. */
void ef_waits_hold(ef_waits *w);
void ef_waits_release(ef_waits *w);
unsigned ef_waits_count(ef_waits *w);
/* Whether a kick (or an added wait) is still to be looked at by the waits thread: false once the
 * thread has checked every parked wait against the version since (the tests wait for that). */
bool ef_waits_kick_pending(ef_waits *w);
/* Completes every parked wait now (reached or not) and refuses new ones. */
void ef_waits_drain(ef_waits *w);
void ef_waits_free(ef_waits *w);

/* forwarder.c: a replica's writes, sent upstream with the caller's credentials by one thread
 * (libcurl's multi interface) while the requests are suspended. */
ef_forwarder *ef_forwarder_new(ef_sync *s);
int ef_forwarder_start(ef_forwarder *f);
/* Forwards req (suspending it) or answers it at once (over the cap, shutting down, no memory). */
void ef_forward_write(ef_sync *s, ef_http_req *req);
/* Lets the writes in flight finish for up to grace_ms, then ends the rest with a 503 that says
 * they may have been applied; refuses new ones. */
void ef_forwarder_drain(ef_forwarder *f, unsigned grace_ms);
unsigned ef_forwarder_inflight(ef_forwarder *f);
void ef_forwarder_free(ef_forwarder *f);

/* tree.c: the cluster picture (cluster_view.h has the shapes) */
ef_cluster_tree *ef_tree_new(ef_sync *s);
void ef_tree_free(ef_cluster_tree *t);
/* A primary's commit (the commit listener): a write for the timelines, applied here at once. */
void ef_tree_committed(ef_cluster_tree *t, const ef_store_change *c);
/* A replica applied seq at applied_ns, which the primary committed at committed_ns (wall clock). */
void ef_tree_applied(ef_cluster_tree *t, uint64_t seq, int64_t committed_ns, int64_t applied_ns);
/* This node and below (everything: false, a report), or everything it can see (true). */
void ef_tree_build(ef_cluster_tree *t, ef_cluster_view *v, bool everything);
/* A report from a replica below (its first node is the reporter; in is modified). 0, -1 for a
 * report that cannot be taken (err), -2 when no room is left for another reporter. */
int ef_tree_report(ef_cluster_tree *t, ef_cluster_view *in, char *err, size_t errlen);
/* A replica: the view its upstream answered with. */
void ef_tree_upstream_view(ef_cluster_tree *t, const ef_cluster_view *v);
/* "nodes":[..],"writes":[..] of the public document (members, without braces). */
void ef_tree_put_json(ef_cluster_tree *t, ef_buf *out);

/* reporter.c */
ef_reporter *ef_reporter_new(ef_sync *s);
int ef_reporter_start(ef_reporter *r);
void ef_reporter_stop(ef_reporter *r);
void ef_reporter_free(ef_reporter *r);
/* Report soon (a write was applied here, or a replica below reported). Any thread; NULL: nothing. */
void ef_reporter_kick(ef_reporter *r);
int ef_reporter_register(ef_router *r, ef_sync *s);

/* status.c: the cluster status stream hub */
ef_cluster_hub *ef_cluster_hub_new(ef_sync *s);
int ef_cluster_hub_start(ef_cluster_hub *h);
void ef_cluster_hub_stop(ef_cluster_hub *h);
void ef_cluster_hub_free(ef_cluster_hub *h);
int ef_cluster_register(ef_router *r, ef_cluster_hub *h);

#endif
