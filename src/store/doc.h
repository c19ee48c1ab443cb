/*
 * doc.h - flag state as a plain document: the in-memory form of Flipt's declarative format
 * (features.yml versions 1.0-1.4, YAML streams of several namespaces, or JSON).
 *
 * This is the contract between the declarative reader/writer (decl_*.c: parse, validate, emit),
 * the SQLite store (import and export go through it) and the read-only directory backend
 * (dir_*.c: documents compiled into snapshots). It holds data only: no SQL, no I/O.
 *
 * The store also loads its rows into this form (then ids and timestamps are filled in; a document
 * read from a file leaves them empty/zero), so one writer produces the snapshot document Flipt's
 * SDKs fetch, whatever the backend.
 *
 * All strings and arrays live in the ef_arena passed to whoever built the document. Strings are
 * byte strings with lengths (they may contain any UTF-8). A `pos` records where an entity was
 * written in its source file, so errors found after parsing (an unknown segment in a rule) can
 * still name file, line and column.
 */
#ifndef EF_STORE_DOC_H
#define EF_STORE_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/bytes.h"
#include "eval/eval.h"

typedef struct ef_doc_pos {
    const char *file; /* NUL-terminated, owned by the arena; NULL when unknown */
    unsigned line, column;
} ef_doc_pos;

/* Enums use Flipt's management-API numbering (the integers its SQL schema stores). */
typedef enum ef_doc_flag_type { EF_DOC_VARIANT_FLAG = 0, EF_DOC_BOOLEAN_FLAG = 1 } ef_doc_flag_type;
typedef enum ef_doc_match_type { EF_DOC_MATCH_ALL = 0, EF_DOC_MATCH_ANY = 1 } ef_doc_match_type;
typedef enum ef_doc_seg_op { EF_DOC_OP_OR = 0, EF_DOC_OP_AND = 1 } ef_doc_seg_op;
typedef enum ef_doc_ctype {
    EF_DOC_CT_UNKNOWN = 0,
    EF_DOC_CT_STRING = 1,
    EF_DOC_CT_NUMBER = 2,
    EF_DOC_CT_BOOLEAN = 3,
    EF_DOC_CT_DATETIME = 4,
    EF_DOC_CT_ENTITY_ID = 5,
} ef_doc_ctype;
typedef enum ef_doc_rollout_type {
    EF_DOC_ROLLOUT_UNKNOWN = 0,
    EF_DOC_ROLLOUT_SEGMENT = 1,
    EF_DOC_ROLLOUT_THRESHOLD = 2,
} ef_doc_rollout_type;

/* Identity and timestamps of a stored entity (zero/empty when read from a file). */
typedef struct ef_doc_meta {
    ef_bytes id;        /* UUID for variants, constraints, rules, distributions, rollouts */
    int64_t created_ns; /* Unix nanoseconds */
    int64_t updated_ns;
} ef_doc_meta;

typedef struct ef_doc_constraint {
    ef_doc_pos pos;
    ef_doc_meta meta;
    ef_doc_ctype type;
    ef_bytes property;
    ef_bytes op; /* operator as written (lower-cased by the store on write) */
    ef_bytes value;
    ef_bytes description;
} ef_doc_constraint;

typedef struct ef_doc_segment {
    ef_doc_pos pos;
    ef_doc_meta meta;
    ef_bytes key, name, description;
    ef_doc_match_type match_type;
    size_t nconstraints;
    ef_doc_constraint *constraints;
} ef_doc_segment;

typedef struct ef_doc_variant {
    ef_doc_pos pos;
    ef_doc_meta meta;
    ef_bytes key, name, description;
    ef_bytes attachment; /* compact JSON text; n == 0 means no attachment */
    bool is_default;
} ef_doc_variant;

typedef struct ef_doc_distribution {
    ef_doc_pos pos;
    ef_doc_meta meta;
    ef_bytes variant_key;
    ef_bytes variant_id; /* filled by the store */
    float rollout;
} ef_doc_distribution;

typedef struct ef_doc_rule {
    ef_doc_pos pos;
    ef_doc_meta meta;
    size_t nsegments;
    ef_bytes *segment_keys;
    ef_doc_seg_op op;
    size_t ndistributions;
    ef_doc_distribution *distributions;
} ef_doc_rule;

typedef struct ef_doc_rollout {
    ef_doc_pos pos;
    ef_doc_meta meta;
    ef_doc_rollout_type type;
    ef_bytes description;
    float percentage; /* THRESHOLD */
    bool value;       /* THRESHOLD and SEGMENT */
    size_t nsegments; /* SEGMENT */
    ef_bytes *segment_keys;
    ef_doc_seg_op op;
} ef_doc_rollout;

typedef struct ef_doc_flag {
    ef_doc_pos pos;
    ef_doc_meta meta;
    ef_bytes key, name, description;
    ef_doc_flag_type type;
    bool enabled;
    ef_bytes metadata; /* compact JSON object text; n == 0 means none */
    size_t nvariants;
    ef_doc_variant *variants;
    size_t nrules;
    ef_doc_rule *rules; /* in rank order */
    size_t nrollouts;
    ef_doc_rollout *rollouts; /* in rank order */
} ef_doc_flag;

