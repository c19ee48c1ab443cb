/*
 * request.h - an evaluation request as one compact block: the flag key (with its table hash), the
 * entity id and the context entries (per-key hash, lengths, offset), followed by their bytes.
 *
 * Why: a request decoded from JSON used to point into the parse tree, its keys and values scattered
 * over ~1.5 KiB of nodes; on a cold request those cache misses were most of an evaluation's time.
 * In a block, an evaluation touches a few consecutive cache lines, and a property lookup compares
 * a 32-bit hash before any byte. Every producer builds one (the HTTP JSON decoder, OFREP, the CLI,
 * libedgeflag), so the engine has one request shape.
 *
 * Building copies: a block never points at its inputs. It never allocates on its own either: the
 * caller hands the memory (an arena, a stack buffer), sized with ef_request_size. The one
 * exception is ef_request_borrow, for a caller whose own pairs outlive the evaluation and that
 * nobody else can see (libedgeflag: the application's arguments): it copies, hashes and indexes
 * nothing, and a lookup scans the pairs.
 */
#ifndef EF_EVAL_REQUEST_H
#define EF_EVAL_REQUEST_H

#include <stdint.h>

#include "base/arena.h"
#include "base/bytes.h"
#include "base/hash.h"

typedef struct ef_kv {
    ef_bytes key;
    ef_bytes value;
} ef_kv;

typedef struct ef_ctx_entry {
    uint32_t hash;      /* ef_context_hash(key) */
    uint32_t key_len;
    uint32_t value_len;
    uint32_t off;       /* the key at ef_context_text(c) + off, its value right after it */
} ef_ctx_entry;

typedef struct ef_context {
    uint32_t n;        /* entries added */
    uint32_t cap;      /* entries the block has room for */
    uint32_t used;     /* text bytes written */
    uint32_t text_off; /* where the text starts, in bytes from the block's start */
    uint16_t mask;     /* the index has mask + 1 slots, a power of two at least twice cap */
    uint16_t e_off;    /* where the entries start, in bytes from the block's start */
    uint8_t linear;    /* 1: no index (abandoned, see EF_CONTEXT_MAX_PROBE; over EF_CONTEXT_INDEXED
                        * entries; or borrowed); lookups scan */
    const ef_kv *borrowed; /* non-NULL: the n entries are these pairs of the caller's (ef_request_borrow) */
    /* The index, right after this 32-byte header so that both share a cache line up to 16
     * entries: one byte a slot, the entry number + 1 of the last entry with a key (0 = empty),
     * open addressing on the key's hash. Then the cap entries, then the text: flag key, entity
     * id, keys and values. One-byte slots and this order took a cold evaluation from 149 to 117
     * ns on the benchmark's workload (bench/bench_eval): a request is read once, so its bytes
     * are its cache misses. */
    uint8_t index[];
} ef_context;

/* Entries a block indexes at most (a slot is one byte); a bigger context is scanned. */
#define EF_CONTEXT_INDEXED 255

typedef struct ef_eval_request {
    ef_bytes flag_key;
    ef_bytes entity_id;
    uint64_t flag_hash;        /* ef_hash_bytes(flag_key), the flag table's hash; 0 = not computed */
    const ef_context *context; /* a later duplicate key wins, as in a JSON object; NULL = empty */
} ef_eval_request;

/* The hash a context key is looked up by (a constraint's property is hashed once, at compile). */
static inline uint32_t ef_context_hash(const char *p, size_t n)
{
    return (uint32_t)ef_hash_bytes(p, n);
}

static inline const ef_ctx_entry *ef_context_entries(const ef_context *c)
{
    return (const ef_ctx_entry *)(const void *)((const char *)c + c->e_off);
}

static inline const char *ef_context_text(const ef_context *c)
{
    return (const char *)c + c->text_off;
}

/* An insert that would probe more index slots than this abandons the index: the hash is fixed,
 * so a client could send keys that collide on purpose, and each would probe past all the others
 * (quadratic). Lookups then scan the entries, which costs what the engine always cost before. */
#define EF_CONTEXT_MAX_PROBE 32

