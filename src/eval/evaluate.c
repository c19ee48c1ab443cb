/*
 * evaluate.c - variant and boolean evaluation against a compiled snapshot.
 *
 * The hot path: no allocation, no locks, no I/O. Semantics are those of Flipt's engine
 * (docs/evaluation.md): rules and rollouts in array order, OR needs one matching segment (none
 * configured never matches), AND needs all (none configured always matches), variant buckets are
 * crc32(flagKey ‖ entityId) % 1000 against normalised boundaries, boolean thresholds are
 * crc32(entityId ‖ flagKey) % 100 < percentage.
 */
#include "eval/crc32.h"
#include "eval/model.h"

/* Lines of a request block asked for ahead: four covered its header, index, entries and the text's
 * start on bench_eval's workload; six and eight measured no better. */
#define PREFETCH_LINES 4

/* Asks for a request block's first lines while the flag is looked up: an evaluation reads its
 * header and index, then an entry, then text, each found through the one before, so cold they
 * were misses one after another. Prefetches never fault: lines past a short block cost only
 * bandwidth. */
static inline void prefetch_context(const ef_eval_request *req)
{
    const char *c = (const char *)req->context;
    if (!c) return;
    for (int i = 0; i < PREFETCH_LINES; i++) __builtin_prefetch(c + 64 * i);
}

/* Lines of a flag's rules (or rollouts) asked for ahead; four, six and eight measured alike. */
#define PREFETCH_RULE_LINES 4

/* Asks for the first lines from a flag's rules (or rollouts) array on: compile.c allocates each
 * array and then, after it, what its entries point to (segments, constraints, distributions), so
 * these lines hold the data the first rules read. Walked cold, that data was a chain of misses,
 * each address read from the line before (rule, segment, constraint); asked for together, they
 * arrive together. A line past the flag's data, or from a flag without rules (NULL), costs only
 * bandwidth: a prefetch never faults. Not behind a test of the count: waiting for it cost more
 * than the empty case saves. Four interleaved pairs of bench/eval_bench.mjs, the two builds the
 * only difference: ratio to Flipt's raw WASM engine 94.5-102.4x without, 105.5-107.5x with. */
static inline void prefetch_rules(const void *rules)
{
    /* addresses as integers: an offset added to a NULL pointer is undefined behaviour in C */
    uintptr_t at = (uintptr_t)rules;
    for (int i = 0; i < PREFETCH_RULE_LINES; i++) __builtin_prefetch((const void *)(at + 64 * (uintptr_t)i));
}

/* What an evaluator walks of the flag it looks up: find_flag asks for those lines early. */
typedef enum flag_walk { WALK_NOTHING, WALK_RULES, WALK_ROLLOUTS } flag_walk;

/* The flag with key (h = ef_hash_bytes(key)); slots of another tag are passed over unread
 * (model.h). Always inlined: every evaluation starts here, and a call costs about as much as the
 * common case. */
static inline __attribute__((always_inline)) const ef_flag *find_flag(const ef_snapshot *s, ef_bytes key,
                                                                      uint64_t h, flag_walk walk)
{
    uint32_t tm = ef_slot_tag_mask(s->mask), tag = ef_slot_tag(h, tm);
    for (uint32_t i = (uint32_t)h & s->mask;; i = (i + 1) & s->mask) {
        uint32_t slot = __atomic_load_n(&s->slots[i], __ATOMIC_RELAXED);
        if (slot == 0) return NULL;
        uint32_t at = ef_slot_match(slot, tag, tm);
        if (at == 0) continue; /* another key's */
        if (__builtin_expect(at > s->nflags, 0)) continue; /* a later snapshot's flag */
        const ef_flag *f = ef_snapshot_flag(s, at - 1);
        /* the tag matched, so this is almost surely the flag: its rules are asked for while its
         * key's bytes (another line) are compared, not after (2.5 % of a cold evaluation, ten
         * interleaved bench_eval pairs) */
        if (walk == WALK_RULES) prefetch_rules(f->rules);
        if (walk == WALK_ROLLOUTS) prefetch_rules(f->rollouts);
        if (f->key.n == key.n && ef_mem_eq(f->key.p, key.p, key.n)) return f;
    }
}

