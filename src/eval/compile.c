/*
 * compile.c - turns a Flipt snapshot document into an immutable ef_snapshot.
 *
 * The document is read the way Flipt's engine reads it (serde, camelCase, unknown fields ignored):
 * required fields must be there with the right JSON type or the whole document is rejected; unknown
 * enum strings fall back (flag type to VARIANT, segment operator to OR, match type to ANY, constraint
 * type to an "unknown" type that fails its segment). Rules and rollouts keep array order; `rank` is
 * ignored, as the engine ignores it.
 *
 * Everything is copied into the snapshot's arena; nothing here is shared with the JSON tree.
 *
 * A flag part can also be compiled from values (ef_flag_src: a store's rows, without writing and
 * parsing JSON): the src_* functions do what their compile_* counterparts do with the values the
 * JSON would hold, through the same helpers, and must never decide anything differently (test_snapdoc
 * and fuzz_decl compile both ways and compare).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include "base/buf.h"
#include "eval/model.h"

typedef struct cctx {
    ef_arena *a; /* where everything compiled goes: the snapshot's or a flag part's arena */
    /* where strings an evaluation never reads go (names, the keys and attachments a result only
     * points to), so that they do not lie between the lines it does read; NULL: in a */
    ef_arena *cold;
    ef_compile_error *err;
    bool failed;
    char pathbuf[160];
} cctx;

/* Where in the document a value is ("flags[3].rules[0].segments[1]"), kept as a chain of frames
 * on the stack and written out only for an error message: formatting it for every element cost a
 * tenth of a full load. */
typedef struct cpath {
    const struct cpath *up;
    const char *field;
    int index; /* -1: none */
} cpath;

static size_t path_put(const cpath *p, char *out, size_t cap)
{
    size_t n = p->up ? path_put(p->up, out, cap) : 0;
    int w = snprintf(out + n, cap - n, p->index >= 0 ? "%s%s[%d]" : "%s%s", p->up ? "." : "", p->field,
                     p->index);
    if (w > 0) n += (size_t)w < cap - n ? (size_t)w : cap - n - 1;
    return n;
}

/* The path as text, in c's buffer (only ever called on the way to fail). */
static const char *P(struct cctx *c, const cpath *p);

static bool fail(cctx *c, const ef_json *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(cctx *c, const ef_json *at, const char *fmt, ...)
{
    if (c->failed) return false;
    c->failed = true;
    if (c->err) {
        c->err->offset = at ? at->offset : 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err->message, sizeof(c->err->message), fmt, ap);
        va_end(ap);
    }
    return false;
}

static const char *P(cctx *c, const cpath *p)
{
    c->pathbuf[0] = '\0';
    path_put(p, c->pathbuf, sizeof(c->pathbuf));
    return c->pathbuf;
}

static const char *type_name(const ef_json *v)
{
    switch (v->type) {
    case EF_JSON_NULL: return "null";
    case EF_JSON_TRUE:
    case EF_JSON_FALSE: return "a boolean";
    case EF_JSON_NUMBER: return "a number";
    case EF_JSON_STRING: return "a string";
    case EF_JSON_ARRAY: return "an array";
    default: return "an object";
    }
}

static bool copy_to(ef_arena *a, ef_bytes in, ef_bytes *out)
{
    char *p = ef_arena_memdup(a, in.p, in.n);
    if (!p) return false;
    *out = (ef_bytes){p, in.n};
    return true;
}

static bool copy(cctx *c, ef_bytes in, ef_bytes *out)
{
    return copy_to(c->a, in, out);
}

/* Where what an evaluation never reads goes (cctx.cold). */
static ef_arena *cold_arena(const cctx *c)
{
    return c->cold ? c->cold : c->a;
}

/* A string an evaluation only hands on. */
static bool copy_cold(cctx *c, ef_bytes in, ef_bytes *out)
{
    return copy_to(cold_arena(c), in, out);
}

/* Room for n elements in the arena evaluations read, never a NULL for none (an empty array is
 * still an array). Exactly n: a spare element was a line of nothing between the lines read. */
static void *array_calloc(cctx *c, size_t n, size_t size)
{
    return ef_arena_calloc(c->a, (n ? n : 1) * size);
}

/* A rule's boundaries for n distributions: room for at least EF_RULE_BOUNDS_MIN (model.h). */
static int32_t *bounds_calloc(cctx *c, size_t n)
{
    return array_calloc(c, n > EF_RULE_BOUNDS_MIN ? n : EF_RULE_BOUNDS_MIN, sizeof(int32_t));
}

/* Scratch room for n values compiling needs and evaluation never reads. */
static void *cold_calloc(cctx *c, size_t n, size_t size)
{
    return ef_arena_calloc(cold_arena(c), (n ? n : 1) * size);
}

/* in as the JSON string literal the server's responses write (ef_json_put_str), in the arena:
 * escaped once here instead of in every response. */
static bool json_literal(cctx *c, ef_bytes in, ef_bytes *out)
{
    ef_buf b;
    ef_buf_init(&b);
    ef_json_put_str(&b, in);
    bool ok = ef_buf_ok(&b) && copy_cold(c, (ef_bytes){b.data, b.len}, out); /* attachments only */
    ef_buf_free(&b);
    return ok;
}

/* A string field (required: missing or null is an error; otherwise *present tells), copied where
 * its use says (the lines an evaluation reads, or cctx.cold), or, for a string only compared while
 * compiling (a type, an operator), the tree's own bytes: a copy of
 * "STRING_CONSTRAINT_COMPARISON_TYPE" used to lie after every constraint, between the lines an
 * evaluation reads. */
typedef enum str_use { STR_PEEK, STR_HOT, STR_COLD } str_use;

static bool str_field(cctx *c, const ef_json *obj, const cpath *path, const char *name, bool required,
                      ef_bytes *out, bool *present, str_use use)
{
    const ef_json *v = ef_json_get(obj, name);
    if (present) *present = false;
    if (ef_json_is_null(v)) {
        if (required) return fail(c, v ? v : obj, "%s: missing field `%s`", P(c, path), name);
        *out = (ef_bytes){"", 0};
        return true;
    }
    if (v->type != EF_JSON_STRING)
        return fail(c, v, "%s.%s: expected a string, found %s", P(c, path), name, type_name(v));
    if (present) *present = true;
    if (use == STR_PEEK) {
        *out = v->str;
        return true;
    }
    return (use == STR_COLD ? copy_cold(c, v->str, out) : copy(c, v->str, out)) ||
           fail(c, v, "out of memory");
}

/* A string an evaluation reads (a key it compares, a constraint's property and value). */
static bool get_str(cctx *c, const ef_json *obj, const cpath *path, const char *name, bool required,
                    ef_bytes *out, bool *present)
{
    return str_field(c, obj, path, name, required, out, present, STR_HOT);
}

/* A string an evaluation only hands on (cctx.cold). */
static bool get_cold_str(cctx *c, const ef_json *obj, const cpath *path, const char *name, bool required,
                         ef_bytes *out, bool *present)
{
    return str_field(c, obj, path, name, required, out, present, STR_COLD);
}

