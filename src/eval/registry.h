/*
 * registry.h - the current snapshot of every namespace, replaced without stopping readers.
 *
 * Readers (evaluation) take no lock: inside ef_registry_read_lock/unlock they look up a namespace's
 * snapshot and evaluate against it. Writers publish a new snapshot; the one it replaces is freed
 * only after every reader that could still see it has left its read section (an RCU grace period,
 * from liburcu's "bulletproof" flavour, which needs no thread registration: safe inside a library
 * whose callers create threads we never see).
 *
 * Publishing is serialised internally, so any thread may publish. A pointer obtained inside a read
 * section must not be used after ef_registry_read_unlock.
 *
 * A namespace handle (ef_ns_handle) is the namespace's place in the registry: found once (a batch,
 * a client library bound to one namespace), it gives the current snapshot with one load. Handles
 * are made only by publishing (never by a lookup, so requests for made-up namespaces allocate
 * nothing) and live as long as the registry.
 */
#ifndef EF_EVAL_REGISTRY_H
#define EF_EVAL_REGISTRY_H

#include <stdint.h>

#include "base/bytes.h"
#include "eval/eval.h"

typedef struct ef_registry ef_registry;

/* A namespace's slot. Its fields belong to registry.c; they are shown only so the read path
 * inlines. */
typedef struct ef_ns_handle {
    ef_snapshot *snap; /* current snapshot (atomic; NULL after a removal) */
    size_t key_len;
    char key[];
} ef_ns_handle;

ef_registry *ef_registry_new(void);
/* Waits for pending frees, then frees every snapshot. No reader may still be inside. */
void ef_registry_free(ef_registry *r);

/* Installs snap as the snapshot of its namespace (ef_snapshot_namespace), taking ownership.
 * Returns 0, or -1 on out-of-memory (snap is then freed and the old snapshot stays current). */
int ef_registry_publish(ef_registry *r, ef_snapshot *snap);
/* Drops a namespace; returns 0 if it was there, -1 if not. */
int ef_registry_remove(ef_registry *r, ef_bytes ns);

/* Change notification: fn(ns, ctx) runs after every publish or removal, on the publishing thread,
 * after the new state is visible. It must be quick and must not publish. At most 8 listeners.
 * Returns 0, or -1 when the list is full. */
typedef void (*ef_registry_listener)(ef_bytes ns, void *ctx);
int ef_registry_listen(ef_registry *r, ef_registry_listener fn, void *ctx);
void ef_registry_unlisten(ef_registry *r, ef_registry_listener fn, void *ctx);
/* Between hold and release (which nest) publishes and removals are visible at once, as always,
 * but their listeners are called at the outermost release, in order, once every namespace a
 * transaction wrote is visible. Listeners raise the version a node says it serves (and wake the
 * requests waiting for it): told of a transaction's first namespace, a replica loading a dump of
 * 1,000 namespaces said it served the dump's version while most of them were not there yet. */
void ef_registry_hold(ef_registry *r);
void ef_registry_release(ef_registry *r);

/* The read section. Evaluation paths use the inlined ef_registry_enter/leave (registry_read.h),
 * which are the same thing without a call. */
void ef_registry_read_lock(ef_registry *r);
void ef_registry_read_unlock(ef_registry *r);
/* Only between read_lock and read_unlock. NULL if the namespace has no snapshot. */
const ef_snapshot *ef_registry_get(ef_registry *r, ef_bytes ns);

/* The namespace's handle, or NULL if no snapshot of it was ever published (then look again
 * later). Valid until ef_registry_free; may be called and kept outside a read section (the
 * lookup enters one of its own: a first publish frees the table it searches). */
const ef_ns_handle *ef_registry_handle(ef_registry *r, ef_bytes ns);
/* Only between read_lock and read_unlock. NULL if the namespace has no snapshot now. */
static inline const ef_snapshot *ef_ns_snapshot(const ef_ns_handle *h)
{
    return __atomic_load_n(&h->snap, __ATOMIC_ACQUIRE);
}

/* Calls fn for every namespace's current snapshot inside one read section (fn must not block). */
void ef_registry_foreach(ef_registry *r, void (*fn)(const ef_snapshot *s, void *ctx), void *ctx);

/* Number of namespaces with a snapshot. */
unsigned ef_registry_count(ef_registry *r);

#endif