static inline bool ef_context_entry_is(const ef_context *c, const ef_ctx_entry *e, ef_bytes key,
                                       uint32_t hash)
{
    return e->hash == hash && e->key_len == key.n &&
           ef_mem_eq(ef_context_text(c) + e->off, key.p, key.n);
}

/* ef_context_find for a block without an index (given up, or borrowed): a scan from the last entry. */
ef_bytes ef_context_find_linear(const ef_context *c, ef_bytes key, uint32_t hash);

/* The value of key (hash = ef_context_hash(key)), or "" when absent; the last duplicate wins
 * (the index holds only the last entry of each key). */
static inline __attribute__((always_inline)) ef_bytes ef_context_find(const ef_context *c,
                                                                     ef_bytes key, uint32_t hash)
{
    if (__builtin_expect(c && c->linear, 0)) {
        return ef_context_find_linear(c, key, hash);
    } else if (c) {
        for (uint32_t i = hash & c->mask;; i = (i + 1) & c->mask) {
            uint32_t slot = c->index[i];
            if (!slot) break;
            const ef_ctx_entry *e = &ef_context_entries(c)[slot - 1];
            if (ef_context_entry_is(c, e, key, hash))
                return (ef_bytes){ef_context_text(c) + e->off + key.n, e->value_len};
        }
    }
    return (ef_bytes){"", 0};
}

static inline size_t ef_context_count(const ef_context *c)
{
    return c ? c->n : 0;
}

static inline ef_bytes ef_context_key(const ef_context *c, size_t i)
{
    if (c->borrowed) return c->borrowed[i].key.p ? c->borrowed[i].key : (ef_bytes){"", 0};
    const ef_ctx_entry *e = &ef_context_entries(c)[i];
    return (ef_bytes){ef_context_text(c) + e->off, e->key_len};
}

static inline ef_bytes ef_context_value(const ef_context *c, size_t i)
{
    if (c->borrowed) return c->borrowed[i].value.p ? c->borrowed[i].value : (ef_bytes){"", 0};
    const ef_ctx_entry *e = &ef_context_entries(c)[i];
    return (ef_bytes){ef_context_text(c) + e->off + e->key_len, e->value_len};
}

/* Bytes a block needs (header, index, entries, text) for at most n context entries and `text` bytes of flag key, entity id, keys
 * and values together; 0 when that does not fit the block's 32-bit offsets (over 4 GiB). */
size_t ef_request_size(size_t n, size_t text);

/* Lays a request out in mem (ef_request_size(n, text) bytes, 8-byte aligned): copies the flag key
 * and the entity id into it and hashes the flag key. Context entries follow with
 * ef_request_add_context, at most n of them, within the text size given. Returns the block. */
ef_context *ef_request_init(ef_eval_request *req, void *mem, size_t n, size_t text,
                            ef_bytes flag_key, ef_bytes entity_id);
void ef_request_add_context(ef_context *c, ef_bytes key, ef_bytes value);
/* The same for n pairs in order (one call: the library's path). */
void ef_request_add_pairs(ef_context *c, const ef_kv *kv, size_t n);

/* A request that points at the caller's flag key, entity id and pairs instead of copying them into
 * a block: only the flag key is hashed; c is the header alone (no entries, index or text). A
 * property lookup scans the pairs from the last one (the last duplicate wins, as in a block),
 * comparing lengths before bytes: for the few keys an application passes that costs less than
 * hashing and indexing every key, and it is never worse than linear. kv (n pairs), flag_key and
 * entity_id must stay unchanged until the evaluation is over. */
void ef_request_borrow(ef_eval_request *req, ef_context *c, ef_bytes flag_key, ef_bytes entity_id,
                       const ef_kv *kv, size_t n);

/* The whole request from an array of pairs, in one allocation from the arena. Returns 0, or -1 on
 * out-of-memory or a request over 4 GiB. */
int ef_request_build(ef_arena *a, ef_bytes flag_key, ef_bytes entity_id, const ef_kv *kv,
                     size_t n, ef_eval_request *req);

#endif