/* A string compared while compiling and then dropped: not copied. */
static bool peek_str(cctx *c, const ef_json *obj, const cpath *path, const char *name, bool required,
                     ef_bytes *out)
{
    return str_field(c, obj, path, name, required, out, NULL, STR_PEEK);
}

static bool get_bool(cctx *c, const ef_json *obj, const cpath *path, const char *name, bool *out)
{
    const ef_json *v = ef_json_get(obj, name);
    if (ef_json_is_null(v)) return fail(c, v ? v : obj, "%s: missing field `%s`", P(c, path), name);
    if (v->type != EF_JSON_TRUE && v->type != EF_JSON_FALSE)
        return fail(c, v, "%s.%s: expected a boolean, found %s", P(c, path), name, type_name(v));
    *out = v->type == EF_JSON_TRUE;
    return true;
}

static bool get_f32(cctx *c, const ef_json *obj, const cpath *path, const char *name, float *out)
{
    const ef_json *v = ef_json_get(obj, name);
    if (ef_json_is_null(v)) return fail(c, v ? v : obj, "%s: missing field `%s`", P(c, path), name);
    if (v->type != EF_JSON_NUMBER)
        return fail(c, v, "%s.%s: expected a number, found %s", P(c, path), name, type_name(v));
    *out = (float)v->num;
    return true;
}

/* An array field; *out is NULL when missing or null (allowed unless required). */
static bool get_arr(cctx *c, const ef_json *obj, const cpath *path, const char *name, bool required,
                    const ef_json **out)
{
    const ef_json *v = ef_json_get(obj, name);
    *out = NULL;
    if (ef_json_is_null(v)) {
        if (required) return fail(c, v ? v : obj, "%s: missing field `%s`", P(c, path), name);
        return true;
    }
    if (v->type != EF_JSON_ARRAY)
        return fail(c, v, "%s.%s: expected an array, found %s", P(c, path), name, type_name(v));
    *out = v;
    return true;
}

static bool want_obj(cctx *c, const ef_json *v, const cpath *path)
{
    if (!v || v->type != EF_JSON_OBJECT)
        return fail(c, v, "%s: expected an object, found %s", P(c, path), v ? type_name(v) : "nothing");
    return true;
}

static uint8_t constraint_type(ef_bytes t)
{
    if (ef_bytes_eq(t, EF_BYTES_LIT("STRING_CONSTRAINT_COMPARISON_TYPE"))) return EF_CT_STRING;
    if (ef_bytes_eq(t, EF_BYTES_LIT("NUMBER_CONSTRAINT_COMPARISON_TYPE"))) return EF_CT_NUMBER;
    if (ef_bytes_eq(t, EF_BYTES_LIT("BOOLEAN_CONSTRAINT_COMPARISON_TYPE"))) return EF_CT_BOOLEAN;
    if (ef_bytes_eq(t, EF_BYTES_LIT("DATETIME_CONSTRAINT_COMPARISON_TYPE"))) return EF_CT_DATETIME;
    if (ef_bytes_eq(t, EF_BYTES_LIT("ENTITY_ID_CONSTRAINT_COMPARISON_TYPE"))) return EF_CT_ENTITY_ID;
    return EF_CT_UNKNOWN;
}

/* What a constraint costs to test: no context lookup, a string compare, then values parsed on
 * every evaluation (a number, a date). One that can never match (EF_K_NEVER: an operator its type
 * lacks, a value that did not parse) goes last: segment_finish leaves it untested. */
static int constraint_cost(const ef_constraint *k)
{
    if (k->kind == EF_K_NEVER) return 5;
    switch (k->type) {
    case EF_CT_ENTITY_ID: return 0;
    case EF_CT_STRING: return 1;
    case EF_CT_BOOLEAN: return 2;
    case EF_CT_NUMBER: return 3;
    default: return 4;
    }
}

/* A segment's constraints, cheapest first (stable): every one is a pure test, and a segment is the
 * AND (ALL) or the OR (ANY) of them, so the order changes no answer, only how soon the loop stops.
 * Except past a constraint of an unknown type, which fails the segment when it is reached (the
 * engine's order): a segment holding one keeps its order. */
static void order_constraints(ef_constraint *k, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (k[i].type == EF_CT_UNKNOWN) return;
    for (uint32_t i = 1; i < n; i++) { /* insertion sort: a segment has a few */
        ef_constraint x = k[i];
        uint32_t j = i;
        for (; j > 0 && constraint_cost(&k[j - 1]) > constraint_cost(&x); j--) k[j] = k[j - 1];
        k[j] = x;
    }
}

/* A constraint's type and operator, and the values its type needs parsed once. */
static bool constraint_parse(cctx *c, ef_constraint *k, ef_bytes type, ef_bytes op, ef_bytes property,
                             ef_bytes value)
{
    k->type = constraint_type(type);
    k->op = ef_op_parse(op);
    /* the property is compared on every evaluation; the value's bytes only where they are kept */
    if (!copy(c, property, &property)) return false;
    if (ef_constraint_keeps_value(k->type) && !copy(c, value, &value)) return false;
    return ef_constraint_prepare(c->a, k, property, value);
}

/* seg->ncons constraints in cons, put in the order they are tested, and how many of them a request
 * needs to test (ntest, model.h): what a request cannot change is decided here. An ALL segment
 * with a constraint that never matches, or of an unknown type (whatever comes before it, the
 * segment fails), tests none; an ANY segment does not test those that never match (last, after
 * ordering): if no other matched, it fails as it would have after them. A segment holding a
 * constraint of an unknown type keeps its order: an ANY one tests up to it. */
static void segment_finish(ef_segment *seg, ef_constraint *cons)
{
    order_constraints(cons, seg->ncons);
    uint32_t known = 0, live = 0;
    while (known < seg->ncons && cons[known].type != EF_CT_UNKNOWN) known++;
    if (known == seg->ncons) /* ordered: those that never match are last */
        while (live < known && cons[live].kind != EF_K_NEVER) live++;
    if (seg->match_all)
        seg->ntest = live == seg->ncons ? seg->ncons : 0;
    else
        seg->ntest = known == seg->ncons ? live : known;
    seg->cons = cons;
}

/* Adds seg to segs[0..*n): a repeated key keeps its first position and takes the last
 * definition, as the engine's map does. */
static void segment_set_add(ef_segment *segs, uint32_t *n, const ef_segment *seg)
{
    uint32_t j = 0;
    while (j < *n && !ef_bytes_eq(segs[j].key, seg->key)) j++;
    segs[j] = *seg;
    if (j == *n) (*n)++;
}

