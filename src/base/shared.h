/*
 * shared.h - an immutable byte block with a reference count: bytes that several readers send
 * at their own pace, held once.
 *
 * Why: a full dump goes to every follower bootstrapping from a node (a fleet restarting, or a
 * token holder reconnecting on purpose), and each used to get its own copy queued to it, 140 MB
 * apiece at 100,000 flags. A block is filled once, then only read; the last reference frees it.
 * References may be taken and dropped on any thread; the bytes never change after ef_shared_take.
 */
#ifndef EF_BASE_SHARED_H
#define EF_BASE_SHARED_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

typedef struct ef_shared {
    int refs;       /* atomic */
    const char *data;
    size_t len;
    ef_buf buf;     /* owns data */
    int *live;      /* optional: decremented (atomically) when the block is freed */
    uint64_t *live_bytes; /* optional: len subtracted (atomically) when the block is freed */
} ef_shared;

/* A block holding b's bytes, with one reference: b's memory moves in (no copy) and b is left
 * empty. NULL, with b cleared, when b failed (out of memory while it was written) or when the
 * block itself cannot be allocated. */
ef_shared *ef_shared_take(ef_buf *b);
/* The same, counting the block in *live (atomically) until it is freed: how an owner bounds the
 * blocks its readers may still hold. *live must outlive the block. */
ef_shared *ef_shared_take_counted(ef_buf *b, int *live);
/* The same, also adding the block's length to *live_bytes until it is freed (either may be NULL):
 * the bytes an owner's readers hold, each block counted once however many share it. */
ef_shared *ef_shared_take_tracked(ef_buf *b, int *live, uint64_t *live_bytes);
/* Another reference to s; returns s. */
ef_shared *ef_shared_ref(ef_shared *s);
/* Drops a reference (NULL: nothing); the last one frees the block. */
void ef_shared_unref(ef_shared *s);

#endif
