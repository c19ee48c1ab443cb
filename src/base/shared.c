/*
 * shared.c - reference-counted immutable byte blocks (see shared.h).
 *
 * Must never write to a block's bytes after ef_shared_take: readers on other threads copy from
 * them without a lock.
 */
#include "base/shared.h"

#include <stdlib.h>

ef_shared *ef_shared_take(ef_buf *b)
{
    return ef_shared_take_counted(b, NULL);
}

ef_shared *ef_shared_take_counted(ef_buf *b, int *live)
{
    return ef_shared_take_tracked(b, live, NULL);
}

ef_shared *ef_shared_take_tracked(ef_buf *b, int *live, uint64_t *live_bytes)
{
    ef_shared *s = b->failed ? NULL : malloc(sizeof(*s));
    if (!s) {
        ef_buf_clear(b);
        return NULL;
    }
    s->refs = 1;
    s->live = live;
    if (live) __atomic_add_fetch(live, 1, __ATOMIC_RELAXED);
    ef_buf_init(&s->buf);
    ef_buf_take(&s->buf, b); /* s->buf is empty: the two trade memory */
    s->data = s->buf.data;
    s->len = s->buf.len;
    s->live_bytes = live_bytes;
    if (live_bytes) __atomic_add_fetch(live_bytes, (uint64_t)s->len, __ATOMIC_RELAXED);
    return s;
}

ef_shared *ef_shared_ref(ef_shared *s)
{
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    return s;
}

void ef_shared_unref(ef_shared *s)
{
    /* acq_rel: the last holder's reads of the bytes happen before the free */
    if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        ef_buf_free(&s->buf);
        if (s->live) __atomic_sub_fetch(s->live, 1, __ATOMIC_RELEASE);
        if (s->live_bytes) __atomic_sub_fetch(s->live_bytes, (uint64_t)s->len, __ATOMIC_RELEASE);
        free(s);
    }
}
