/*
 * model.h - the compiled, in-memory form of a namespace (internal to src/eval/).
 *
 * Everything a request needs is pre-parsed at compile time: numbers, dates and isoneof lists in
 * constraints, distribution boundaries, the CRC-32 of each flag key. A snapshot compiled from a
 * document lives in two arenas, what evaluations read kept apart from what they only hand on
 * (names, result keys, attachments, the document); one assembled from flag parts (the store's
 * incremental path) owns a reference to each part instead. Neither is modified after it is built
 * (but for the lazily assembled document, set once atomically).
 */
#ifndef EF_EVAL_MODEL_H
#define EF_EVAL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/hash.h"
#include "eval/eval.h"

typedef enum ef_ctype {
    EF_CT_UNKNOWN = 0,
    EF_CT_STRING,
    EF_CT_NUMBER,
    EF_CT_BOOLEAN,
    EF_CT_DATETIME,
    EF_CT_ENTITY_ID,
} ef_ctype;

typedef enum ef_op {
    EF_OP_OTHER = 0, /* any string the engine does not implement: never matches */
    EF_OP_EQ,
    EF_OP_NEQ,
    EF_OP_LT,
    EF_OP_LTE,
    EF_OP_GT,
    EF_OP_GTE,
    EF_OP_EMPTY,
    EF_OP_NOTEMPTY,
    EF_OP_TRUE,
    EF_OP_FALSE,
    EF_OP_PRESENT,
    EF_OP_NOTPRESENT,
    EF_OP_PREFIX,
    EF_OP_SUFFIX,
    EF_OP_CONTAINS,
    EF_OP_NOTCONTAINS,
    EF_OP_ISONEOF,
    EF_OP_ISNOTONEOF,
} ef_op;

/* What a constraint tests, its type, operator and the validity of its value fused at compile time
 * (ef_constraint_prepare), so that a request pays one dispatch where it paid three (type, then the
 * operator twice around the empty-value check): a dispatch a constraint is the branch a cold
 * evaluation mispredicts most. Every kind but EMPTY, NOTEMPTY and NEVER is false on an empty value. */
typedef enum ef_ckind {
    EF_K_NEVER = 0,  /* false whatever the value: an operator the type lacks, a value that did not parse */
    EF_K_EMPTY,      /* empty (STRING), notpresent (NUMBER, BOOLEAN, DATETIME) */
    EF_K_NOTEMPTY,   /* notempty, present, and STRING isnotoneof with an invalid list */
    EF_K_STR_EQ,
    EF_K_STR_NEQ,
    EF_K_STR_PREFIX,
    EF_K_STR_SUFFIX,
    EF_K_STR_CONTAINS,
    EF_K_STR_NOTCONTAINS,
    EF_K_STR_IN,
    EF_K_STR_NOTIN,
    EF_K_NUM_EQ,
    EF_K_NUM_NEQ,
    EF_K_NUM_LT,
    EF_K_NUM_LTE,
    EF_K_NUM_GT,
    EF_K_NUM_GTE,
    EF_K_NUM_IN,
    EF_K_NUM_NOTIN,
    EF_K_BOOL_TRUE,
    EF_K_BOOL_FALSE,
    EF_K_TIME_EQ,
    EF_K_TIME_NEQ,
    EF_K_TIME_LT,
    EF_K_TIME_LTE,
    EF_K_TIME_GT,
    EF_K_TIME_GTE,
} ef_ckind;

/* 32 bytes, two to a cache line: a segment's constraints are read one after another. What a
 * request reads first is at the front: kind, then the property's hash and length. Only what the
 * kind needs of the value is kept (ef_constraint_prepare): a string kind's bytes, a list, a
 * number or a time, in one place. */
