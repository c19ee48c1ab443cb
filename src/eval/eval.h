/*
 * eval.h - the evaluation engine: compiled snapshots and variant/boolean/batch evaluation.
 *
 * This is the one engine (DESIGN.md principle 1). Its answers equal those of Flipt's evaluation
 * engine (flipt-evaluation, the Rust engine inside every current Flipt SDK) on every input, including
 * the normalised distribution bucketing, i32 numbers, RFC 3339 dates compared to the second and the
 * lenient reading of unknown enum strings (docs/evaluation.md lists the rules).
 *
 * A snapshot is immutable once compiled: any number of threads may evaluate against it at once.
 * Evaluation allocates nothing and takes no lock; results point into the snapshot and the request,
 * so they are valid while both are. Publishing new snapshots safely is registry.h's job.
 *
 * This module does no I/O and knows nothing about HTTP or storage.
 */
#ifndef EF_EVAL_EVAL_H
#define EF_EVAL_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/bytes.h"
#include "base/json.h"
#include "eval/request.h"

typedef struct ef_snapshot ef_snapshot;
typedef struct ef_flag ef_flag;
typedef struct ef_segment ef_segment;
typedef struct ef_flag_part ef_flag_part;

/* Flipt's v2 evaluation reasons, numbered as in its protobuf. */
typedef enum ef_reason {
    EF_REASON_UNKNOWN = 0,
    EF_REASON_FLAG_DISABLED = 1,
    EF_REASON_MATCH = 2,
    EF_REASON_DEFAULT = 3,
} ef_reason;

typedef enum ef_flag_type {
    EF_FLAG_VARIANT = 0,
    EF_FLAG_BOOLEAN = 1,
} ef_flag_type;

typedef enum ef_eval_status {
    EF_EVAL_OK = 0,
    EF_EVAL_NOT_FOUND,  /* no flag with that key in the snapshot */
    EF_EVAL_WRONG_TYPE, /* variant evaluation of a boolean flag, or the other way round */
} ef_eval_status;

/* A rule or rollout may reference at most this many distinct segments; compile rejects more. */
#define EF_MAX_RULE_SEGMENTS 256

/* The segments that matched: a bit per segment of the rule or rollout that decided. */
typedef struct ef_matched_segments {
    const ef_segment *segs; /* the rule's segments */
    uint32_t n;             /* how many the rule has */
    uint64_t bits[EF_MAX_RULE_SEGMENTS / 64];
} ef_matched_segments;

/* Where a flag's evaluations are counted (api/eval_activity.h binds it when the flag is
 * published). The engine only points each result at its flag's tally and says which of the
 * flag's distinct variant keys it answered; it never reads or writes the counters, so counting
 * costs the engine nothing it does not ask for. One per compiled flag, in the flag's memory. */
/* series[]: the server's metric series of the flag (api/eval_metrics.c) */
#define EF_TALLY_SERIES 11
typedef struct ef_tally {
    void *owner;        /* atomic: the counter table that bound it; NULL until bound */
    void *series_owner; /* atomic: the metrics whose series fill series[]; NULL until bound */
    /* atomic: opaque here; found once, then counted without hashing */
    void *series[EF_TALLY_SERIES];
    uint32_t nvariants;       /* distinct variant keys of the flag (default and distributions) */
    const ef_bytes *variants; /* those keys; result.variant_index indexes them */
    uint32_t slot[];          /* atomic: EF_TALLY_FIXED + nvariants counter numbers, 0 = unbound */
} ef_tally;
#define EF_TALLY_FIXED 3 /* slot[0..2]: enabled, disabled, no match; then one per variant key */
#define EF_TALLY_NO_VARIANT 0xffff /* variant_index of a key past the flag's tally (never counted fast) */

typedef struct ef_variant_result {
    ef_bytes flag_key;
    const ef_tally *tally;  /* the flag's (NULL for a flag compiled without one) */
    uint16_t variant_index; /* of variant_key in tally->variants, when variant_key is not empty */
    bool match;
    ef_reason reason;
    ef_bytes variant_key;
    ef_bytes attachment;
    ef_bytes attachment_json; /* the attachment ("" when none) as a JSON string literal, escaped
                               * once at compile time; empty for a flag compiled without it */
    bool has_attachment; /* Flipt's engine leaves the field out when false; the server sends "" */
    ef_matched_segments segments;
} ef_variant_result;

typedef struct ef_boolean_result {
    ef_bytes flag_key;
    const ef_tally *tally; /* the flag's */
    bool enabled;
    ef_reason reason;
    ef_matched_segments segments;
} ef_boolean_result;

