/*
 * arena.h - a bump allocator for memory that dies all at once.
 *
 * A compiled snapshot, a parsed JSON document or one HTTP request's scratch space each live in an
 * arena: many small allocations, one free. ef_arena_reset keeps its largest chunk so a per-thread arena
 * that is reset between requests stops calling malloc once it has grown to its working size.
 * An arena is not thread-safe; give each thread its own.
 */
#ifndef EF_BASE_ARENA_H
#define EF_BASE_ARENA_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ef_arena_chunk ef_arena_chunk;

typedef struct ef_arena {
    ef_arena_chunk *head;  /* newest chunk first */
    size_t chunk_size;     /* size of the next ordinary chunk */
    size_t total;          /* bytes obtained from malloc, for memory accounting */
} ef_arena;

void ef_arena_init(ef_arena *a, size_t chunk_size);
/* Returns 8-byte aligned memory, or NULL when malloc fails. Zero-size requests return a valid pointer. */
void *ef_arena_alloc(ef_arena *a, size_t n);
void *ef_arena_calloc(ef_arena *a, size_t n);
/* Copies n bytes and appends a NUL (not counted), so copies can also be used as C strings. */
char *ef_arena_memdup(ef_arena *a, const void *p, size_t n);
/* Bytes handed out (alignment included) since init or the last reset: what an exactly sized
 * arena would need for the same allocations. */
size_t ef_arena_used(const ef_arena *a);
/* Gives the unused tail of a one-chunk arena back to malloc (realloc), so it holds what it handed
 * out and no more. True when done in place (or nothing to do). False when the arena has several
 * chunks (left as it is) or when realloc moved the chunk: then every pointer the arena handed out
 * is stale, and the caller may only free the arena. */
bool ef_arena_trim(ef_arena *a);
/* Frees all chunks but the newest (largest), which is kept for reuse. */
void ef_arena_reset(ef_arena *a);
void ef_arena_free(ef_arena *a);

#endif
