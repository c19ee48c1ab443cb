/*
 * ns_stream.c - GET /edgeflag/v1/namespaces/{ns}/stream: server-sent events telling a subscriber
 * (the embedded client library, src/client/) that a namespace's snapshot was republished.
 *
 * Each event is `event: change` with data {"version":N,"etag":"..."}, the same version and ETag
 * the snapshot endpoint would answer now; the subscriber then refetches the snapshot with
 * If-None-Match. The first event is sent at once on connect, so a subscriber that reconnects never
 * misses a change made while it was away. A `: heartbeat` comment every few seconds lets the
 * subscriber tell a dead connection from a quiet namespace.
 *
 * It must never hold a thread per subscriber: idle connections stay suspended in the HTTP server
 * (ef_http_stream_*), and one hub per node wakes them, from the registry listener on a publish and
 * from one timer thread for heartbeats. It must never call ef_http_stream_wake after a stream's
 * done(): a subscriber leaves the hub's list in done(), under the same lock the wakers hold.
 *
 * Lock order: registry writer lock -> hub lock -> stream lock. fill() runs under the stream lock,
 * so it reads only atomics and the registry (lock-free), never the hub lock.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/node.h"
#include "base/clock.h"
#include "base/thread.h"

/* Seconds between heartbeat comments; subscribers give up on a silent stream after 3 of them. */
#define HEARTBEAT_S 5

typedef struct sub sub;

typedef struct hub {
    ef_node *node;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* wakes the heartbeat thread early only to stop it */
    sub *subs;
    bool stop;
    pthread_t thread;
} hub;

struct sub {
    hub *h;
    ef_http_stream *stream; /* set once the response is queued; NULL until then */
    char *ns;               /* owned copy of the namespace key */
    size_t ns_len;
    int change;             /* atomic: a change event is due */
    int beat;               /* atomic: a heartbeat comment is due */
    sub *prev, *next;       /* the hub's list, under hub->mu */
};

/* Appends the namespace's current version and ETag as a change event. */
static void put_change(sub *s, ef_buf *out)
{
    ef_registry *reg = s->h->node->registry;
    unsigned long long version = 0, hash = 0;
    ef_registry_read_lock(reg);
    const ef_snapshot *snap = ef_registry_get(reg, (ef_bytes){s->ns, s->ns_len});
    if (snap) {
        version = ef_snapshot_version(snap);
        hash = ef_snapshot_has_document(snap) ? ef_snapshot_document_hash(snap) : 0;
    }
    ef_registry_read_unlock(reg);
    /* the ETag spelled as the snapshot endpoint spells it for current clients (>= 1.47.0) */
    char etag[24] = "";
    if (hash || version) snprintf(etag, sizeof(etag), "%016llx", hash);
    ef_buf_printf(out, "event: change\ndata: {\"version\":%llu,\"etag\":\"%s\"}\n\n", version, etag);
}

static int sub_fill(void *state, ef_buf *out, ef_shared **block)
{
    (void)block; /* bytes only */
    sub *s = state;
    if (__atomic_exchange_n(&s->change, 0, __ATOMIC_ACQ_REL)) {
        __atomic_store_n(&s->beat, 0, __ATOMIC_RELEASE); /* the event itself shows liveness */
        put_change(s, out);
        return 1;
    }
    if (__atomic_exchange_n(&s->beat, 0, __ATOMIC_ACQ_REL)) {
        ef_buf_puts(out, ": heartbeat\n\n");
        return 1;
    }
    return 0;
}