static bool compile_segment(cctx *c, const ef_json *js, const cpath *path, ef_segment *seg)
{
    if (!want_obj(c, js, path)) return false;
    ef_bytes match_type;
    const ef_json *cons;
    if (!get_cold_str(c, js, path, "key", true, &seg->key, NULL) ||
        !peek_str(c, js, path, "matchType", true, &match_type) ||
        !get_arr(c, js, path, "constraints", true, &cons))
        return false;
    seg->match_all = ef_bytes_eq(match_type, EF_BYTES_LIT("ALL_SEGMENT_MATCH_TYPE"));
    seg->ncons = cons->len;
    ef_constraint *out = array_calloc(c, cons->len, sizeof(*out));
    if (!out) return fail(c, js, "out of memory");
    uint32_t i = 0;
    for (const ef_json *k = cons->child; k; k = k->next, i++) {
        cpath p2 = {path, "constraints", (int)i};
        ef_bytes type, op, property, value;
        if (!want_obj(c, k, &p2) || !peek_str(c, k, &p2, "type", true, &type) ||
            !peek_str(c, k, &p2, "property", true, &property) ||
            !peek_str(c, k, &p2, "operator", true, &op) || !peek_str(c, k, &p2, "value", true, &value))
            return false;
        if (!constraint_parse(c, &out[i], type, op, property, value)) return fail(c, k, "out of memory");
    }
    segment_finish(seg, out);
    return true;
}

/* Whether a segment fails whatever the request (segment_finish left it nothing that can decide it:
 * ntest == 0 with constraints to pass; none at all always matches). */
static bool segment_never(const ef_segment *seg)
{
    return seg->ntest == 0 && seg->ncons > 0;
}

/* What a request cannot change in a rule's or rollout's segments, decided once: an AND set with a
 * segment that never matches, or an OR set of only such segments, becomes the empty OR set (never
 * satisfied: no segment is tested); an OR set drops the segments that never match, keeping the
 * others' order, which is the order matched segments are reported in (a dropped one is never
 * reported). */
static void set_finish(ef_segment_set *set, ef_segment *segs, uint32_t n, bool op_and)
{
    uint32_t live = 0;
    for (uint32_t i = 0; i < n; i++)
        if (!segment_never(&segs[i])) segs[live++] = segs[i];
    if (op_and && live < n) { /* one segment fails: so does the set */
        op_and = false;
        live = 0;
    }
    set->op_and = op_and;
    set->n = live;
    set->segs = segs;
}

/* Segments of a rule or rollout, unique by key: a repeated key keeps its first position and takes
 * the last definition, as the engine's map does. */
static bool compile_segments(cctx *c, const ef_json *arr, const cpath *path, bool op_and,
                             ef_segment_set *set)
{
    set->op_and = op_and;
    set->n = 0;
    set->segs = NULL;
    if (!arr || arr->len == 0) return true;
    ef_segment *segs = ef_arena_calloc(c->a, arr->len * sizeof(*segs));
    if (!segs) return fail(c, arr, "out of memory");
    uint32_t n = 0, i = 0;
    for (const ef_json *js = arr->child; js; js = js->next, i++) {
        cpath p2 = {path, "segments", (int)i};
        ef_segment seg;
        if (!compile_segment(c, js, &p2, &seg)) return false;
        segment_set_add(segs, &n, &seg);
    }
    if (n > EF_MAX_RULE_SEGMENTS)
        return fail(c, arr, "%s.segments: more than %d distinct segments", P(c, path), EF_MAX_RULE_SEGMENTS);
    set_finish(set, segs, n, op_and);
    return true;
}

static bool segment_operator_is_and(cctx *c, const ef_json *obj, const cpath *path, bool required,
                                    bool *is_and)
{
    ef_bytes op;
    if (!peek_str(c, obj, path, "segmentOperator", required, &op)) return false;
    *is_and = ef_bytes_eq(op, EF_BYTES_LIT("AND_SEGMENT_OPERATOR"));
    return true;
}

/* A rule's distributions with rollout > 0 (d[0..nvalid), their rollouts in roll), normalised to
 * 100 % in float32 exactly as the engine does: cum += rollout / total * 100; boundary =
 * round(cum * 10); the last boundary is 1000. bounds has room for nvalid and at least
 * EF_RULE_BOUNDS_MIN (bounds_calloc); those past nvalid are INT32_MAX, above any bucket. */
static void rule_bounds(ef_rule *r, ef_distribution *d, const float *roll, int32_t *bounds,
                        uint32_t nvalid)
{
    uint32_t i;
    float total = 0.0f;
    for (i = 0; i < nvalid; i++) total = total + roll[i];
    float cum = 0.0f;
    for (i = 0; i < nvalid; i++) {
        float share = roll[i] / total;
        float pct = share * 100.0f;
        cum = cum + pct;
        float per_mille = cum * 10.0f;
        /* Rust's `as i32`: saturating, NaN is 0 (a rollout past f32 makes total inf, share
         * inf/inf); the plain C cast of those is undefined (found by fuzz_snapshot) */
        float rounded = roundf(per_mille);
        bounds[i] = i + 1 == nvalid ? 1000
                    : rounded != rounded ? 0
                    : rounded >= 2147483648.0f ? INT32_MAX
                    : rounded < -2147483648.0f ? INT32_MIN
                    : (int32_t)rounded;
    }
    /* The engine sorts the boundaries (they are already ascending unless float rounding says
     * otherwise) and keeps distribution i at position i. */
    for (i = 1; i < nvalid; i++) {
        int32_t b = bounds[i];
        uint32_t j = i;
        while (j > 0 && bounds[j - 1] > b) {
            bounds[j] = bounds[j - 1];
            j--;
        }
        bounds[j] = b;
    }
    for (i = nvalid; i < EF_RULE_BOUNDS_MIN; i++) bounds[i] = INT32_MAX;
    r->ndist = nvalid;
    r->dist = d;
    r->bounds = bounds;
}

static bool compile_rule(cctx *c, const ef_json *js, const cpath *path, ef_rule *r)
{
    const ef_json *segs, *dists;
    if (!want_obj(c, js, path) || !segment_operator_is_and(c, js, path, true, &r->segs.op_and) ||
        !get_arr(c, js, path, "segments", false, &segs) ||
        !get_arr(c, js, path, "distributions", true, &dists))
        return false;
    if (!compile_segments(c, segs, path, r->segs.op_and, &r->segs)) return false;

    uint32_t nd = dists->len, nvalid = 0;
    /* the boundaries first: a matched rule reads them, then one distribution */
    int32_t *bounds = bounds_calloc(c, nd);
    ef_distribution *d = array_calloc(c, nd, sizeof(*d));
    float *roll = cold_calloc(c, nd, sizeof(*roll));
    if (!d || !roll || !bounds) return fail(c, js, "out of memory");
    uint32_t i = 0;
    for (const ef_json *dj = dists->child; dj; dj = dj->next, i++) {
        cpath p2 = {path, "distributions", (int)i};
        ef_distribution x;
        float rollout;
        if (!want_obj(c, dj, &p2) || !get_cold_str(c, dj, &p2, "variantKey", true, &x.variant_key, NULL) ||
            !get_f32(c, dj, &p2, "rollout", &rollout) ||
            !get_cold_str(c, dj, &p2, "variantAttachment", false, &x.attachment, &x.has_attachment))
            return false;
        if (!json_literal(c, x.attachment, &x.attachment_json)) return fail(c, dj, "out of memory");
        if (rollout > 0.0f) {
            d[nvalid] = x;
            roll[nvalid] = rollout;
            nvalid++;
        }
    }
    rule_bounds(r, d, roll, bounds, nvalid);
    return true;
}

