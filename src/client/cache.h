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
 * The file must be exactly that long, and the ETag must be a value a header can carry
 * (ef_cache_etag_ok). Anything else is rejected: the reader must never hand a truncated, corrupt
 * or foreign file to the caller. Writes are atomic (temp file in the same
 * directory, fsync, rename, fsync of the directory), so a crash leaves the old file or the new one.
 */
#ifndef EF_CLIENT_CACHE_H
#define EF_CLIENT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EF_CACHE_FORMAT 1
#define EF_CACHE_MAX_ETAG 128
/* The largest snapshot document the client takes from a node (replica.c), so the largest a cache
 * file can hold: a longer file is rejected unread. */
#define EF_CACHE_MAX_DOC ((size_t)256 << 20)

typedef struct ef_cache_entry {
    uint64_t version;
    int64_t saved_ns;
    char etag[EF_CACHE_MAX_ETAG + 1];
    const char *doc; /* points into buf */
    size_t doc_len;
    char *buf;       /* the whole file (malloc'd), owned by the entry */
} ef_cache_entry;

/* Whether n bytes can be an ETag: at most EF_CACHE_MAX_ETAG bytes, none of them a control
 * character (CR, LF, NUL, ...). The ETag goes back to the node as If-None-Match, so one holding
 * CR or LF would put headers, or a whole request, of whoever wrote it on the client's connection;
 * a node never sends one (a header line ends at LF) and the checksum proves nothing (anyone can
 * recompute it), so both the reader and the header parser refuse such a value. */
bool ef_cache_etag_ok(const char *p, size_t n);

/* Reads and verifies the file. Returns EF_OK (fill *e; free with ef_cache_entry_free),
 * EF_ECACHE_MISSING, EF_ECACHE_CORRUPT, EF_ECACHE_VERSION, EF_EIO or EF_ENOMEM. Anything at the
 * path that is not a regular file (a FIFO, a device), or is longer than a cache file can be, is
 * EF_ECACHE_CORRUPT at once: it is neither waited for nor read. */
int ef_cache_read(const char *path, ef_cache_entry *e);
void ef_cache_entry_free(ef_cache_entry *e);

/* Atomically replaces the file. Returns EF_OK, EF_EINVAL (etag not ef_cache_etag_ok), EF_EIO or
 * EF_ENOMEM. */
int ef_cache_write(const char *path, uint64_t version, const char *etag, const char *doc,
                   size_t doc_len, int64_t saved_ns);

#endif