typedef struct ef_constraint {
    uint8_t kind;   /* ef_ckind: all the request path switches on */
    uint8_t type;   /* ef_ctype */
    uint8_t op;     /* ef_op */
    bool value_ok;  /* the value parsed for this type (number, date or list) */
    uint32_t n;     /* EF_K_STR_EQ..EF_K_STR_NOTCONTAINS: the value's length; *_IN, *_NOTIN: the list's */
    /* ef_context_hash(property) | property.n << 32: a context entry's hash and key length, which
     * lie side by side (ef_ctx_entry), compared in one go before any byte */
    uint64_t prop_tag;
    const char *prop; /* the property's bytes (prop_tag >> 32 of them) */
    union {
        const char *str;      /* the string kinds: the value's bytes */
        int32_t num;          /* the NUMBER comparisons */
        int64_t secs;         /* the DATETIME comparisons, seconds since the epoch */
        const ef_bytes *strs; /* EF_K_STR_IN, EF_K_STR_NOTIN */
        const int32_t *nums;  /* EF_K_NUM_IN, EF_K_NUM_NOTIN */
    };
} ef_constraint;

_Static_assert(sizeof(ef_constraint) == 32, "two constraints to a cache line");

static inline ef_bytes ef_constraint_property(const ef_constraint *c)
{
    return (ef_bytes){c->prop, (size_t)(c->prop_tag >> 32)};
}

struct ef_segment {
    ef_bytes key;
    bool match_all;
    uint32_t ncons;
    /* constraints a request tests, from the first (compile.c's segment_finish): fewer than ncons
     * when the others cannot match or one is of an unknown type; then the segment fails unless
     * one tested decides it (ANY: one matched) */
    uint32_t ntest;
    const ef_constraint *cons;
};

typedef struct ef_segment_set {
    bool op_and;
    uint32_t n;
    const ef_segment *segs; /* unique by key; a repeated key keeps its first position, last definition */
} ef_segment_set;

typedef struct ef_distribution {
    ef_bytes variant_key;
    uint16_t vidx; /* of variant_key in the flag's tally (tally.c) */
    ef_bytes attachment;
    ef_bytes attachment_json; /* as the JSON string literal responses write (compile time) */
    bool has_attachment;
} ef_distribution;

typedef struct ef_rule {
    ef_segment_set segs;
    uint32_t ndist;               /* distributions with rollout > 0 */
    const ef_distribution *dist;
    /* normalised cumulative boundaries (per mille), sorted; at least EF_RULE_BOUNDS_MIN of them,
     * INT32_MAX past ndist, so that a rule of a few distributions is counted in one fixed-length
     * pass (evaluate.c's bucket_index) */
    const int32_t *bounds;
} ef_rule;

#define EF_RULE_BOUNDS_MIN 8

typedef enum ef_rollout_kind {
    EF_ROLLOUT_NONE = 0, /* neither threshold nor segment: skipped */
    EF_ROLLOUT_THRESHOLD,
    EF_ROLLOUT_SEGMENT,
} ef_rollout_kind;

typedef struct ef_rollout {
    uint8_t kind;
    bool value;
    float percentage;
    ef_segment_set segs;
} ef_rollout;

/* The first 64 bytes hold what every evaluation reads, in the order it reads them (the key that
 * confirms the lookup, then type and state, then the rules or rollouts to walk): where a flag
 * starts a cache line, as both places that keep flags make it (compile.c), finding and starting
 * one costs one line. The defaults, read when no rule matches, and the name follow. */
struct ef_flag {
    ef_bytes key;
    uint8_t type; /* ef_flag_type */
    bool enabled;
    bool has_default;
    bool default_has_attachment;
    uint32_t key_crc; /* crc32 of the key; variant bucketing continues it with the entity id */
    uint32_t nrules;
    uint32_t nrollouts;
    const ef_rule *rules;
    const ef_rollout *rollouts;
    ef_tally *tally;       /* where its evaluations are counted (eval.h): only slot[] and owner change */
    uint16_t default_vidx; /* of default_key in the tally (tally.c) */
    ef_bytes default_key;
    ef_bytes default_attachment;
    ef_bytes default_attachment_json; /* as a JSON string literal, as for a distribution */
    ef_bytes name;
};

