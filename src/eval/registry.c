/*
 * registry.c - RCU publication of snapshots (see registry.h).
 *
 * The registry's state is an immutable table {namespace -> handle}, each handle holding its
 * namespace's current snapshot. A publish to a known namespace swaps the handle's pointer (release)
 * and hands the snapshot it replaced to call_rcu, which frees it after a grace period; a new
 * namespace gets a handle and a grown copy of the table, the old table going the same way. A
 * plain atomic refcount would race with that free; the grace period is what makes it safe.
 * Handles are freed only with the registry (one per namespace ever published, made by writes).
 *
 * ThreadSanitizer cannot see the ordering liburcu gets from membarrier, so under EF_TSAN the read
 * section and the reclaim callback carry explicit release/acquire annotations that describe it.
 */
#include "eval/registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <urcu-bp.h>

#include "base/tsan.h"
#include "eval/model.h"

typedef struct table {
    struct rcu_head rcu;
    ef_registry *owner;
    uint32_t n;
    uint32_t mask;
    uint32_t *slots; /* index + 1 into handles */
    ef_ns_handle **handles;
} table;

/* A replaced or removed snapshot on its way to call_rcu. */
typedef struct retired {
    struct rcu_head rcu;
    ef_registry *owner;
    ef_snapshot *snap;
} retired;

#define MAX_LISTENERS 8

struct ef_registry {
    table *current;          /* read with acquire inside a read section; grows by copy */
    pthread_mutex_t writer;  /* serialises publishers; guards the listener list and the hold */
    int grace;               /* TSan sync address for the grace period */
    struct {
        ef_registry_listener fn;
        void *ctx;
    } listeners[MAX_LISTENERS];
    unsigned hold;             /* ef_registry_hold depth: notifications wait while above 0 */
    ef_ns_handle **held;       /* the namespaces published or removed meanwhile, in order */
    size_t nheld, capheld;
};

static table *table_new(uint32_t n)
{
    uint32_t cap = 4;
    while (cap < n * 2) cap *= 2;
    table *t = calloc(1, sizeof(*t) + cap * sizeof(uint32_t) + (n ? n : 1) * sizeof(ef_ns_handle *));
    if (!t) return NULL;
    t->mask = cap - 1;
    t->slots = (uint32_t *)(t + 1);
    t->handles = (ef_ns_handle **)(t->slots + cap);
    return t;
}

static void table_add(table *t, ef_ns_handle *h)
{
    uint32_t i = (uint32_t)ef_hash_bytes(h->key, h->key_len) & t->mask;
    while (t->slots[i]) i = (i + 1) & t->mask;
    t->handles[t->n] = h;
    t->slots[i] = ++t->n;
}

static ef_ns_handle *table_find(const table *t, ef_bytes ns)
{
    uint32_t i = (uint32_t)ef_hash_bytes(ns.p, ns.n) & t->mask;
    for (;; i = (i + 1) & t->mask) {
        uint32_t s = t->slots[i];
        if (!s) return NULL;
        ef_ns_handle *h = t->handles[s - 1];
        if (h->key_len == ns.n && ef_mem_eq(h->key, ns.p, ns.n)) return h;
    }
}

static void reclaim_table(struct rcu_head *head)
{
    table *t = caa_container_of(head, table, rcu);
    TSAN_ACQUIRE(t);                /* the publisher's hand-off through call_rcu's queue */
    TSAN_ACQUIRE(&t->owner->grace); /* every reader that could see t has left */
    free(t);
}

static void reclaim_snapshot(struct rcu_head *head)
{
    retired *r = caa_container_of(head, retired, rcu);
    TSAN_ACQUIRE(r);
    TSAN_ACQUIRE(&r->owner->grace);
    ef_snapshot_free(r->snap);
    free(r);
}

ef_registry *ef_registry_new(void)
{
    ef_registry *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->current = table_new(0);
    if (!r->current) {
        free(r);
        return NULL;
    }
    r->current->owner = r;
    pthread_mutex_init(&r->writer, NULL);
    return r;
}

void ef_registry_free(ef_registry *r)
{
    if (!r) return;
    rcu_barrier(); /* every pending reclaim has run */
    table *t = r->current;
    for (uint32_t i = 0; i < t->n; i++) {
        ef_snapshot_free(t->handles[i]->snap);
        free(t->handles[i]);
    }
    free(t);
    free(r->held);
    pthread_mutex_destroy(&r->writer);
    free(r);
}

/* Makes snap (NULL: none) the namespace's snapshot; the one it replaces is freed after a grace
 * period. A new namespace gets a handle and a grown copy of the table. Called with the writer
 * lock held. Returns 0, -1 (removing a namespace that has no snapshot) or -2 (out of memory,
 * nothing changed). */
static int swap_in(ef_registry *r, ef_bytes ns, ef_snapshot *snap, ef_ns_handle **out)
{
    table *old = r->current;
    ef_ns_handle *h = table_find(old, ns);
    *out = h;
    ef_snapshot *prev = h ? h->snap : NULL;
    if (!snap && !prev) return -1;
    retired *ret = NULL;
    if (prev && !(ret = malloc(sizeof(*ret)))) return -2;
    if (!h) {
        table *t = table_new(old->n + 1);
        h = t ? malloc(sizeof(*h) + ns.n + 1) : NULL;
        if (!h) {
            free(t);
            return -2;
        }
        h->snap = snap;
        h->key_len = ns.n;
        memcpy(h->key, ns.p, ns.n);
        h->key[ns.n] = 0;
        *out = h;
        t->owner = r;
        for (uint32_t i = 0; i < old->n; i++) table_add(t, old->handles[i]);
        table_add(t, h);
        __atomic_store_n(&r->current, t, __ATOMIC_RELEASE);
        TSAN_RELEASE(old);
        call_rcu(&old->rcu, reclaim_table);
        return 0;
    }
    __atomic_store_n(&h->snap, snap, __ATOMIC_RELEASE);
    if (ret) {
        ret->owner = r;
        ret->snap = prev;
        TSAN_RELEASE(ret);
        call_rcu(&ret->rcu, reclaim_snapshot);
    }
    return 0;
}