static bool compile_rollout(cctx *c, const ef_json *js, const cpath *path, ef_rollout *r)
{
    if (!want_obj(c, js, path)) return false;
    memset(r, 0, sizeof(*r));
    const ef_json *th = ef_json_get(js, "threshold");
    const ef_json *sg = ef_json_get(js, "segment");
    if (!ef_json_is_null(th)) {
        cpath p2 = {path, "threshold", -1};
        if (!want_obj(c, th, &p2) || !get_f32(c, th, &p2, "percentage", &r->percentage) ||
            !get_bool(c, th, &p2, "value", &r->value))
            return false;
        r->kind = EF_ROLLOUT_THRESHOLD;
    }
    if (!ef_json_is_null(sg)) {
        cpath p2 = {path, "segment", -1};
        const ef_json *segs;
        bool value, op_and;
        if (!want_obj(c, sg, &p2) || !get_bool(c, sg, &p2, "value", &value) ||
            !segment_operator_is_and(c, sg, &p2, false, &op_and) ||
            !get_arr(c, sg, &p2, "segments", true, &segs))
            return false;
        if (r->kind == EF_ROLLOUT_NONE) { /* a threshold wins when both are given */
            if (!compile_segments(c, segs, &p2, op_and, &r->segs)) return false;
            r->value = value;
            r->kind = EF_ROLLOUT_SEGMENT;
        }
    }
    return true;
}

/* Whether a set can never be satisfied: the empty OR set, which set_finish also makes of a set
 * whose segments fail whatever the request. */
static bool set_never(const ef_segment_set *set)
{
    return !set->op_and && set->n == 0;
}

/* Drops the rules and rollouts that can never match (a set that never is; a rollout neither
 * threshold nor segment), keeping the others' order: an evaluation walks only those that can
 * answer. After the tally, which still counts their variants: what it counts does not change with
 * what can match. The arrays are this flag's own, not yet shared with any reader. */
static void drop_never(ef_flag *f)
{
    ef_rule *rules = (ef_rule *)f->rules;
    uint32_t n = 0;
    for (uint32_t i = 0; i < f->nrules; i++)
        if (!set_never(&rules[i].segs)) rules[n++] = rules[i];
    f->nrules = n;
    ef_rollout *rollouts = (ef_rollout *)f->rollouts;
    n = 0;
    for (uint32_t i = 0; i < f->nrollouts; i++) {
        const ef_rollout *r = &rollouts[i];
        if (r->kind == EF_ROLLOUT_THRESHOLD || (r->kind == EF_ROLLOUT_SEGMENT && !set_never(&r->segs)))
            rollouts[n++] = *r;
    }
    f->nrollouts = n;
}

/* The last step of both ways of compiling a flag. A flag without a default variant gets the
 * empty one (key, attachment, its JSON literal), so that an evaluation copies the default without
 * asking whether there is one; then the tally (counting: tally.c), and what can never match is
 * dropped. False on out-of-memory. */
static bool flag_finish(ef_arena *a, ef_flag *f)
{
    if (!f->has_default) {
        f->default_key = (ef_bytes){"", 0};
        f->default_attachment = (ef_bytes){"", 0};
        f->default_attachment_json = EF_BYTES_LIT("\"\"");
        f->default_has_attachment = false;
    }
    if (!ef_flag_tally_prepare(a, f)) return false;
    drop_never(f);
    return true;
}

static bool compile_flag(cctx *c, const ef_json *js, const cpath *path, ef_flag *f)
{
    memset(f, 0, sizeof(*f));
    ef_bytes type;
    const ef_json *rules, *rollouts;
    if (!want_obj(c, js, path) || !get_str(c, js, path, "key", true, &f->key, NULL) ||
        !get_cold_str(c, js, path, "name", true, &f->name, NULL) ||
        !get_bool(c, js, path, "enabled", &f->enabled) ||
        !peek_str(c, js, path, "type", false, &type) ||
        !get_arr(c, js, path, "rules", false, &rules) ||
        !get_arr(c, js, path, "rollouts", false, &rollouts))
        return false;
    f->type = ef_bytes_eq(type, EF_BYTES_LIT("BOOLEAN_FLAG_TYPE")) ? EF_FLAG_BOOLEAN : EF_FLAG_VARIANT;
    f->key_crc = (uint32_t)crc32(0, (const Bytef *)f->key.p, (uInt)f->key.n);

    const ef_json *dv = ef_json_get(js, "defaultVariant");
    if (!ef_json_is_null(dv)) {
        cpath p2 = {path, "defaultVariant", -1};
        ef_bytes id;
        if (!want_obj(c, dv, &p2) || !peek_str(c, dv, &p2, "id", true, &id) ||
            !get_cold_str(c, dv, &p2, "key", true, &f->default_key, NULL) ||
            !get_cold_str(c, dv, &p2, "attachment", false, &f->default_attachment,
                     &f->default_has_attachment))
            return false;
        if (!json_literal(c, f->default_attachment, &f->default_attachment_json))
            return fail(c, dv, "out of memory");
        f->has_default = true;
    }
    if (rules && rules->len) {
        ef_rule *rs = ef_arena_calloc(c->a, rules->len * sizeof(*rs));
        if (!rs) return fail(c, rules, "out of memory");
        uint32_t i = 0;
        for (const ef_json *r = rules->child; r; r = r->next, i++) {
            cpath p2 = {path, "rules", (int)i};
            if (!compile_rule(c, r, &p2, &rs[i])) return false;
        }
        f->rules = rs;
        f->nrules = rules->len;
    }
    if (rollouts && rollouts->len) {
        ef_rollout *rs = ef_arena_calloc(c->a, rollouts->len * sizeof(*rs));
        if (!rs) return fail(c, rollouts, "out of memory");
        uint32_t i = 0;
        for (const ef_json *r = rollouts->child; r; r = r->next, i++) {
            cpath p2 = {path, "rollouts", (int)i};
            if (!compile_rollout(c, r, &p2, &rs[i])) return false;
        }
        f->rollouts = rs;
        f->nrollouts = rollouts->len;
    }
    if (!flag_finish(c->a, f)) return fail(c, js, "out of memory");
    return true;
}

/* ---- the same flag from values (ef_flag_src): a store's rows, no JSON tree ----
 * Each function below does what its compile_* counterpart above does with the value the JSON
 * would hold; nothing can be missing or of the wrong type, so only the limits and out-of-memory
 * fail. */