/* What an evaluation reads of a flag fits the line it starts on. */
_Static_assert(offsetof(ef_flag, default_vidx) + sizeof(uint16_t) <= 64, "a flag's hot fields fit one line");

/* One flag compiled on its own, shared by every snapshot that contains it unchanged (DESIGN.md
 * principle 8): a write recompiles only the parts it touched. Immutable once compiled except for
 * refs, which is atomic because the last snapshot holding a part may be freed by an RCU callback
 * on another thread. */
struct ef_flag_part {
    ef_flag flag;        /* first: a part is allocated line-aligned (compile.c), and so is its flag */
    int refs;
    uint64_t piece_hash; /* of piece: combined into the snapshot's document hash */
    uint64_t key_hash;   /* ef_hash_bytes of the flag key, for the snapshot's table */
    ef_bytes piece;      /* the flag's object in the snapshot document, compiled into flag */
    ef_arena arena;      /* owns the piece and everything flag points to */
};

/* Parts are owned in pages of EF_PART_PAGE consecutive flags (document order): a snapshot holds
 * one reference per page, and a page one per part, so publishing after a one-flag write costs a
 * reference per page plus one new page, not a reference per flag (10,000 scattered atomic
 * increments were most of a write's cost). A page also carries the combined hash of its pieces. */
#define EF_PART_PAGE_SHIFT 6
#define EF_PART_PAGE (1u << EF_PART_PAGE_SHIFT)

/* An assembled snapshot's key table, immutable once published except that appending flags may
 * fill empty slots in place (below), reference-counted: a write that changes no flag's place
 * (most do not) shares it instead of copying it (128 KiB at 10,000 flags, 1 MiB at 100,000).
 * Slots are read and written with relaxed atomics: a reader of an older snapshot may see a slot
 * filled for a later one, whose index is beyond its flag count, and probes on past it. */
typedef struct ef_slot_block {
    uint32_t refs;   /* atomic */
    uint32_t cap;
    uint32_t filled; /* the table holds flags [0, filled) exactly; only the publisher reads it */
    uint32_t slots[];
} ef_slot_block;

typedef struct ef_part_page {
    int refs; /* atomic, as a part's */
    uint32_t n;
    uint64_t hash; /* of its parts' piece hashes, in order */
    ef_flag_part *parts[EF_PART_PAGE];
    const ef_flag *flags[EF_PART_PAGE]; /* &parts[i]->flag: a snapshot's flag page */
} ef_part_page;

typedef struct ef_snapshot_doc_cache {
    size_t len;
    char data[];
} ef_snapshot_doc_cache;

struct ef_snapshot {
    ef_arena arena;
    /* a compiled document's strings that evaluations only hand on (names, the keys and
     * attachments results point to), apart from arena's lines that they read (compile.c) */
    ef_arena cold;
    ef_bytes namespace_key;
    ef_bytes document; /* the source snapshot document, when attached */
    uint64_t document_hash;
    uint64_t version;
    uint32_t nflags;
    /* a compiled document's flags, one line-aligned array: flag i is flat[i], found by the lookup
     * without reading a page (two dependent loads fewer: 2.6 % of a cold evaluation,
     * bench/eval_ab.mjs); NULL for an assembled snapshot, whose flags are its parts' */
    const ef_flag *flat;
    /* Flag i (unique by key: a later duplicate replaces an earlier one) is
     * fpages[i / EF_PART_PAGE][i % EF_PART_PAGE] (ef_snapshot_flag): pages of flag pointers, so
     * that a snapshot assembled after a one-flag write shares all but one with the one before
     * (a flat array was a copy of every pointer per write: 800 KB at 100,000 flags). */
    const ef_flag *const *const *fpages;
    /* assembled snapshots (NULL otherwise): ceil(nflags / EF_PART_PAGE) pages, one reference
     * each; part i, which holds flag i, is pages[i / EF_PART_PAGE]->parts[i % EF_PART_PAGE], and
     * fpages[k] is pages[k]->flags */
    ef_part_page **pages;
    uint32_t npages;
    ef_snapshot_doc_cache *assembled; /* the document assembled from parts on first use (atomic) */
    uint32_t *slots;   /* open addressing: flag index + 1, 0 = empty (an index >= nflags: a later
                        * snapshot's flag, see ef_slot_block), with the key's tag (ef_slot_tag) */
    uint32_t mask;     /* slots has mask + 1 entries, a power of two */
    /* assembled snapshots: slots lives in this block, shared (one reference each) by the
     * snapshots that followed with the same keys at the same places; NULL: in the arena */
    ef_slot_block *slot_block;
};