static void sub_unlink(hub *h, sub *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else if (h->subs == s)
        h->subs = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static void sub_done(void *state)
{
    sub *s = state;
    hub *h = s->h;
    pthread_mutex_lock(&h->mu);
    sub_unlink(h, s); /* after this no waker can reach s->stream */
    pthread_mutex_unlock(&h->mu);
    free(s->ns);
    free(s);
}

/* Registry listener: runs on the publishing thread after the new snapshot is visible. */
static void on_publish(ef_bytes ns, void *ctx)
{
    hub *h = ctx;
    pthread_mutex_lock(&h->mu);
    for (sub *s = h->subs; s; s = s->next)
        if (s->ns_len == ns.n && memcmp(s->ns, ns.p, ns.n) == 0) {
            __atomic_store_n(&s->change, 1, __ATOMIC_RELEASE);
            ef_http_stream_wake(s->stream);
        }
    pthread_mutex_unlock(&h->mu);
}

/* One thread per node (not per subscriber): sets every subscriber's heartbeat and wakes it,
 * until hub_close stops it. */
static void *heartbeat_main(void *arg)
{
    ef_thread_name("ef-ns-stream");
    hub *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        /* on the monotonic clock (cv is made for it): a deadline on the wall clock, computed
         * just before the clock stepped back, stopped every subscriber's heartbeats for as long
         * as the step, and the subscribers gave up on their streams after 3 periods */
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += HEARTBEAT_S;
        while (!h->stop && pthread_cond_timedwait(&h->cv, &h->mu, &until) == 0) {
            /* only hub_close signals cv; a spurious wake-up waits out the rest of the period */
        }
        if (h->stop) break;
        for (sub *s = h->subs; s; s = s->next) {
            __atomic_store_n(&s->beat, 1, __ATOMIC_RELEASE);
            ef_http_stream_wake(s->stream);
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* Node teardown (after the HTTP server stopped, so every subscriber is gone): the listener, the
 * heartbeat thread and the hub itself. */
static void hub_close(void *ctx)
{
    hub *h = ctx;
    ef_registry_unlisten(h->node->registry, on_publish, h);
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static void on_stream(ef_http_req *req, void *ctx)
{
    hub *h = ctx;
    ef_bytes ns = ef_api_namespace(ef_http_param(req, "ns"));
    sub *s = calloc(1, sizeof(*s));
    char *copy = malloc(ns.n + 1);
    if (!s || !copy) {
        free(s);
        free(copy);
        ef_http_error(req, 500, 13, "out of memory");
        return;
    }
    memcpy(copy, ns.p, ns.n);
    copy[ns.n] = '\0';
    *s = (sub){.h = h, .ns = copy, .ns_len = ns.n, .change = 1};
    static const ef_http_stream_ops ops = {.fill = sub_fill, .done = sub_done};
    ef_http_stream *st = ef_http_reply_stream(req, 200, "text/event-stream", &ops, s);
    if (!st) { /* no response was queued, so done() will never run */
        free(s->ns);
        free(s);
        return;
    }
    /* the response is queued only after this handler returns, so done() cannot have run yet */
    pthread_mutex_lock(&h->mu);
    s->stream = st;
    s->next = h->subs;
    if (s->next) s->next->prev = s;
    h->subs = s;
    pthread_mutex_unlock(&h->mu);
}

int ef_api_register_ns_stream(ef_router *r, ef_node *node)
{
    /* The hub is the node's: ef_node_close runs hub_close. */
    hub *h = calloc(1, sizeof(*h));
    if (!h) return -1;
    h->node = node;
    pthread_mutex_init(&h->mu, NULL);
    ef_cond_init_monotonic(&h->cv); /* heartbeat_main's deadlines */
    if (pthread_create(&h->thread, NULL, heartbeat_main, h) != 0) {
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return -1;
    }
    if (ef_node_on_close(node, hub_close, h) != 0) {
        hub_close(h);
        return -1;
    }
    if (ef_registry_listen(node->registry, on_publish, h) != 0) return -1;
    return ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/edgeflag/v1/namespaces/{ns}/stream",
                                              .fn = on_stream, .ctx = h, .cls = EF_ROUTE_EVALUATION,
                                              .ns = EF_NS_PATH, .ns_param = "ns", .flags = EF_RF_STREAM});
}