/* A request built by hand (tests, one-off callers) may leave the hash to the engine. */
static inline uint64_t request_flag_hash(const ef_eval_request *req)
{
    return req->flag_hash ? req->flag_hash : ef_hash_bytes(req->flag_key.p, req->flag_key.n);
}

const ef_flag *ef_snapshot_find_flag(const ef_snapshot *s, ef_bytes key)
{
    return find_flag(s, key, ef_hash_bytes(key.p, key.n), WALK_NOTHING);
}

const ef_flag *ef_snapshot_request_flag(const ef_snapshot *s, const ef_eval_request *req)
{
    return find_flag(s, req->flag_key, request_flag_hash(req), WALK_NOTHING);
}

const ef_flag *ef_snapshot_flag_at(const ef_snapshot *s, size_t i)
{
    return i < s->nflags ? ef_snapshot_flag(s, (uint32_t)i) : NULL;
}

bool ef_flag_enabled(const ef_flag *f)
{
    return f->enabled;
}

ef_flag_type ef_flag_get_type(const ef_flag *f)
{
    return (ef_flag_type)f->type;
}

ef_bytes ef_flag_key(const ef_flag *f)
{
    return f->key;
}

static void no_segments(ef_matched_segments *m)
{
    m->segs = NULL;
    m->n = 0;
}

/* Where target falls among n sorted boundaries, as Rust's slice::binary_search answers: the last
 * of equal boundaries on an exact hit, else the first boundary above the target (n: none). Both
 * follow from how many boundaries are <= target. A rule has a few distributions: all
 * EF_RULE_BOUNDS_MIN are counted (those past n are above any target), without a branch, since a
 * binary search's turns depend on the entity's bucket and a loop's exit on the rule, coin tosses
 * for the branch predictor (counting n of them saved 1.4 % of a cold evaluation, counting a fixed
 * eight 2.5 % more, bench/eval_ab.mjs); past that, halved. */