typedef struct ef_compile_error {
    size_t offset; /* byte offset of the offending JSON value in the document */
    char message[200];
} ef_compile_error;

/* Compiles a Flipt snapshot document (GET /internal/v1/evaluation/snapshot/namespace/{ns}) into a
 * snapshot. Strings are copied, so the JSON tree may be freed afterwards. Returns NULL and fills
 * *err when the document does not have the shape Flipt's engine accepts, or on out-of-memory. */
ef_snapshot *ef_snapshot_compile(const ef_json *doc, ef_compile_error *err);
void ef_snapshot_free(ef_snapshot *s);

ef_bytes ef_snapshot_namespace(const ef_snapshot *s);
size_t ef_snapshot_flag_count(const ef_snapshot *s);
/* Bytes of memory owned by the snapshot. */
size_t ef_snapshot_memory(const ef_snapshot *s);
/* The snapshot document this snapshot was compiled from, kept so the snapshot endpoint can serve
 * exactly what is being evaluated, from the same RCU-published object. Copied into the snapshot.
 * Returns 0 or -1 (out of memory). */
int ef_snapshot_attach_document(ef_snapshot *s, const char *json, size_t len);
/* The attached document, or for an assembled snapshot the document its parts make up (built on
 * first use and cached in the snapshot: thread-safe); empty if it has none. */
ef_bytes ef_snapshot_document(const ef_snapshot *s);
bool ef_snapshot_has_document(const ef_snapshot *s);
/* Appends the document (attached, or assembled from the parts) to out without caching it.
 * Returns 0 or -1 (out of memory). */
int ef_snapshot_write_document(const ef_snapshot *s, ef_buf *out);

/* ---- incremental snapshots (DESIGN.md principle 8) ----
 * A flag part is one flag object of a snapshot document (its "piece", JSON text), compiled on its
 * own and reference-counted (atomically: a snapshot freed after an RCU grace period drops its
 * references on another thread). A snapshot assembled from parts shares them with every other
 * snapshot that holds them: a write recompiles only the flags it changed. */
/* Compiles one flag object; the part has one reference, owned by the caller. NULL + *err when the
 * engine would refuse the flag (the same checks as ef_snapshot_compile) or on out-of-memory. */
ef_flag_part *ef_flag_part_compile(const char *piece, size_t len, ef_compile_error *err);
/* The same with the caller's scratch arena (reset here; reused across many flags, so a full load
 * does not allocate a parse tree's memory per flag). */
ef_flag_part *ef_flag_part_compile_in(const char *piece, size_t len, ef_arena *scratch,
                                      ef_compile_error *err);
/* ---- a flag part from values: a store's rows, compiled without a JSON round trip ----
 * The flag its piece describes, given as the values the piece holds: strings spelled as the
 * snapshot document spells them ("ALL_SEGMENT_MATCH_TYPE", a lower-cased operator...), floats as
 * a JSON reader gets them back (ef_json_float_read), attachments always present (the store's
 * pieces always write them). Arrays are the caller's and only read. */
typedef struct ef_src_constraint {
    ef_bytes type, property, op, value;
} ef_src_constraint;

typedef struct ef_src_segment {
    ef_bytes key, match_type;
    const ef_src_constraint *cons;
    size_t ncons;
} ef_src_segment;

typedef struct ef_src_segments { /* of a rule or a segment rollout */
    ef_bytes op;                   /* segmentOperator */
    const ef_src_segment *const *segs;
    size_t n;
} ef_src_segments;

typedef struct ef_src_distribution {
    ef_bytes variant_key, attachment;
    float rollout;
} ef_src_distribution;

typedef struct ef_src_rule {
    ef_src_segments segs;
    const ef_src_distribution *dist;
    size_t ndist;
} ef_src_rule;

typedef struct ef_src_rollout {
    bool threshold; /* else a segment rollout */
    bool value;
    float percentage;     /* a threshold's */
    ef_src_segments segs; /* a segment rollout's */
} ef_src_rollout;

typedef struct ef_flag_src {
    ef_bytes key, name, type;
    bool enabled, has_default;
    ef_bytes default_key, default_attachment;
    const ef_src_rule *rules;
    size_t nrules;
    const ef_src_rollout *rollouts;
    size_t nrollouts;
} ef_flag_src;

