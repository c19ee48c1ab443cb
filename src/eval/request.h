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
 * caller hands the memory (an arena, a stack buffer), sized with ef_request_size, or the arena
 * ef_request_open takes it from. The one exception is ef_request_borrow, for a caller whose own
 * pairs outlive the evaluation and that nobody else can see (libedgeflag: the application's
 * arguments): it copies, hashes and indexes nothing, and a lookup scans the pairs.
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

/* The hash of a context key of n <= 16 bytes, given as two little-endian words with zeros after
 * its last byte. One 64x64->128-bit multiply whose halves are folded (wyhash's "mum"): every bit
 * of either word reaches the low bits an index uses, so keys that differ in one byte (tier1,
 * tier2) spread over the slots. Where there is no 128-bit product, two multiplies and two folds
 * do the same. */
static inline uint32_t ef_context_hash_words(uint64_t lo, uint64_t hi, size_t n)
{
    lo ^= 0x243f6a8885a308d3ull;
    hi ^= 0x13198a2e03707344ull ^ n;
#if defined(__SIZEOF_INT128__)
    unsigned __int128 r = (unsigned __int128)lo * hi;
    return (uint32_t)((uint64_t)r ^ (uint64_t)(r >> 64));
#else
    uint64_t h = lo * 0xff51afd7ed558ccdull ^ hi * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 32;
    h *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h ^ h >> 32);
#endif
}

/* w <= 8 bytes at p as a number whose lowest byte is p[0], whatever the machine's byte order. */
static inline uint64_t ef_le_word(const char *p, size_t w)
{
    uint64_t x = 0;
    memcpy(&x, p, w);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x) >> (64 - 8 * w);
#endif
    return x;
}

/* The hash a context key is looked up by (a constraint's property is hashed once, at compile).
 * Keys of up to 16 bytes (nearly all) are hashed as two words (ef_context_hash_words), which a
 * decoder that has just copied a key takes from the 16 bytes it stored (ef_context_hash_padded)
 * instead of reading the key again byte-length case by case; longer keys with ef_hash_bytes. The
 * values live in memory only (a request block, a compiled constraint), never on disk or the
 * wire, so they may change between versions. */
static inline uint32_t ef_context_hash(const char *p, size_t n)
{
    if (n > 16) return (uint32_t)ef_hash_bytes(p, n);
    uint64_t lo = 0, hi = 0;
    if (n > 8) {
        lo = ef_le_word(p, 8);
        hi = ef_le_word(p + n - 8, 8) >> (8 * (16 - n)); /* bytes 8..n-1 */
    } else if (n == 8) {
        lo = ef_le_word(p, 8);
    } else if (n >= 4) {
        lo = ef_le_word(p, 4) | ef_le_word(p + n - 4, 4) >> (8 * (8 - n)) << 32; /* and 4..n-1 */
    } else if (n > 0) {
        lo = (uint64_t)(unsigned char)p[0] | (uint64_t)(unsigned char)p[n / 2] << (8 * (n / 2)) |
             (uint64_t)(unsigned char)p[n - 1] << (8 * (n - 1));
    }
    return ef_context_hash_words(lo, hi, n);
}

#if defined(__SSE2__)
/* ef_context_hash of the first n <= 16 bytes of v (the bytes past n do not count): for a decoder
 * that holds the key in a register. Hashing it from where it was just stored instead stalled the
 * load: the 16 bytes span the key's store and the value's, which the CPU cannot forward, and that
 * one load was a quarter of the decoder's time (perf, 2026-12-01). */
static inline uint32_t ef_context_hash_vec(__m128i v, size_t n)
{
    /* 16 bytes of 0xff then 16 of zeros: the mask that keeps the first n bytes starts at 16 - n */
    static const unsigned char keep[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                           0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    v = _mm_and_si128(v, _mm_loadu_si128((const __m128i *)(const void *)(keep + 16 - n)));
    return ef_context_hash_words((uint64_t)_mm_cvtsi128_si64(v),
                                 (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v)), n);
}
#endif

/* ef_context_hash(p, n) where 16 bytes can be read at p (the bytes past n do not count): a load
 * and a mask where SSE2 is, instead of the byte-length cases. */
static inline uint32_t ef_context_hash_padded(const char *p, size_t n)
{
#if defined(__SSE2__)
    if (n <= 16) return ef_context_hash_vec(_mm_loadu_si128((const __m128i *)(const void *)p), n);
#endif
    return ef_context_hash(p, n);
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

/* A block built in place, for a producer that writes the entries and their text straight into
 * it as it reads them and learns how many there are only at the end (the one-pass JSON decoder,
 * which so copies each string once and stages nothing).
 *
 * ef_request_open takes a block from the arena with room for at most n_max <= EF_CONTEXT_INDEXED
 * entries and `text` bytes of text (NULL when out of memory, over 4 GiB, or n_max is larger).
 * For each entry i, from 0 on, the caller writes its bytes anywhere in the text, the entry at
 * ef_request_entries(c)[i] (hash, lengths and the offset of its key in the text; the value right
 * after the key), and then calls ef_request_put(c, i, key, hash). ef_request_close(n) ends the
 * block and fills req: flag_key and entity_id must be in the block's text already (or empty),
 * used is the number of text bytes written.
 *
 * The first EF_REQUEST_PUT_MAX entries are indexed as they come, in an index sized for that many
 * (or n_max if fewer), so that closing a usual request indexes nothing; with more entries
 * ef_request_close sizes the index and builds it again. The entries and the text keep the places
 * reserved for n_max: such a block may hold unused bytes after its index and after its entries,
 * which no reader looks at (all go by e_off and text_off). */
#define EF_REQUEST_PUT_MAX 16
ef_context *ef_request_open(ef_arena *a, size_t n_max, size_t text);

static inline ef_ctx_entry *ef_request_entries(ef_context *c)
{
    return (ef_ctx_entry *)(void *)((char *)c + c->e_off);
}

static inline char *ef_request_text(ef_context *c)
{
    return (char *)c + c->text_off;
}

/* key and hash are entry i's, which the caller has at hand. The probe has no EF_CONTEXT_MAX_PROBE
 * count (3 instructions a key on the decoder's path): the open index has more than twice as many
 * slots as the entries put in it, so an empty slot ends every probe well before that limit. */
static inline __attribute__((always_inline)) void ef_request_put(ef_context *c, uint32_t i, ef_bytes key,
                                                               uint32_t hash)
{
    if (i >= EF_REQUEST_PUT_MAX) return;
    uint8_t *index = c->index;
    uint32_t mask = c->mask;
    for (uint32_t s = hash & mask;; s = (s + 1) & mask) {
        uint32_t slot = index[s];
        if (!slot || ef_context_entry_is(c, &ef_context_entries(c)[slot - 1], key, hash)) {
            index[s] = (uint8_t)(i + 1); /* the later of two equal keys wins */
            return;
        }
    }
}

void ef_request_close(ef_eval_request *req, ef_context *c, size_t n, size_t used, ef_bytes flag_key,
                      ef_bytes entity_id);

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
