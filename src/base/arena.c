/*
 * arena.c - bump allocator (see arena.h). Never frees single allocations; never touches memory it
 * did not allocate itself.
 */
#include "base/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ef_arena_chunk {
    ef_arena_chunk *next;
    size_t cap;
    size_t used;
    _Alignas(16) unsigned char data[];
};

void ef_arena_init(ef_arena *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 4096;
    a->total = 0;
}

static ef_arena_chunk *chunk_new(ef_arena *a, size_t min)
{
    size_t cap = a->chunk_size;
    if (cap < min) cap = min;
    ef_arena_chunk *c = malloc(sizeof(*c) + cap);
    if (!c) return NULL;
    c->cap = cap;
    c->used = 0;
    c->next = a->head;
    a->head = c;
    a->total += sizeof(*c) + cap;
    /* Grow geometrically so big documents need few chunks, but cap the step. */
    if (a->chunk_size < (1u << 20)) a->chunk_size *= 2;
    return c;
}

void *ef_arena_alloc(ef_arena *a, size_t n)
{
    size_t need = (n + 7) & ~(size_t)7;
    if (need < n) return NULL; /* overflow */
    ef_arena_chunk *c = a->head;
    if (!c || c->cap - c->used < need) {
        c = chunk_new(a, need);
        if (!c) return NULL;
    }
    void *p = c->data + c->used;
    c->used += need;
    return p;
}

void *ef_arena_calloc(ef_arena *a, size_t n)
{
    void *p = ef_arena_alloc(a, n);
    if (p) memset(p, 0, n);
    return p;
}

char *ef_arena_memdup(ef_arena *a, const void *p, size_t n)
{
    char *d = ef_arena_alloc(a, n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

size_t ef_arena_used(const ef_arena *a)
{
    size_t n = 0;
    for (const ef_arena_chunk *c = a->head; c; c = c->next) n += c->used;
    return n;
}

bool ef_arena_trim(ef_arena *a)
{
    ef_arena_chunk *c = a->head;
    if (c && c->next) return false;
    if (!c || c->used == c->cap) return true;
    size_t want = sizeof(*c) + c->used;
    ef_arena_chunk *n = realloc(c, want);
    if (!n) return true; /* a smaller block could not be had: the old one is still whole */
    a->head = n;
    a->total = want;
    n->cap = n->used;
    return n == c;
}

void ef_arena_reset(ef_arena *a)
{
    /* Keep the newest chunk: growth is geometric, so it is the largest, and after a few resets it
     * holds a whole working set. */
    ef_arena_chunk *keep = a->head;
    if (!keep) return;
    ef_arena_chunk *c = keep->next;
    while (c) {
        ef_arena_chunk *next = c->next;
        a->total -= sizeof(*c) + c->cap;
        free(c);
        c = next;
    }
    keep->next = NULL;
    keep->used = 0;
}

void ef_arena_free(ef_arena *a)
{
    ef_arena_chunk *c = a->head;
    while (c) {
        ef_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}
