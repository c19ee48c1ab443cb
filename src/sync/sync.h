/*
 * sync.h - edge replication: the change-log feed every node serves (feed.c), the follower a
 * replica runs against its upstream (follower.c), write forwarding and version waits (forwarder.c),
 * and the cluster status, readiness and metrics built on them (status.c). docs/replication.md is
 * the user's view.
 *
 * One ef_sync per running server, owned by cmd_serve: created before the routes are registered,
 * started before the HTTP server, stopped after it. It must never let a node's version go
 * backwards, never serve a half-applied upstream transaction, and never make an outbound call
 * without a timeout.
 */
#ifndef EF_SYNC_SYNC_H
#define EF_SYNC_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/node.h"
#include "base/tls_client.h"
#include "http/http.h"

typedef struct ef_sync ef_sync;

/* A member a cluster report carries besides the view (the evaluation activity: api/activity_peers.h),
 * given by the composition root so sync never calls up into api. write appends the member's JSON
 * value to body (full: everything, not only what changed lately); check decodes a received member
 * (NULL: absent) whole into *checked before anything of the report is kept, or returns -1 with a
 * message (the report is refused with it); apply keeps it for the nodes in_view(name, view)
 * accepts; discard frees what check made. All NULL: reports carry no such member. */
typedef struct ef_report_member {
    void *ctx;
    void (*write)(void *ctx, bool full, ef_buf *body);
    int (*check)(void *ctx, const ef_json *member, void **checked, char *err, size_t errlen);
    void (*apply)(void *ctx, void *checked, bool (*in_view)(const char *node, void *view), void *view);
    void (*discard)(void *checked);
} ef_report_member;

typedef struct ef_sync_config {
    const char *upstream;         /* replica mode: base URL of the node to follow; NULL otherwise */
    const char *upstream_token;   /* bearer token for the upstream's feed (or NULL) */
    ef_tls_client upstream_tls;   /* an https:// upstream: CA and client certificate (files
                                   * checked at ef_sync_new); verification is always on */
    unsigned write_wait_ms;       /* forwarded write: how long to wait until it is applied here */
    unsigned min_version_wait_ms; /* X-Edgeflag-Min-Version: how long a request may wait */
    unsigned max_staleness_s;     /* readiness fails when lag exceeds this (0: never) */
    uint64_t log_keep_entries;    /* change-log retention by count (0: keep everything) */
    unsigned log_max_age_s;       /* change-log retention by age (0: keep everything) */
    size_t max_event_bytes;       /* largest change-log entry or dump a follower accepts from its
                                   * upstream (0: EF_SYNC_MAX_ENTRY_DEFAULT / _DUMP_DEFAULT) */
    unsigned dump_reuse_ms;       /* how long a dump built for downstream nodes is given to the
                                   * next ones asking (0: EF_SYNC_DUMP_REUSE_MS_DEFAULT); not a
                                   * setting of `serve`: tests shorten it */
    uint64_t dump_min_rate;       /* bytes per second a downstream node must take a dump at, after
                                   * dump_grace_s, or its connection is closed (0:
                                   * EF_SYNC_DUMP_MIN_RATE_DEFAULT): a reader trickling a dump
                                   * would hold it, and one of the two dumps kept at once */
    unsigned dump_grace_s;        /* (0: EF_SYNC_DUMP_GRACE_S_DEFAULT); not a setting of `serve` */
    uint64_t feed_budget;         /* bytes the feed queues for all downstream streams together
                                   * (entry blocks shared by several counted once, dumps apart);
                                   * past it the stream holding the most is ended (0:
                                   * EF_SYNC_FEED_BUDGET_DEFAULT) */
    /* The replica's store may have lost entries it had applied and served (a machine restart
     * with batched durability: ef_sqlite_opts.may_have_lost). Until it has caught up with its
     * upstream it says so: /ready answers 503 and ef_sync_recovering is true. */
    bool recovering;
    ef_report_member activity; /* member "activity" of cluster reports (see above) */
} ef_sync_config;

#define EF_SYNC_MAX_ENTRY_DEFAULT ((size_t)256 << 20)
#define EF_SYNC_MAX_DUMP_DEFAULT ((size_t)1 << 30)
#define EF_SYNC_DUMP_REUSE_MS_DEFAULT 2000
#define EF_SYNC_DUMP_MIN_RATE_DEFAULT ((uint64_t)1 << 20)
#define EF_SYNC_DUMP_GRACE_S_DEFAULT 30
#define EF_SYNC_FEED_BUDGET_DEFAULT ((uint64_t)64 << 20)

/* Copies cfg. Returns NULL with a message in err. The node's store may be NULL (directory or
 * snapshot mode): then only the status routes exist. */
ef_sync *ef_sync_new(ef_node *node, const ef_sync_config *cfg, char *err, size_t errlen);
/* Starts the feed thread and, in replica mode, the follower. Returns 0 or -1 with err. */
int ef_sync_start(ef_sync *s, char *err, size_t errlen);
/* Answers every suspended request (forwarded writes get up to grace_ms to finish; version waits
 * end at once) and refuses new waits. From its start on, the node is stopping for the follower: a
 * stream from the upstream that ends is not resumed. Call after ef_http_server_quiesce and before
 * ef_http_server_stop: a server must not stop with suspended requests. */
void ef_sync_drain(ef_sync *s, unsigned grace_ms);
/* Stops every thread and closes every outbound connection; call after the HTTP server stopped. */
void ef_sync_stop(ef_sync *s);
/* True while a replica started with cfg.recovering has not caught up with its upstream yet. */
bool ef_sync_recovering(ef_sync *s);
void ef_sync_free(ef_sync *s);

/* Routes: GET /edgeflag/v1/replication/stream, /edgeflag/v1/cluster, /edgeflag/v1/cluster/stream,
 * /ready. Registered from ef_api_register; node->sync must be set (NULL registers nothing). */
int ef_api_register_sync(ef_router *r, ef_node *node);

/* The `before` hook part: X-Edgeflag-Min-Version waits (on routes that answer from the node's
 * state), and on a replica the forwarding of routes that write. Returns true when it answered or
 * suspended the request. Never blocks: waiting requests are suspended (ef_http_suspend). */
bool ef_sync_before(ef_sync *s, ef_http_req *req);
/* The `finish` hook part: on a primary, after a route that writes, X-Edgeflag-Version is the
 * store's seq after it (also for writes that publish no snapshot, like token changes), and the
 * feed is woken. Other routes cost nothing here. */
void ef_sync_finish(ef_sync *s, ef_http_req *req);
/* Whether req comes from a replica that follows this node: it carries X-Edgeflag-Forward-Key, the
 * key of one of this node's live downstream streams, from that stream's host. Only such a
 * request's X-Edgeflag-Forwarded-For and X-Edgeflag-Forwarded-By (what a replica reports about
 * its own caller) are believed; a client that sends them is recorded as itself. */
bool ef_sync_from_downstream(ef_sync *s, ef_http_req *req);

/* An ef_store_change_fn for ef_store_on_commit (ctx: the ef_sync): a primary's replication feed
 * sends each committed entry at once instead of after the store's republish. Ignored on a
 * replica. Returns 0. */
int ef_sync_committed(void *sync, const ef_store_change *c);

#endif