/* The part ef_flag_part_compile_in(piece, len, ...) returns, compiled from src instead of from
 * the piece's text, which it keeps as its document text: the caller guarantees that src says
 * what the piece says (tests compile both ways and compare). scratch as there (used only when
 * the part's arena must be sized in a second pass). */
ef_flag_part *ef_flag_part_compile_src(const ef_flag_src *src, const char *piece, size_t len,
                                       ef_arena *scratch, ef_compile_error *err);
void ef_flag_part_ref(ef_flag_part *p);
void ef_flag_part_unref(ef_flag_part *p); /* NULL is a no-op */
ef_bytes ef_flag_part_key(const ef_flag_part *p);
size_t ef_flag_part_memory(const ef_flag_part *p);
/* What changed in a list of parts since the one a snapshot was assembled from: the snapshot of
 * version `since`. Parts at `replaced` indices (any order) may differ, and every part from
 * `shift_from` on (SIZE_MAX: none; a flag appended at the end shifts from the old count). Parts
 * elsewhere are the very same, at the same indices. */
typedef struct ef_parts_changes {
    uint64_t since;
    size_t shift_from;
    const size_t *replaced;
    size_t nreplaced;
} ef_parts_changes;

/* A snapshot of namespace ns whose flags are parts[0..n) in document order (each gets a reference;
 * the caller keeps its own). Its document is {"namespace":{"key":ns},"flags":[pieces]}, and its
 * document hash combines ns, the pieces' hashes and `history` (the store's history identity, so
 * an ETag never matches across histories). prev (NULL, or a snapshot that stays alive during the
 * call, e.g. inside a read section) is the one being replaced: pages of parts it holds unchanged
 * are shared, and when it has the same keys at the same positions its flag table is shared (and
 * flags appended are added to it in place). changes (NULL: unknown), when prev's version is its
 * `since`, spares comparing the pages it does not name: the cost then follows the change, not n.
 * A wrong `changes` publishes a wrong snapshot; the caller derives it from its own edits. NULL on
 * out-of-memory. */
ef_snapshot *ef_snapshot_assemble(ef_bytes ns, ef_flag_part *const *parts, size_t n,
                                  uint64_t history, const ef_snapshot *prev,
                                  const ef_parts_changes *changes);
/* A 64-bit hash of the attached document (0 if none), computed once when attached: the basis of
 * the snapshot endpoint's ETag, equal on every node that holds the same state. */
uint64_t ef_snapshot_document_hash(const ef_snapshot *s);
/* The version the publisher stamped on it (the store's sequence; 0 when unknown). */
uint64_t ef_snapshot_version(const ef_snapshot *s);
void ef_snapshot_set_version(ef_snapshot *s, uint64_t version);

const ef_flag *ef_snapshot_find_flag(const ef_snapshot *s, ef_bytes key);
/* The request's flag, found with the hash its block carries (the batch path). */
const ef_flag *ef_snapshot_request_flag(const ef_snapshot *s, const ef_eval_request *req);
/* Flags in document order (duplicates removed), for listing: 0 <= i < ef_snapshot_flag_count. */
const ef_flag *ef_snapshot_flag_at(const ef_snapshot *s, size_t i);
ef_flag_type ef_flag_get_type(const ef_flag *f);
ef_bytes ef_flag_key(const ef_flag *f);
bool ef_flag_enabled(const ef_flag *f);

ef_eval_status ef_eval_variant(const ef_snapshot *s, const ef_eval_request *req,
                               ef_variant_result *out);
ef_eval_status ef_eval_boolean(const ef_snapshot *s, const ef_eval_request *req,
                               ef_boolean_result *out);
/* Evaluates an already found flag (the batch path dispatches on the flag's own type). */
void ef_eval_variant_flag(const ef_flag *f, const ef_eval_request *req, ef_variant_result *out);
void ef_eval_boolean_flag(const ef_flag *f, const ef_eval_request *req, ef_boolean_result *out);

/* Iterates matched segment keys: for (i = ef_matched_next(m, 0); i >= 0; i = ef_matched_next(m, i+1)) */
int ef_matched_next(const ef_matched_segments *m, int from);
ef_bytes ef_matched_key(const ef_matched_segments *m, int i);
static inline unsigned ef_matched_count(const ef_matched_segments *m)
{
    unsigned c = 0;
    for (unsigned w = 0; w < (m->n + 63) / 64; w++) c += (unsigned)__builtin_popcountll(m->bits[w]);
    return c;
}

const char *ef_reason_name(ef_reason r); /* "MATCH_EVALUATION_REASON", ... */

#endif