typedef struct ef_doc_namespace {
    ef_doc_pos pos;
    ef_doc_meta meta;
    ef_bytes key, name, description;
    bool protected_; /* the default namespace */
    size_t nflags;
    ef_doc_flag *flags;
    size_t nsegments;
    ef_doc_segment *segments;
} ef_doc_namespace;

typedef struct ef_doc {
    ef_bytes version; /* "1.0".."1.4" as written in the first document ("" if none) */
    size_t nnamespaces;
    ef_doc_namespace *namespaces;
} ef_doc;

typedef struct ef_decl_error {
    char file[256];
    unsigned line, column; /* 0 when not tied to a position */
    char message[256];
} ef_decl_error;

/* Parses a declarative file's bytes (YAML stream, or JSON when name ends in .json or the data
 * starts with '{'). Checks syntax, types, keys, version gating and cross-references (segments and
 * variants named in rules exist). Returns 0, or -1 with *err naming file, line and column.
 * name is used in messages and positions. */
int ef_decl_parse(const char *name, const char *data, size_t len, ef_arena *a, ef_doc *out,
                  ef_decl_error *err);
/* Reads and parses a file. */
int ef_decl_parse_file(const char *path, ef_arena *a, ef_doc *out, ef_decl_error *err);
/* Appends the namespaces of `more` to `into` (several files of one import). Same namespace key
 * twice is an error. */
int ef_decl_merge(ef_doc *into, const ef_doc *more, ef_arena *a, ef_decl_error *err);
/* Writes a JSON number (text in JSON's number syntax) as the reader stores numbers of attachments
 * and metadata, as Flipt's importer does: integers below 19 characters exactly, others as the
 * shortest text of their double, and one past a double's range as written. The writer writes
 * numbers this way too, so export -> import -> export gives the same file. Idempotent. */
void ef_decl_put_json_number(ef_buf *b, ef_bytes text);
/* Writes a document as YAML (version "1.4" unless doc->version says otherwise; one YAML document
 * per namespace, `---` separated), in a stable order so export is reproducible. */
int ef_decl_write_yaml(const ef_doc *doc, ef_buf *out);

/* Options for the snapshot document, following Flipt's X-Flipt-Accept-Server-Version handling:
 * below 1.38.0 ENTITY_ID constraints are sent as UNKNOWN, below 1.47.0 defaultVariant is left out. */
typedef struct ef_snapdoc_segs ef_snapdoc_segs;
typedef struct ef_snapdoc_opts {
    unsigned accept_version; /* major * 10000 + minor * 100 + patch; 0 means the newest */
    /* optional, for writing many flags of one namespace: its segments written once and found by
     * key (ef_snapdoc_segs_new, from the same namespace and accept_version) */
    const ef_snapdoc_segs *segs;
} ef_snapdoc_opts;

/* ns's segments, each written once as the document writes it inline, and an index by key (the
 * first of a repeated key, as the writer finds it). Immutable once built: threads may share it.
 * NULL: out of memory. ns must outlive it. */
ef_snapdoc_segs *ef_snapdoc_segs_new(const ef_doc_namespace *ns, const ef_snapdoc_opts *opts);
/* The index in ns->segments of the segment with key, or -1. */
long ef_snapdoc_segs_find(const ef_snapdoc_segs *g, ef_bytes key);
void ef_snapdoc_segs_free(ef_snapdoc_segs *g);

/* Writes one namespace as Flipt's client snapshot document
 * (GET /internal/v1/evaluation/snapshot/namespace/{ns}; shape in reference/flipt-v1.md 4.4 and
 * flipt-engine.md): flags in document order, each rule once with its segments (and their
 * constraints) inline, distributions with variant keys and attachments, rollouts, and
 * defaultVariant when a variant is marked default. This is also what the engine compiles
 * (ef_snapshot_compile), so the document and the evaluation can never disagree. opts may be NULL. */
int ef_doc_write_snapshot(const ef_doc_namespace *ns, const ef_snapdoc_opts *opts, ef_buf *out);
/* One flag object of that document, byte for byte as ef_doc_write_snapshot writes it (ns supplies
 * the segments its rules and rollouts reference). The store's incremental snapshots are made of
 * these pieces. Returns 0, -EINVAL (a missing segment or variant; nothing appended) or -ENOMEM. */
int ef_doc_write_snapshot_flag(const ef_doc_namespace *ns, const ef_doc_flag *f,
                               const ef_snapdoc_opts *opts, ef_buf *out);
/* The values that flag object holds, as the engine reads them (ef_flag_part_compile_src compiles
 * them into the part the piece would give, without parsing it). Arrays and lowered operators are
 * allocated in a; strings otherwise point into ns and f. Returns 0, -EINVAL (where the writer
 * does), -ENOMEM, or -EILSEQ: a string is not valid UTF-8, which the writer replaces with U+FFFD,
 * so only the piece's text says what the engine reads (compile that instead). */
int ef_doc_snapshot_flag_src(const ef_doc_namespace *ns, const ef_doc_flag *f,
                             const ef_snapdoc_opts *opts, ef_arena *a, ef_flag_src *out);

#endif