static bool src_segment(cctx *c, const ef_src_segment *in, ef_segment *seg)
{
    if (!copy_cold(c, in->key, &seg->key)) return fail(c, NULL, "out of memory");
    seg->match_all = ef_bytes_eq(in->match_type, EF_BYTES_LIT("ALL_SEGMENT_MATCH_TYPE"));
    seg->ncons = (uint32_t)in->ncons;
    ef_constraint *out = array_calloc(c, in->ncons, sizeof(*out));
    if (!out) return fail(c, NULL, "out of memory");
    for (size_t i = 0; i < in->ncons; i++) {
        const ef_src_constraint *k = &in->cons[i];
        if (!constraint_parse(c, &out[i], k->type, k->op, k->property, k->value))
            return fail(c, NULL, "out of memory");
    }
    segment_finish(seg, out);
    return true;
}

static bool src_segments(cctx *c, const ef_src_segments *in, const char *what, ef_segment_set *set)
{
    set->n = 0;
    set->segs = NULL;
    set->op_and = ef_bytes_eq(in->op, EF_BYTES_LIT("AND_SEGMENT_OPERATOR"));
    if (in->n == 0) return true;
    ef_segment *segs = ef_arena_calloc(c->a, in->n * sizeof(*segs));
    if (!segs) return fail(c, NULL, "out of memory");
    uint32_t n = 0;
    for (size_t i = 0; i < in->n; i++) {
        ef_segment seg;
        if (!src_segment(c, in->segs[i], &seg)) return false;
        segment_set_add(segs, &n, &seg);
    }
    if (n > EF_MAX_RULE_SEGMENTS)
        return fail(c, NULL, "flag.%s.segments: more than %d distinct segments", what,
                    EF_MAX_RULE_SEGMENTS);
    set_finish(set, segs, n, set->op_and);
    return true;
}

static bool src_rule(cctx *c, const ef_src_rule *in, ef_rule *r)
{
    if (!src_segments(c, &in->segs, "rules[]", &r->segs)) return false;
    uint32_t nvalid = 0;
    int32_t *bounds = bounds_calloc(c, in->ndist);
    ef_distribution *d = array_calloc(c, in->ndist, sizeof(*d));
    float *roll = cold_calloc(c, in->ndist, sizeof(*roll));
    if (!d || !roll || !bounds) return fail(c, NULL, "out of memory");
    for (size_t i = 0; i < in->ndist; i++) {
        const ef_src_distribution *x = &in->dist[i];
        ef_distribution *o = &d[nvalid];
        if (!copy_cold(c, x->variant_key, &o->variant_key) || !copy_cold(c, x->attachment, &o->attachment) ||
            !json_literal(c, o->attachment, &o->attachment_json))
            return fail(c, NULL, "out of memory");
        o->has_attachment = true;
        if (x->rollout > 0.0f) roll[nvalid++] = x->rollout;
    }
    rule_bounds(r, d, roll, bounds, nvalid);
    return true;
}

static bool src_rollout(cctx *c, const ef_src_rollout *in, ef_rollout *r)
{
    memset(r, 0, sizeof(*r));
    r->value = in->value;
    if (in->threshold) {
        r->kind = EF_ROLLOUT_THRESHOLD;
        r->percentage = in->percentage;
        return true;
    }
    r->kind = EF_ROLLOUT_SEGMENT;
    return src_segments(c, &in->segs, "rollouts[].segment", &r->segs);
}

static bool src_flag(cctx *c, const ef_flag_src *in, ef_flag *f)
{
    memset(f, 0, sizeof(*f));
    if (!copy(c, in->key, &f->key) || !copy_cold(c, in->name, &f->name))
        return fail(c, NULL, "out of memory");
    f->enabled = in->enabled;
    f->type = ef_bytes_eq(in->type, EF_BYTES_LIT("BOOLEAN_FLAG_TYPE")) ? EF_FLAG_BOOLEAN : EF_FLAG_VARIANT;
    f->key_crc = (uint32_t)crc32(0, (const Bytef *)f->key.p, (uInt)f->key.n);
    if (in->has_default) {
        if (!copy_cold(c, in->default_key, &f->default_key) ||
            !copy_cold(c, in->default_attachment, &f->default_attachment) ||
            !json_literal(c, f->default_attachment, &f->default_attachment_json))
            return fail(c, NULL, "out of memory");
        f->default_has_attachment = true;
        f->has_default = true;
    }
    if (in->nrules) {
        ef_rule *rs = ef_arena_calloc(c->a, in->nrules * sizeof(*rs));
        if (!rs) return fail(c, NULL, "out of memory");
        for (size_t i = 0; i < in->nrules; i++)
            if (!src_rule(c, &in->rules[i], &rs[i])) return false;
        f->rules = rs;
        f->nrules = (uint32_t)in->nrules;
    }
    if (in->nrollouts) {
        ef_rollout *rs = ef_arena_calloc(c->a, in->nrollouts * sizeof(*rs));
        if (!rs) return fail(c, NULL, "out of memory");
        for (size_t i = 0; i < in->nrollouts; i++)
            if (!src_rollout(c, &in->rollouts[i], &rs[i])) return false;
        f->rollouts = rs;
        f->nrollouts = (uint32_t)in->nrollouts;
    }
    if (!flag_finish(c->a, f)) return fail(c, NULL, "out of memory");
    return true;
}

/* Inserts flag index idx of flags, or replaces an earlier flag with the same key (the last one
 * wins). Returns the index the key now has. */
static uint32_t table_put(ef_snapshot *s, const ef_flag **flags, uint32_t idx)
{
    ef_bytes key = flags[idx]->key;
    uint64_t h = ef_hash_bytes(key.p, key.n);
    uint32_t tm = ef_slot_tag_mask(s->mask), tag = ef_slot_tag(h, tm);
    for (uint32_t i = (uint32_t)h & s->mask;; i = (i + 1) & s->mask) {
        uint32_t slot = s->slots[i];
        if (slot == 0) {
            s->slots[i] = (idx + 1) | tag;
            return idx;
        }
        uint32_t at = ef_slot_match(slot, tag, tm);
        if (at && ef_bytes_eq(flags[at - 1]->key, key)) return at - 1;
    }
}

/* The open-addressing table for up to n flags. */
static bool table_alloc(ef_snapshot *s, uint32_t n)
{
    uint32_t cap = 8;
    while (cap < n * 2u) cap *= 2;
    s->slots = ef_arena_calloc(&s->arena, cap * sizeof(*s->slots));
    s->mask = cap - 1;
    return s->slots != NULL;
}

/* s's flag pages over flags[0, s->nflags), one flat array cut into pages. */
static bool fpages_cut(ef_snapshot *s, const ef_flag **flags)
{
    uint32_t np = (s->nflags + EF_PART_PAGE - 1) / EF_PART_PAGE;
    const ef_flag *const **fp = ef_arena_alloc(&s->arena, (np + 1) * sizeof(*fp));
    if (!fp) return false;
    for (uint32_t k = 0; k < np; k++) fp[k] = flags + (size_t)k * EF_PART_PAGE;
    s->fpages = fp;
    return true;
}

