/*
 * cache.h - the client's cache file: the last state it evaluated, so a process that starts while
 * the node is unreachable can evaluate at once.
 *
 * Layout (integers little-endian):
 *   "EFCACHE\0"  magic (8 bytes)
 *   u32 format version (1), u32 etag length, u64 state version, u64 document length,
 *   i64 wall time it was saved (ns since the epoch)                          -- 40-byte header
 *   etag bytes, document bytes (the node's snapshot JSON)
 *   SHA-256 over everything before it (32 bytes)
 * The file must be exactly that long. Anything else is rejected: the reader must never hand a
 * truncated, corrupt or foreign file to the caller. Writes are atomic (temp file in the same
 * directory, fsync, rename, fsync of the directory), so a crash leaves the old file or the new one.
 */
#ifndef EF_CLIENT_CACHE_H
#define EF_CLIENT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define EF_CACHE_FORMAT 1
#define EF_CACHE_MAX_ETAG 128

typedef struct ef_cache_entry {
    uint64_t version;
    int64_t saved_ns;
    char etag[EF_CACHE_MAX_ETAG + 1];
    const char *doc; /* points into buf */
    size_t doc_len;
    char *buf;       /* the whole file (malloc'd), owned by the entry */
} ef_cache_entry;

/* Reads and verifies the file. Returns EF_OK (fill *e; free with ef_cache_entry_free),
 * EF_ECACHE_MISSING, EF_ECACHE_CORRUPT, EF_ECACHE_VERSION, EF_EIO or EF_ENOMEM. */
int ef_cache_read(const char *path, ef_cache_entry *e);
void ef_cache_entry_free(ef_cache_entry *e);

/* Atomically replaces the file. Returns EF_OK, EF_EINVAL (etag too long), EF_EIO or EF_ENOMEM. */
int ef_cache_write(const char *path, uint64_t version, const char *etag, const char *doc,
                   size_t doc_len, int64_t saved_ns);

#endif