/* Runs the listeners with the writer lock held, so a listener is never called after
 * ef_registry_unlisten returned; listeners are documented as quick and non-publishing. */
static void notify(ef_registry *r, const ef_ns_handle *h)
{
    ef_bytes ns = {h->key, h->key_len};
    for (int i = 0; i < MAX_LISTENERS; i++)
        if (r->listeners[i].fn) r->listeners[i].fn(ns, r->listeners[i].ctx);
}

/* Notifies now, or at the hold's end. Without memory to remember it, now: a listener told early
 * is better than one never told. */
static void changed(ef_registry *r, ef_ns_handle *h)
{
    if (r->hold) {
        if (r->nheld == r->capheld) {
            size_t cap = r->capheld ? r->capheld * 2 : 16;
            ef_ns_handle **g = realloc(r->held, cap * sizeof(*g));
            if (g) {
                r->held = g;
                r->capheld = cap;
            }
        }
        if (r->nheld < r->capheld) {
            r->held[r->nheld++] = h;
            return;
        }
    }
    notify(r, h);
}

void ef_registry_hold(ef_registry *r)
{
    pthread_mutex_lock(&r->writer);
    r->hold++;
    pthread_mutex_unlock(&r->writer);
}

void ef_registry_release(ef_registry *r)
{
    pthread_mutex_lock(&r->writer);
    if (r->hold && --r->hold == 0) {
        for (size_t i = 0; i < r->nheld; i++) notify(r, r->held[i]);
        r->nheld = 0;
    }
    pthread_mutex_unlock(&r->writer);
}

int ef_registry_publish(ef_registry *r, ef_snapshot *snap)
{
    pthread_mutex_lock(&r->writer);
    ef_bytes ns = snap->namespace_key; /* snap stays alive while the lock is held */
    ef_ns_handle *h;
    int rc = swap_in(r, ns, snap, &h);
    if (rc == 0) changed(r, h);
    pthread_mutex_unlock(&r->writer);
    if (rc != 0) {
        ef_snapshot_free(snap);
        return -1;
    }
    return 0;
}

int ef_registry_remove(ef_registry *r, ef_bytes ns)
{
    pthread_mutex_lock(&r->writer);
    ef_ns_handle *h;
    int rc = swap_in(r, ns, NULL, &h);
    if (rc == 0) changed(r, h);
    pthread_mutex_unlock(&r->writer);
    return rc == 0 ? 0 : -1;
}

int ef_registry_listen(ef_registry *r, ef_registry_listener fn, void *ctx)
{
    int rc = -1;
    pthread_mutex_lock(&r->writer);
    for (int i = 0; i < MAX_LISTENERS && rc != 0; i++)
        if (!r->listeners[i].fn) {
            r->listeners[i].fn = fn;
            r->listeners[i].ctx = ctx;
            rc = 0;
        }
    pthread_mutex_unlock(&r->writer);
    return rc;
}

void ef_registry_unlisten(ef_registry *r, ef_registry_listener fn, void *ctx)
{
    pthread_mutex_lock(&r->writer);
    for (int i = 0; i < MAX_LISTENERS; i++)
        if (r->listeners[i].fn == fn && r->listeners[i].ctx == ctx) r->listeners[i].fn = NULL;
    pthread_mutex_unlock(&r->writer);
}

void ef_registry_read_lock(ef_registry *r)
{
    (void)r;
    rcu_read_lock();
}

void ef_registry_read_unlock(ef_registry *r)
{
    TSAN_RELEASE(&r->grace);
    rcu_read_unlock();
}

/* May be called outside a read section (registry.h), yet the table it searches is replaced, and
 * the old one freed after a grace period, when a namespace is first published: the search itself
 * must be a read section, or the free does not wait for it (test_handle_outside_read_section).
 * The handle found outlives it: handles are freed only with the registry. */
const ef_ns_handle *ef_registry_handle(ef_registry *r, ef_bytes ns)
{
    ef_registry_read_lock(r);
    const ef_ns_handle *h = table_find(__atomic_load_n(&r->current, __ATOMIC_ACQUIRE), ns);
    ef_registry_read_unlock(r);
    return h;
}

const ef_snapshot *ef_registry_get(ef_registry *r, ef_bytes ns)
{
    /* the caller's read section already covers the table */
    const ef_ns_handle *h = table_find(__atomic_load_n(&r->current, __ATOMIC_ACQUIRE), ns);
    return h ? ef_ns_snapshot(h) : NULL;
}

unsigned ef_registry_count(ef_registry *r)
{
    ef_registry_read_lock(r);
    table *t = __atomic_load_n(&r->current, __ATOMIC_ACQUIRE);
    unsigned n = 0;
    for (uint32_t i = 0; i < t->n; i++) n += ef_ns_snapshot(t->handles[i]) != NULL;
    ef_registry_read_unlock(r);
    return n;
}

void ef_registry_foreach(ef_registry *r, void (*fn)(const ef_snapshot *s, void *ctx), void *ctx)
{
    ef_registry_read_lock(r);
    table *t = __atomic_load_n(&r->current, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < t->n; i++) {
        const ef_snapshot *s = ef_ns_snapshot(t->handles[i]);
        if (s) fn(s, ctx);
    }
    ef_registry_read_unlock(r);
}
