/*
 * request.c - laying out an evaluation request as one block (see request.h).
 *
 * Copies bytes and computes hashes; never allocates except from the arena it is given, never
 * writes past the size the caller reserved (ef_request_size is the sizing rule; ef_request_open
 * sizes a block built in place itself).
 */
#include "eval/request.h"

/* Index slots for n entries: a power of two at least 2n (at least 4), so probes stay short; none
 * past EF_CONTEXT_INDEXED (the block is scanned). */
static size_t index_slots(size_t n)
{
    if (n > EF_CONTEXT_INDEXED) return 0;
    /* the next power of two from 2n, without a loop (a request is sized on every decode) */
    return n <= 2 ? 4 : (size_t)1 << (64 - __builtin_clzll((unsigned long long)(2 * n - 1)));
}

/* Where the entries start: after the header and the index, 4-byte aligned. */
static size_t entries_off(size_t n)
{
    return (sizeof(ef_context) + index_slots(n) + 3) & ~(size_t)3;
}

_Static_assert(sizeof(ef_context) == 32, "the header and a 32-slot index share one cache line");

size_t ef_request_size(size_t n, size_t text)
{
    /* every offset in the block is 32-bit: the whole block must stay under 4 GiB */
    if (n > UINT32_MAX / 64 || text > UINT32_MAX) return 0;
    uint64_t size = entries_off(n) + (uint64_t)n * sizeof(ef_ctx_entry) + text;
    return size > UINT32_MAX ? 0 : (size_t)size;
}

/* Copies b into the block's text; the caller sized the block for it. */
static inline ef_bytes put_text(ef_context *c, ef_bytes b)
{
    char *dst = (char *)ef_context_text(c) + c->used;
    ef_copy_short(dst, b.p, b.n);
    c->used += (uint32_t)b.n;
    return (ef_bytes){dst, b.n};
}

ef_context *ef_request_init(ef_eval_request *req, void *mem, size_t n, size_t text,
                            ef_bytes flag_key, ef_bytes entity_id)
{
    (void)text; /* the caller sized the block; put_text never checks again */
    ef_context *c = mem;
    size_t slots = index_slots(n);
    c->n = 0;
    c->cap = (uint32_t)n;
    c->mask = (uint16_t)(slots ? slots - 1 : 0);
    c->used = 0;
    c->linear = slots == 0;
    c->borrowed = NULL;
    c->e_off = (uint16_t)entries_off(n);
    c->text_off = (uint32_t)(c->e_off + n * sizeof(ef_ctx_entry));
    memset(c->index, 0, slots);
    req->flag_key = put_text(c, flag_key);
    req->entity_id = put_text(c, entity_id);
    req->flag_hash = ef_hash_bytes(flag_key.p, flag_key.n);
    req->context = c;
    return c;
}

/* Puts entry k (key and hash are its own) in the index (index and mask: the block's, in the
 * caller's locals: the index stores are byte stores, which the compiler must otherwise assume may
 * change the header), replacing an earlier entry with the same key: the later one wins. False
 * when that would take more than EF_CONTEXT_MAX_PROBE probes: the caller gives the index up. */
static inline bool index_put(const ef_context *c, uint8_t *index, uint32_t mask, uint32_t k, ef_bytes key,
                             uint32_t hash)
{
    uint32_t i = hash & mask;
    for (uint32_t probes = 0; probes < EF_CONTEXT_MAX_PROBE; probes++, i = (i + 1) & mask) {
        uint32_t slot = index[i];
        if (!slot || ef_context_entry_is(c, &ef_context_entries(c)[slot - 1], key, hash)) {
            index[i] = (uint8_t)(k + 1); /* k < EF_CONTEXT_INDEXED: the block has no index otherwise */
            return true;
        }
    }
    return false;
}

/* One entry. The header's fields are read into locals first and written back once: the text
 * copies are char stores, which the compiler must otherwise assume may change them. */
static inline __attribute__((always_inline)) void add_entry(ef_context *c, ef_bytes key,
                                                          ef_bytes value)
{
    uint32_t hash = ef_context_hash(key.p, key.n);
    uint32_t n = c->n, used = c->used, mask = c->mask;
    char *text = (char *)c + c->text_off;
    ef_ctx_entry *entries = (ef_ctx_entry *)(void *)((char *)c + c->e_off);
    ef_ctx_entry *e = &entries[n];
    e->hash = hash;
    e->key_len = (uint32_t)key.n;
    e->value_len = (uint32_t)value.n;
    e->off = used;
    ef_copy_short(text + used, key.p, key.n);
    ef_copy_short(text + used + key.n, value.p, value.n);
    c->used = used + (uint32_t)(key.n + value.n);
    c->n = ++n;
    /* index it, replacing an earlier entry with the same key: the later one wins; keys that
     * collide on purpose give the index up (see request.h) */
    if (!c->linear && !index_put(c, c->index, mask, n - 1, key, hash)) c->linear = 1;
}

void ef_request_add_context(ef_context *c, ef_bytes key, ef_bytes value)
{
    add_entry(c, key, value);
}