static inline uint32_t bucket_index(const int32_t *bounds, uint32_t n, int32_t target)
{
    uint32_t lo = 0;
    if (n <= EF_RULE_BOUNDS_MIN) {
        for (uint32_t i = 0; i < EF_RULE_BOUNDS_MIN; i++) lo += bounds[i] <= target;
    } else {
        uint32_t hi = n;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (bounds[mid] <= target)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    return lo - (lo > 0 && bounds[lo - 1] == target);
}

/* The default variant, or the empty one a flag without a default holds (compile.c's
 * flag_finish): copied as they are, no question asked. Read only when no distribution answers:
 * they lie on the flag's second line, which a match need not touch. */
static void put_default(const ef_flag *f, ef_variant_result *out)
{
    out->variant_key = f->default_key;
    out->variant_index = f->default_vidx;
    out->attachment = f->default_attachment;
    out->attachment_json = f->default_attachment_json;
    out->has_attachment = f->default_has_attachment;
}

void ef_eval_variant_flag(const ef_flag *f, const ef_eval_request *req, ef_variant_result *out)
{
    out->flag_key = f->key;
    out->tally = f->tally;
    out->match = false;
    out->reason = f->has_default ? EF_REASON_DEFAULT : EF_REASON_UNKNOWN;
    if (!f->enabled) {
        out->reason = EF_REASON_FLAG_DISABLED;
        put_default(f, out);
        no_segments(&out->segments);
        return;
    }
    for (uint32_t r = 0; r < f->nrules; r++) {
        const ef_rule *rule = &f->rules[r];
        /* straight into the result: a rule that fails leaves its bits, cleared below */
        if (!ef_segments_pass(&rule->segs, req, &out->segments)) continue;
        if (rule->ndist == 0) {
            out->match = true;
            out->reason = EF_REASON_MATCH;
            put_default(f, out);
            return;
        }
        uint32_t crc = ef_crc32_update(f->key_crc, req->entity_id.p, req->entity_id.n);
        int32_t target = (int32_t)(crc % 1000) + 1;
        uint32_t idx = bucket_index(rule->bounds, rule->ndist, target);
        if (idx >= rule->ndist) {
            out->match = false;
            put_default(f, out);
            return;
        }
        const ef_distribution *d = &rule->dist[idx];
        out->match = true;
        out->reason = EF_REASON_MATCH;
        out->variant_key = d->variant_key;
        out->variant_index = d->vidx;
        out->attachment = d->attachment;
        out->attachment_json = d->attachment_json;
        out->has_attachment = d->has_attachment;
        return;
    }
    put_default(f, out);
    no_segments(&out->segments);
}

void ef_eval_boolean_flag(const ef_flag *f, const ef_eval_request *req, ef_boolean_result *out)
{
    out->flag_key = f->key;
    out->tally = f->tally;
    uint32_t crc = 0;
    bool hashed = false; /* the entity's bucket, the same for every threshold rollout */
    for (uint32_t r = 0; r < f->nrollouts; r++) {
        const ef_rollout *ro = &f->rollouts[r];
        if (ro->kind == EF_ROLLOUT_THRESHOLD) {
            if (!hashed) {
                crc = ef_crc32_update(0, req->entity_id.p, req->entity_id.n);
                crc = ef_crc32_update(crc, f->key.p, f->key.n);
                hashed = true;
            }
            if ((float)(crc % 100) < ro->percentage) {
                out->enabled = ro->value;
                out->reason = EF_REASON_MATCH;
                no_segments(&out->segments);
                return;
            }
        } else if (ro->kind == EF_ROLLOUT_SEGMENT) {
            /* straight into the result: a rollout that fails leaves its bits, cleared below */
            if (ef_segments_pass(&ro->segs, req, &out->segments)) {
                out->enabled = ro->value;
                out->reason = EF_REASON_MATCH;
                return;
            }
        }
    }
    out->enabled = f->enabled;
    out->reason = EF_REASON_DEFAULT;
    no_segments(&out->segments);
}

ef_eval_status ef_eval_variant(const ef_snapshot *s, const ef_eval_request *req,
                               ef_variant_result *out)
{
    prefetch_context(req);
    const ef_flag *f = find_flag(s, req->flag_key, request_flag_hash(req), WALK_RULES);
    if (!f) return EF_EVAL_NOT_FOUND;
    if (f->type != EF_FLAG_VARIANT) return EF_EVAL_WRONG_TYPE;
    ef_eval_variant_flag(f, req, out);
    return EF_EVAL_OK;
}

ef_eval_status ef_eval_boolean(const ef_snapshot *s, const ef_eval_request *req,
                               ef_boolean_result *out)
{
    prefetch_context(req);
    const ef_flag *f = find_flag(s, req->flag_key, request_flag_hash(req), WALK_ROLLOUTS);
    if (!f) return EF_EVAL_NOT_FOUND;
    if (f->type != EF_FLAG_BOOLEAN) return EF_EVAL_WRONG_TYPE;
    ef_eval_boolean_flag(f, req, out);
    return EF_EVAL_OK;
}

int ef_matched_next(const ef_matched_segments *m, int from)
{
    for (uint32_t i = (uint32_t)from; i < m->n; i++)
        if (m->bits[i / 64] & (1ull << (i % 64))) return (int)i;
    return -1;
}

ef_bytes ef_matched_key(const ef_matched_segments *m, int i)
{
    return m->segs[i].key;
}

const char *ef_reason_name(ef_reason r)
{
    switch (r) {
    case EF_REASON_FLAG_DISABLED: return "FLAG_DISABLED_EVALUATION_REASON";
    case EF_REASON_MATCH: return "MATCH_EVALUATION_REASON";
    case EF_REASON_DEFAULT: return "DEFAULT_EVALUATION_REASON";
    default: return "UNKNOWN_EVALUATION_REASON";
    }
}