ef_snapshot *ef_snapshot_compile(const ef_json *doc, ef_compile_error *err)
{
    ef_snapshot *s = calloc(1, sizeof(*s));
    if (!s) {
        if (err) snprintf(err->message, sizeof(err->message), "out of memory");
        return NULL;
    }
    ef_arena_init(&s->arena, 16384);
    /* small to start, growing as the arena does: a namespace of a few flags (one of a thousand,
     * or an application's) gets no second 16 KiB chunk */
    ef_arena_init(&s->cold, 1024);
    cctx c = {.a = &s->arena, .cold = &s->cold, .err = err};
    const ef_json *ns, *flags;
    ef_flag *store = NULL;
    const ef_flag **list = NULL;
    const cpath doc_path = {NULL, "document", -1}, ns_path = {NULL, "namespace", -1};
    if (!want_obj(&c, doc, &doc_path)) goto failed;
    ns = ef_json_get(doc, "namespace");
    if (ef_json_is_null(ns)) {
        fail(&c, doc, "document: missing field `namespace`");
        goto failed;
    }
    if (!want_obj(&c, ns, &ns_path) ||
        !get_str(&c, ns, &ns_path, "key", true, &s->namespace_key, NULL) ||
        !get_arr(&c, doc, &doc_path, "flags", true, &flags))
        goto failed;

    /* line-aligned: a flag's first line is what an evaluation reads of it (model.h) */
    store = ef_arena_calloc(&s->arena, (flags->len + 1) * sizeof(*store) + 63);
    if (store) store = (ef_flag *)(((uintptr_t)store + 63) & ~(uintptr_t)63);
    list = ef_arena_calloc(&s->arena, (flags->len + 1) * sizeof(*list));
    if (!store || !list || !table_alloc(s, flags->len)) {
        fail(&c, doc, "out of memory");
        goto failed;
    }
    uint32_t i = 0;
    for (const ef_json *fj = flags->child; fj; fj = fj->next, i++) {
        cpath path = {NULL, "flags", (int)i};
        ef_flag *f = &store[i]; /* its own storage: a duplicate's slot must not be reused */
        if (!compile_flag(&c, fj, &path, f)) goto failed;
        list[s->nflags] = f;
        uint32_t at = table_put(s, list, s->nflags);
        if (at == s->nflags)
            s->nflags++;
        else
            list[at] = f; /* same key again: the later definition, at the earlier position */
    }
    /* Flag k's definition to store[k], so that the array is the snapshot's flags in order (its
     * flat view): with no repeated key, list[k] is store[k] already. Otherwise it is the latest
     * definition of the k-th distinct key, at store[j] with j >= k; going up, store[j] is read
     * before its own turn, and no later list entry names a store[k] that was overwritten. */
    for (uint32_t k = 0; k < s->nflags; k++) {
        if (list[k] != &store[k]) store[k] = *list[k];
        list[k] = &store[k];
    }
    s->flat = store;
    if (!fpages_cut(s, list)) {
        fail(&c, doc, "out of memory");
        goto failed;
    }
    return s;
failed:
    ef_snapshot_free(s);
    return NULL;
}

/* ---- flag parts: the incremental form ---- */

/* Eight bytes at a time, read as little-endian so every node computes the same value for the
 * same bytes (ETags must agree across replicas); no seed, unlike a table hash. */