void ef_request_add_pairs(ef_context *c, const ef_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) add_entry(c, kv[i].key, kv[i].value);
}

/* The index ef_request_open clears and reserves at least: the size of the index for
 * EF_REQUEST_PUT_MAX entries, cleared with constant-size stores. */
#define OPEN_INDEX 32
_Static_assert(OPEN_INDEX >= 2 * EF_REQUEST_PUT_MAX, "the open index holds the entries put");

ef_context *ef_request_open(ef_arena *a, size_t n_max, size_t text)
{
    if (n_max > EF_CONTEXT_INDEXED || text > UINT32_MAX) return NULL;
    size_t room = index_slots(n_max) > OPEN_INDEX ? index_slots(n_max) : OPEN_INDEX;
    size_t e_off = (sizeof(ef_context) + room + 3) & ~(size_t)3;
    size_t size = e_off + n_max * sizeof(ef_ctx_entry) + text;
    ef_context *c = size <= UINT32_MAX ? ef_arena_alloc(a, size) : NULL;
    if (!c) return NULL;
    c->n = 0;
    c->mask = (uint16_t)(index_slots(n_max < EF_REQUEST_PUT_MAX ? n_max : EF_REQUEST_PUT_MAX) - 1);
    c->linear = 0;
    c->borrowed = NULL;
    c->e_off = (uint16_t)e_off;
    c->text_off = (uint32_t)(e_off + n_max * sizeof(ef_ctx_entry));
    memset(c->index, 0, OPEN_INDEX); /* the slots in use are within the first mask + 1 */
    return c;
}

/* The index of a block built in place, sized for its n entries and built again from them: for
 * more than ef_request_put indexes. Out of line: it is rare, and its registers would make every
 * close save and restore them. */
static __attribute__((noinline)) void reindex(ef_context *c, size_t n)
{
    /* n <= the n_max the block was opened with, so index_slots(n) fits before e_off */
    size_t slots = index_slots(n);
    uint32_t mask = (uint32_t)slots - 1;
    uint8_t *index = c->index, linear = 0;
    memset(index, 0, slots);
    const ef_ctx_entry *entries = ef_context_entries(c);
    const char *text = ef_context_text(c);
    for (uint32_t k = 0; k < n && !linear; k++)
        linear = !index_put(c, index, mask, k, (ef_bytes){text + entries[k].off, entries[k].key_len},
                            entries[k].hash);
    c->mask = (uint16_t)mask;
    c->linear = linear;
}

void ef_request_close(ef_eval_request *req, ef_context *c, size_t n, size_t used, ef_bytes flag_key,
                      ef_bytes entity_id)
{
    c->n = (uint32_t)n;
    c->cap = (uint32_t)n;
    c->used = (uint32_t)used;
    req->flag_key = flag_key;
    req->entity_id = entity_id;
    req->flag_hash = ef_hash_bytes(flag_key.p, flag_key.n);
    req->context = c;
    if (n > EF_REQUEST_PUT_MAX) reindex(c, n); /* ef_request_put indexed the first ones only */
}

ef_bytes ef_context_find_linear(const ef_context *c, ef_bytes key, uint32_t hash)
{
    if (c->borrowed) { /* nothing hashed: lengths first, then bytes */
        for (uint32_t i = c->n; i-- > 0;) {
            const ef_kv *p = &c->borrowed[i];
            if (p->key.n == key.n && ef_mem_eq(p->key.p, key.p, key.n))
                return p->value.p ? p->value : (ef_bytes){"", 0};
        }
        return (ef_bytes){"", 0};
    }
    const ef_ctx_entry *e = ef_context_entries(c);
    for (uint32_t i = c->n; i-- > 0;)
        if (ef_context_entry_is(c, &e[i], key, hash))
            return (ef_bytes){ef_context_text(c) + e[i].off + key.n, e[i].value_len};
    return (ef_bytes){"", 0};
}

void ef_request_borrow(ef_eval_request *req, ef_context *c, ef_bytes flag_key, ef_bytes entity_id,
                       const ef_kv *kv, size_t n)
{
    *c = (ef_context){.n = (uint32_t)n, .cap = (uint32_t)n, .linear = 1, .borrowed = kv};
    req->flag_key = flag_key;
    req->entity_id = entity_id;
    req->flag_hash = ef_hash_bytes(flag_key.p, flag_key.n);
    req->context = n ? c : NULL;
}

int ef_request_build(ef_arena *a, ef_bytes flag_key, ef_bytes entity_id, const ef_kv *kv,
                     size_t n, ef_eval_request *req)
{
    size_t text = flag_key.n + entity_id.n;
    for (size_t i = 0; i < n; i++) {
        text += kv[i].key.n + kv[i].value.n;
        if (text > UINT32_MAX) return -1;
    }
    size_t size = ef_request_size(n, text);
    void *mem = size ? ef_arena_alloc(a, size) : NULL;
    if (!mem) return -1;
    ef_context *c = ef_request_init(req, mem, n, text, flag_key, entity_id);
    ef_request_add_pairs(c, kv, n);
    return 0;
}
