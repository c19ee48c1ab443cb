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
#include "sync/sync.h"

/* Seconds between heartbeats on the feed; a follower drops a link silent for HEARTBEAT_DEAD_S. */
#define EF_SYNC_HEARTBEAT_MS 1000
#define EF_SYNC_HEARTBEAT_DEAD_S 3

typedef struct ef_feed ef_feed;
typedef struct ef_follower ef_follower;
typedef struct ef_cluster_hub ef_cluster_hub;

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
} ef_sync_status;

struct ef_sync {
    ef_node *node;
    ef_sync_config cfg;  /* strings are owned copies */
    char *upstream;      /* owned; without a trailing slash */
    char *upstream_token;
    bool replica;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* broadcast whenever the version rises or the status changes */
    ef_sync_status st;
    uint64_t status_gen; /* +1 on every status change (cluster stream), under mu */
    ef_feed *feed;
    ef_follower *follower;
    ef_cluster_hub *cluster;
    bool started;
};

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
int ef_feed_register(ef_router *r, ef_feed *f);
/* Appends [{"peer":..,"since":N,"connectedAt":..},..] of the current subscribers. */
void ef_feed_downstream_json(ef_feed *f, ef_buf *out);
unsigned ef_feed_subscribers(ef_feed *f);

/* follower.c */
ef_follower *ef_follower_new(ef_sync *s);
int ef_follower_start(ef_follower *f);
void ef_follower_stop(ef_follower *f);
void ef_follower_free(ef_follower *f);

/* forwarder.c: a replica's write, sent upstream with the caller's credentials. */
void ef_forward_write(ef_sync *s, ef_http_req *req);

/* status.c: the cluster status stream hub */
ef_cluster_hub *ef_cluster_hub_new(ef_sync *s);
int ef_cluster_hub_start(ef_cluster_hub *h);
void ef_cluster_hub_stop(ef_cluster_hub *h);
void ef_cluster_hub_free(ef_cluster_hub *h);
int ef_cluster_register(ef_router *r, ef_cluster_hub *h);

#endif