/* A key table slot holds a flag's index + 1 in its low bits and, in a table of at most 2^24
 * slots (8 million flags), the top byte of the key's hash in its top byte: a probe that meets
 * another key turns away on the slot alone, without reading that flag and its key (cold lines).
 * A larger table needs every bit for the index and has no tag (mask 0). The mask follows from
 * the table's size, so it is derived where it is needed, not stored. */
static inline uint32_t ef_slot_tag_mask(uint32_t table_mask)
{
    return table_mask < (1u << 24) ? 0xFF000000u : 0;
}

/* The tag of a key with hash h (ef_hash_bytes) in a table whose tag mask is tm. */
static inline uint32_t ef_slot_tag(uint64_t h, uint32_t tm)
{
    return (uint32_t)(h >> 32) & tm;
}

/* The flag index + 1 a non-empty slot holds if its tag is `tag`, else 0 (another key's): what
 * every probe of the table (lookup, build, append) asks of a slot before it reads a flag. */
static inline uint32_t ef_slot_match(uint32_t slot, uint32_t tag, uint32_t tm)
{
    return (slot & tm) == tag ? slot & ~tm : 0;
}

static inline const ef_flag *ef_snapshot_flag(const ef_snapshot *s, uint32_t i)
{
    return s->flat ? &s->flat[i] : s->fpages[i >> EF_PART_PAGE_SHIFT][i & (EF_PART_PAGE - 1)];
}

/* tally.c: gives f its tally (distinct variant keys, unbound slots) and each variant key its
 * index; called last by compile_flag. False on out-of-memory. */
bool ef_flag_tally_prepare(ef_arena *a, ef_flag *f);

/* constraint.c */
uint8_t ef_op_parse(ef_bytes name); /* exact, case-sensitive operator name, else EF_OP_OTHER */
/* Fills c, whose type and op are set, from its property and value, both already where they stay
 * (a list's strings point into value): the property's tag, what can be parsed once, the kind,
 * and what the kind needs of the value. False on out-of-memory. */
bool ef_constraint_prepare(ef_arena *a, ef_constraint *c, ef_bytes property, ef_bytes value);
/* Whether a constraint of this type keeps its value's bytes (or points into them) after
 * ef_constraint_prepare: a compiler need not copy any other's. */
bool ef_constraint_keeps_value(uint8_t type);
/* The segments of a rule or rollout against a request: true if the set's operator is satisfied;
 * m receives which segments matched. */
bool ef_segments_pass(const ef_segment_set *set, const ef_eval_request *req,
                      ef_matched_segments *m);
bool ef_parse_i32(ef_bytes s, int32_t *out);

/* rfc3339.c: chrono's DateTime::parse_from_rfc3339, reduced to whole seconds since the epoch. */
bool ef_rfc3339_parse(ef_bytes s, int64_t *secs);
/* The same, also giving the fraction's first nine digits as nanoseconds (0-999,999,999): what a
 * token's expiresAt keeps, since dropping it moved an expiry up to a second into the past. */
bool ef_rfc3339_parse_ns(ef_bytes s, int64_t *secs, int32_t *nanos);
/* The same reader, byte by byte: what tests compare ef_rfc3339_parse with (it reads words). */
bool ef_rfc3339_parse_scalar(ef_bytes s, int64_t *secs);

#endif