static uint64_t bytes_hash(const char *json, size_t len)
{
    const unsigned char *b = (const unsigned char *)json;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w; /* the 8 bytes as a little-endian word, on any host */
        memcpy(&w, b + i, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    for (; i < len; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    return h;
}

/* What a part is compiled from: a JSON tree, or values. */
typedef struct part_source {
    const ef_json *root;
    const ef_flag_src *src;
} part_source;

static bool compile_source(cctx *c, const part_source *from, ef_flag *f)
{
    static const cpath root_path = {NULL, "flag", -1};
    return from->src ? src_flag(c, from->src, f) : compile_flag(c, from->root, &root_path, f);
}

/* Compiles into p->arena sized exactly: once into the scratch arena to measure, once into an
 * arena of that size plus the piece's copy. Returns the copy, NULL on error (err filled). */
static char *compile_exact(ef_flag_part *p, const part_source *from, const char *piece, size_t len,
                           ef_arena *scratch, ef_compile_error *err)
{
    size_t before = ef_arena_used(scratch);
    ef_flag tmp;
    cctx c = {.a = scratch, .err = err};
    bool ok = compile_source(&c, from, &tmp);
    ef_arena_init(&p->arena, ef_arena_used(scratch) - before + ((len + 1 + 7) & ~(size_t)7));
    if (!ok) return NULL;
    c = (cctx){.a = &p->arena, .err = err};
    if (!compile_source(&c, from, &p->flag)) return NULL;
    char *copy = ef_arena_memdup(&p->arena, piece, len);
    if (!copy) fail(&c, NULL, "out of memory");
    return copy;
}

/* A part with its piece copied in, compiled from `from`. A part costs its data and no slack
 * (thousands live at once): compiled into one chunk of twice the piece plus 1 KiB (a part with
 * its piece takes about 1.8x the piece), then trimmed in place. Where that cannot be done (the
 * chunk was too small, or realloc moved it: ASan's always does) the flag is compiled twice, once
 * into the scratch arena to measure, once into an exact arena: what every part cost before (a
 * full load of 2,000 flags: 134.3 -> 121.0 M instructions). */
static ef_flag_part *part_build(const part_source *from, const char *piece, size_t len,
                                ef_arena *scratch, ef_compile_error *err)
{
    /* line-aligned, so that its flag's first line is what an evaluation reads (model.h) */
    ef_flag_part *p = aligned_alloc(64, (sizeof(*p) + 63) & ~(size_t)63);
    if (!p) {
        if (err) snprintf(err->message, sizeof(err->message), "out of memory");
        return NULL;
    }
    memset(p, 0, sizeof(*p));
    p->refs = 1;
    ef_arena_init(&p->arena, 2 * len + 1024);
    cctx c = {.a = &p->arena, .err = err};
    bool compiled = compile_source(&c, from, &p->flag);
    char *copy = compiled ? ef_arena_memdup(&p->arena, piece, len) : NULL;
    if (copy && !ef_arena_trim(&p->arena)) copy = NULL;
    if (compiled && !copy) {
        ef_arena_free(&p->arena);
        copy = compile_exact(p, from, piece, len, scratch, err);
    }
    if (!copy) {
        ef_arena_free(&p->arena);
        free(p);
        return NULL;
    }
    p->piece = (ef_bytes){copy, len};
    p->piece_hash = bytes_hash(piece, len);
    p->key_hash = ef_hash_bytes(p->flag.key.p, p->flag.key.n);
    return p;
}

ef_flag_part *ef_flag_part_compile_in(const char *piece, size_t len, ef_arena *scratch,
                                      ef_compile_error *err)
{
    ef_arena_reset(scratch);
    ef_json_error je;
    part_source from = {ef_json_parse(piece, len, scratch, NULL, &je), NULL};
    if (!from.root) {
        cctx c = {.a = scratch, .err = err};
        fail(&c, NULL, "flag document invalid: %s", je.message);
        return NULL;
    }
    return part_build(&from, piece, len, scratch, err);
}

ef_flag_part *ef_flag_part_compile_src(const ef_flag_src *src, const char *piece, size_t len,
                                       ef_arena *scratch, ef_compile_error *err)
{
    ef_arena_reset(scratch);
    part_source from = {NULL, src};
    return part_build(&from, piece, len, scratch, err);
}

ef_flag_part *ef_flag_part_compile(const char *piece, size_t len, ef_compile_error *err)
{
    ef_arena scratch;
    ef_arena_init(&scratch, 8 * len + 1024);
    ef_flag_part *p = ef_flag_part_compile_in(piece, len, &scratch, err);
    ef_arena_free(&scratch);
    return p;
}

void ef_flag_part_ref(ef_flag_part *p)
{
    __atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
}

void ef_flag_part_unref(ef_flag_part *p)
{
    /* the last reference may be dropped by an RCU callback on another thread: acq_rel makes
     * every earlier use happen before the free */
    if (!p || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    ef_arena_free(&p->arena);
    free(p);
}

ef_bytes ef_flag_part_key(const ef_flag_part *p)
{
    return p->flag.key;
}

size_t ef_flag_part_memory(const ef_flag_part *p)
{
    return sizeof(*p) + p->arena.total;
}

/* Whether page k of s is prev's very page: then s holds prev's parts, and flags, at its indices. */
static bool page_shared(const ef_snapshot *s, const ef_snapshot *prev, uint32_t k)
{
    return prev && prev->pages && k < prev->npages && s->pages[k] == prev->pages[k];
}

/* Part i of an assembled snapshot. */
static inline const ef_flag_part *part_at(const ef_snapshot *s, size_t i)
{
    return s->pages[i / EF_PART_PAGE]->parts[i % EF_PART_PAGE];
}

/* Does prev hold the same keys at the same positions (so its table can be copied)? Parts a write
 * did not touch are the same pointers, so this is mostly pointer comparisons. */
static bool same_layout(const ef_snapshot *prev, const ef_snapshot *s, ef_flag_part *const *parts,
                        size_t n)
{
    /* prev's flags are a prefix of parts (the same n, or flags appended: a new flag is created
     * last in document order), so prev's table holds right entries for all of them. A shared
     * page holds the same parts: only the others are compared, flag by flag. */
    if (!prev || !prev->pages || prev->nflags > n) return false;
    for (size_t i = 0; i < prev->nflags; i++) {
        if (i % EF_PART_PAGE == 0 && page_shared(s, prev, (uint32_t)(i / EF_PART_PAGE))) {
            i += EF_PART_PAGE - 1;
            continue;
        }
        const ef_flag_part *was = part_at(prev, i);
        if (was != parts[i] &&
            (was->key_hash != parts[i]->key_hash || !ef_bytes_eq(was->flag.key, parts[i]->flag.key)))
            return false;
    }
    return true;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0xff51afd7ed558ccdull;
    return h ^ (h >> 32);
}

static void page_unref(ef_part_page *pg)
{
    if (!pg || __atomic_sub_fetch(&pg->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    for (uint32_t i = 0; i < pg->n; i++) ef_flag_part_unref(pg->parts[i]);
    free(pg);
}

/* Page k of parts: prev's when it holds the same parts there (clean: known so, no comparing),
 * else a new one. */
static ef_part_page *page_for(const ef_snapshot *prev, ef_flag_part *const *parts, size_t n,
                              uint32_t k, bool clean)
{
    size_t from = (size_t)k * EF_PART_PAGE;
    uint32_t cnt = (uint32_t)(n - from < EF_PART_PAGE ? n - from : EF_PART_PAGE);
    if (prev && prev->pages && k < prev->npages) {
        ef_part_page *pp = prev->pages[k];
        if (clean || (pp->n == cnt && memcmp(pp->parts, parts + from, cnt * sizeof(*parts)) == 0)) {
            __atomic_add_fetch(&pp->refs, 1, __ATOMIC_RELAXED);
            return pp;
        }
    }
    ef_part_page *pg = malloc(sizeof(*pg));
    if (!pg) return NULL;
    pg->refs = 1;
    pg->n = cnt;
    pg->hash = 0x9E3779B97F4A7C15ull ^ cnt;
    for (uint32_t i = 0; i < cnt; i++) {
        pg->parts[i] = parts[from + i];
        pg->flags[i] = &pg->parts[i]->flag;
        ef_flag_part_ref(pg->parts[i]);
        pg->hash = mix(pg->hash, pg->parts[i]->piece_hash);
    }
    return pg;
}

/* Marks in clean[0, npages) the pages of prev that `changes` says hold the same parts (nothing
 * when it does not describe changes since prev). */
static void pages_clean(const ef_snapshot *prev, const ef_parts_changes *changes, uint32_t npages,
                        bool *clean)
{
    if (!changes || !prev || !prev->pages || prev->version != changes->since) return;
    for (uint32_t k = 0; k < npages && k < prev->npages; k++) {
        size_t to = ((size_t)k + 1) * EF_PART_PAGE;
        /* wholly before the shift, prev's page keeps its parts and its count (full there, or
         * its last page when nothing shifted at all) */
        clean[k] = to <= changes->shift_from &&
                   (to <= prev->nflags || changes->shift_from == SIZE_MAX);
    }
    for (size_t r = 0; r < changes->nreplaced; r++) {
        size_t k = changes->replaced[r] / EF_PART_PAGE;
        if (k < npages) clean[k] = false;
    }
}

/* Adds flags [from, n) of s to its table, whose slots hold flags [0, from) exactly (atomic
 * stores: the table may be shared with snapshots being read). */
static void table_add(ef_snapshot *s, ef_flag_part *const *parts, size_t from, size_t n)
{
    for (size_t i = from; i < n; i++) {
        ef_flag_part *p = parts[i];
        uint32_t tm = ef_slot_tag_mask(s->mask), tag = ef_slot_tag(p->key_hash, tm);
        for (uint32_t j = (uint32_t)p->key_hash & s->mask;; j = (j + 1) & s->mask) {
            uint32_t slot = __atomic_load_n(&s->slots[j], __ATOMIC_RELAXED), at = ef_slot_match(slot, tag, tm);
            if (slot == 0 || (at && ef_bytes_eq(ef_snapshot_flag(s, at - 1)->key, p->flag.key))) {
                /* the same key again is never from the store (keys are unique): the later wins */
                __atomic_store_n(&s->slots[j], ((uint32_t)i + 1) | tag, __ATOMIC_RELAXED);
                break;
            }
        }
    }
}

ef_snapshot *ef_snapshot_assemble(ef_bytes ns, ef_flag_part *const *parts, size_t n,
                                  uint64_t history, const ef_snapshot *prev,
                                  const ef_parts_changes *changes)
{
    ef_snapshot *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    uint32_t cap = 8;
    while (cap < n * 2u) cap *= 2;
    uint32_t npages = (uint32_t)((n + EF_PART_PAGE - 1) / EF_PART_PAGE);
    ef_arena_init(&s->arena, ns.n + 64 + 2 * (npages + 1) * sizeof(void *) + npages);
    char *key = ef_arena_memdup(&s->arena, ns.p, ns.n);
    s->pages = ef_arena_calloc(&s->arena, (npages + 1) * sizeof(*s->pages));
    const ef_flag *const **fp = ef_arena_alloc(&s->arena, (npages + 1) * sizeof(*fp));
    bool *clean = ef_arena_calloc(&s->arena, npages + 1);
    if (!key || !s->pages || !fp || !clean) {
        ef_snapshot_free(s);
        return NULL;
    }
    /* Pages first: one prev holds with the same parts is shared, which also tells the steps
     * below that prev's flags there are right (after a one-flag write, all pages but one). */
    pages_clean(prev, changes, npages, clean);
    for (uint32_t k = 0; k < npages; k++) {
        s->pages[k] = page_for(prev, parts, n, k, clean[k]);
        if (!s->pages[k]) {
            ef_snapshot_free(s);
            return NULL;
        }
        s->npages = k + 1;
        fp[k] = s->pages[k]->flags;
    }
    s->fpages = fp;
    s->nflags = (uint32_t)n;
    bool same = same_layout(prev, s, parts, n) && prev->mask == cap - 1 && prev->slot_block;
    size_t from = 0; /* the flags the table must be given */
    if (same && prev->slot_block->filled == prev->nflags) {
        /* the same keys at the same places, maybe more appended: shared, the new ones added in
         * place (prev's readers skip their indices, beyond prev's flags). A table that holds more
         * than prev (a snapshot built on it was never published) is not shared: rebuilt, so
         * such leftovers never accumulate and at least half the slots stay empty. */
        s->slot_block = prev->slot_block;
        __atomic_add_fetch(&s->slot_block->refs, 1, __ATOMIC_RELAXED);
        from = prev->nflags;
    } else if ((s->slot_block = malloc(sizeof(*s->slot_block) + cap * sizeof(uint32_t)))) {
        s->slot_block->refs = 1;
        s->slot_block->cap = cap;
        memset(s->slot_block->slots, 0, cap * sizeof(uint32_t));
    }
    if (!s->slot_block) {
        ef_snapshot_free(s);
        return NULL;
    }
    s->slots = s->slot_block->slots;
    s->mask = cap - 1;
    s->namespace_key = (ef_bytes){key, ns.n};
    /* the ETag's basis: the namespace, every piece's hash in document order (by pages, so an
     * unchanged page's hash is reused), and the history the state belongs to, so a client on
     * another history never keeps a document from it */
    uint64_t h = bytes_hash(ns.p, ns.n) ^ history;
    for (uint32_t k = 0; k < npages; k++) h = mix(h, s->pages[k]->hash);
    table_add(s, parts, from, n); /* nothing fails after it: the table holds flags [0, n) */
    s->slot_block->filled = (uint32_t)n;
    s->document_hash = h ? h : 1; /* 0 means "no document" */
    return s;
}

void ef_snapshot_free(ef_snapshot *s)
{
    if (!s) return;
    for (uint32_t k = 0; k < s->npages; k++) page_unref(s->pages[k]);
    if (s->slot_block && __atomic_sub_fetch(&s->slot_block->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(s->slot_block);
    free(__atomic_load_n(&s->assembled, __ATOMIC_ACQUIRE));
    ef_arena_free(&s->arena);
    ef_arena_free(&s->cold);
    free(s);
}

ef_bytes ef_snapshot_namespace(const ef_snapshot *s)
{
    return s->namespace_key;
}

size_t ef_snapshot_flag_count(const ef_snapshot *s)
{
    return s->nflags;
}

size_t ef_snapshot_memory(const ef_snapshot *s)
{
    size_t m = sizeof(*s) + s->arena.total + s->cold.total;
    if (s->slot_block) m += sizeof(*s->slot_block) + s->slot_block->cap * sizeof(uint32_t);
    if (s->pages)
        for (uint32_t i = 0; i < s->nflags; i++) m += ef_flag_part_memory(part_at(s, i));
    return m;
}

uint64_t ef_snapshot_version(const ef_snapshot *s)
{
    return s->version;
}

void ef_snapshot_set_version(ef_snapshot *s, uint64_t version)
{
    s->version = version;
}

int ef_snapshot_attach_document(ef_snapshot *s, const char *json, size_t len)
{
    char *p = ef_arena_memdup(&s->cold, json, len); /* served, never evaluated */
    if (!p) return -1;
    s->document = (ef_bytes){p, len};
    s->document_hash = bytes_hash(json, len);
    return 0;
}

uint64_t ef_snapshot_document_hash(const ef_snapshot *s)
{
    return s->document_hash;
}

bool ef_snapshot_has_document(const ef_snapshot *s)
{
    return s->document.n || s->pages;
}

int ef_snapshot_write_document(const ef_snapshot *s, ef_buf *out)
{
    if (s->document.n) {
        ef_buf_append(out, s->document.p, s->document.n);
    } else if (s->pages) {
        /* exactly what ef_doc_write_snapshot writes for the same state: the store's pieces are
         * its flag objects */
        ef_buf_puts(out, "{\"namespace\":{\"key\":");
        ef_json_put_str(out, s->namespace_key);
        ef_buf_puts(out, "},\"flags\":[");
        for (uint32_t i = 0; i < s->nflags; i++) {
            if (i) ef_buf_putc(out, ',');
            ef_buf_append(out, part_at(s, i)->piece.p, part_at(s, i)->piece.n);
        }
        ef_buf_puts(out, "]}");
    }
    return ef_buf_ok(out) ? 0 : -1;
}

ef_bytes ef_snapshot_document(const ef_snapshot *s)
{
    if (s->document.n || !s->pages) return s->document;
    /* assembled once per snapshot, by whoever asks first; a racing builder frees its copy */
    ef_snapshot_doc_cache *d = __atomic_load_n(&s->assembled, __ATOMIC_ACQUIRE);
    if (!d) {
        ef_buf b;
        ef_buf_init(&b);
        if (ef_snapshot_write_document(s, &b) != 0) {
            ef_buf_free(&b);
            return (ef_bytes){"", 0};
        }
        d = malloc(sizeof(*d) + b.len + 1);
        if (!d) {
            ef_buf_free(&b);
            return (ef_bytes){"", 0};
        }
        d->len = b.len;
        memcpy(d->data, b.data, b.len);
        d->data[b.len] = '\0';
        ef_buf_free(&b);
        ef_snapshot_doc_cache *expected = NULL;
        ef_snapshot *m = (ef_snapshot *)s; /* the cache is the one mutable field, set once */
        if (!__atomic_compare_exchange_n(&m->assembled, &expected, d, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE)) {
            free(d);
            d = expected;
        }
    }
    return (ef_bytes){d->data, d->len};
}
