/*
 * cache.c - reading and atomically writing the client's cache file (format in cache.h).
 *
 * It must never return a document whose length and checksum it has not verified, never wait on
 * or read without bound what it finds at the cache path (only a regular file of a cache file's
 * possible size is read), and never leave a half-written file under the cache path.
 */
#include "client/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/sha256.h"
#include "edgeflag.h"

static const char MAGIC[8] = {'E', 'F', 'C', 'A', 'C', 'H', 'E', '\0'};
#define HEADER 40
#define SUM 32

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

bool ef_cache_etag_ok(const char *p, size_t n)
{
    if (n > EF_CACHE_MAX_ETAG) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch < 0x20 || ch == 0x7f) return false;
    }
    return true;
}

void ef_cache_entry_free(ef_cache_entry *e)
{
    free(e->buf);
    e->buf = NULL;
    e->doc = NULL;
    e->doc_len = 0;
}

/* Reads the whole file at path if it can be a cache file: a regular file no longer than the
 * format allows (ef_file_read: a FIFO is not waited on, a device or a huge file never read into
 * memory). Returns EF_OK, EF_ECACHE_MISSING, EF_ECACHE_CORRUPT, EF_EIO or EF_ENOMEM. */
static int read_bounded(const char *path, char **out, size_t *out_len)
{
    int rc = ef_file_read(path, (size_t)HEADER + EF_CACHE_MAX_ETAG + EF_CACHE_MAX_DOC + SUM, out, out_len);
    if (rc == 0) return EF_OK;
    if (rc == -ENOENT) return EF_ECACHE_MISSING;
    if (rc == -EINVAL || rc == -EFBIG) return EF_ECACHE_CORRUPT;
    return rc == -ENOMEM ? EF_ENOMEM : EF_EIO;
}

int ef_cache_read(const char *path, ef_cache_entry *e)
{
    memset(e, 0, sizeof(*e));
    char *data;
    size_t len;
    int rc = read_bounded(path, &data, &len);
    if (rc != EF_OK) return rc;
    const unsigned char *u = (const unsigned char *)data;
    int err = EF_ECACHE_CORRUPT;
    if (len < HEADER + SUM || memcmp(u, MAGIC, sizeof(MAGIC)) != 0) goto bad;
    if (get_u32(u + 8) != EF_CACHE_FORMAT) {
        err = EF_ECACHE_VERSION;
        goto bad;
    }
    uint32_t etag_len = get_u32(u + 12);
    uint64_t doc_len = get_u64(u + 24);
    /* the lengths must account for the file exactly; compare without overflow */
    if (etag_len > EF_CACHE_MAX_ETAG || doc_len > len || len - HEADER - SUM - etag_len != doc_len)
        goto bad;
    if (!ef_cache_etag_ok(data + HEADER, etag_len)) goto bad; /* see cache.h: never sent back */
    uint8_t sum[SUM];
    ef_sha256(data, len - SUM, sum);
    if (!ef_ct_equal(sum, u + len - SUM, SUM)) goto bad;
    e->version = get_u64(u + 16);
    e->saved_ns = (int64_t)get_u64(u + 32);
    memcpy(e->etag, data + HEADER, etag_len);
    e->etag[etag_len] = '\0';
    e->doc = data + HEADER + etag_len;
    e->doc_len = (size_t)doc_len;
    e->buf = data;
    return EF_OK;
bad:
    free(data);
    return err;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Makes the rename itself durable: fsync of the directory that holds the file. */
static void sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return; /* the data is safe; only the rename's durability is left to the kernel */
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int ef_cache_write(const char *path, uint64_t version, const char *etag, const char *doc,
                   size_t doc_len, int64_t saved_ns)
{
    size_t etag_len = etag ? strlen(etag) : 0;
    if (!ef_cache_etag_ok(etag, etag_len)) return EF_EINVAL; /* the reader would refuse it */
    size_t total = HEADER + etag_len + doc_len + SUM;
    unsigned char *buf = malloc(total);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 8);
    if (!buf || !tmp) {
        free(buf);
        free(tmp);
        return EF_ENOMEM;
    }
    memcpy(buf, MAGIC, sizeof(MAGIC));
    put_u32(buf + 8, EF_CACHE_FORMAT);
    put_u32(buf + 12, (uint32_t)etag_len);
    put_u64(buf + 16, version);
    put_u64(buf + 24, doc_len);
    put_u64(buf + 32, (uint64_t)saved_ns);
    if (etag_len) memcpy(buf + HEADER, etag, etag_len);
    if (doc_len) memcpy(buf + HEADER + etag_len, doc, doc_len);
    ef_sha256(buf, total - SUM, buf + total - SUM);

    /* a unique temp name in the same directory: several clients may share a cache path */
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".XXXXXX", 8);
    int rc = EF_EIO;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd >= 0) {
        bool ok = write_all(fd, (const char *)buf, total) == 0 && fsync(fd) == 0;
        ok = close(fd) == 0 && ok;
        if (ok && rename(tmp, path) == 0) {
            sync_dir(path);
            rc = EF_OK;
        } else {
            unlink(tmp);
        }
    }
    free(tmp);
    free(buf);
    return rc;
}
