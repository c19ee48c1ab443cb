/*
 * constraint.c - constraints and segments against one request, exactly as Flipt's engine decides.
 *
 * Compile time (ef_constraint_prepare) parses what can be parsed once: the operator, a NUMBER value
 * as i32, a DATETIME value, isoneof lists. Request time parses only the context value. Anything that
 * does not parse makes the constraint false; it is never an error. Lists follow serde_json's strict
 * reading of a JSON array of *borrowed* strings: an element with any escape makes the whole list
 * invalid (isoneof false, isnotoneof true for strings; both false for numbers).
 *
 * Must not allocate on the request path.
 */
#include "eval/model.h"

static const struct {
    const char *name;
    uint8_t op;
} op_names[] = {
    {"eq", EF_OP_EQ},           {"neq", EF_OP_NEQ},
    {"lt", EF_OP_LT},           {"lte", EF_OP_LTE},
    {"gt", EF_OP_GT},           {"gte", EF_OP_GTE},
    {"empty", EF_OP_EMPTY},     {"notempty", EF_OP_NOTEMPTY},
    {"true", EF_OP_TRUE},       {"false", EF_OP_FALSE},
    {"present", EF_OP_PRESENT}, {"notpresent", EF_OP_NOTPRESENT},
    {"prefix", EF_OP_PREFIX},   {"suffix", EF_OP_SUFFIX},
    {"contains", EF_OP_CONTAINS}, {"notcontains", EF_OP_NOTCONTAINS},
    {"isoneof", EF_OP_ISONEOF}, {"isnotoneof", EF_OP_ISNOTONEOF},
};

/* Rust's str::parse::<i32>: optional sign, one or more ASCII digits, no overflow. */
bool ef_parse_i32(ef_bytes s, int32_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (s.n == 0) return false;
    if (s.p[0] == '+' || s.p[0] == '-') {
        neg = s.p[0] == '-';
        i = 1;
    }
    if (i == s.n) return false;
    int64_t v = 0;
    for (; i < s.n; i++) {
        char c = s.p[i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
        if (v > 2147483648LL) return false;
    }
    if (neg) v = -v;
    if (v > 2147483647LL || v < -2147483648LL) return false;
    *out = (int32_t)v;
    return true;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* serde_json::from_str::<Vec<&str>> (strings) or ::<Vec<i32>> (numbers). Counts elements in a
 * first pass (out == NULL), stores them in a second. */
static bool parse_list(ef_bytes v, bool numbers, ef_bytes *strs, int32_t *nums, uint32_t *count)
{
    const char *p = v.p, *end = v.p + v.n;
    uint32_t n = 0;
    while (p < end && is_ws(*p)) p++;
    if (p >= end || *p != '[') return false;
    p++;
    while (p < end && is_ws(*p)) p++;
    if (p < end && *p == ']') {
        p++;
        goto done;
    }
    for (;;) {
        while (p < end && is_ws(*p)) p++;
        if (p >= end) return false;
        if (!numbers) {
            if (*p != '"') return false;
            const char *s = ++p;
            while (p < end && *p != '"') {
                if (*p == '\\' || (unsigned char)*p < 0x20) return false;
                p++;
            }
            if (p >= end) return false;
            if (strs) strs[n] = (ef_bytes){s, (size_t)(p - s)};
            p++;
        } else {
            const char *s = p;
            if (*p == '-') p++;
            if (p >= end || *p < '0' || *p > '9') return false;
            if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9') return false;
            while (p < end && *p >= '0' && *p <= '9') p++;
            if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return false; /* a float */
            /* serde_json reads "-0" as the float -0.0, which is not an i32. */
            if (p - s == 2 && s[0] == '-' && s[1] == '0') return false;
            int32_t x;
            if (!ef_parse_i32((ef_bytes){s, (size_t)(p - s)}, &x)) return false;
            if (nums) nums[n] = x;
        }
        n++;
        while (p < end && is_ws(*p)) p++;
        if (p >= end) return false;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == ']') {
            p++;
            break;
        }
        return false;
    }
done:
    while (p < end && is_ws(*p)) p++;
    if (p != end) return false;
    *count = n;
    return true;
}

static uint8_t constraint_kind(const ef_constraint *c);

uint8_t ef_op_parse(ef_bytes name)
{
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
        if (ef_bytes_eq(name, ef_bytes_of(op_names[i].name))) return op_names[i].op;
    return EF_OP_OTHER;
}

bool ef_constraint_keeps_value(uint8_t type)
{
    return type == EF_CT_STRING || type == EF_CT_ENTITY_ID;
}

bool ef_constraint_prepare(ef_arena *a, ef_constraint *c, ef_bytes property, ef_bytes value)
{
    c->value_ok = false;
    c->prop = property.p;
    c->prop_tag = ef_context_hash(property.p, property.n) | (uint64_t)property.n << 32;
    c->n = 0;
    c->secs = 0; /* the whole union: kinds that keep nothing compare equal (tests/unit/flag_same.h) */
    bool list = c->op == EF_OP_ISONEOF || c->op == EF_OP_ISNOTONEOF;
    switch (c->type) {
    case EF_CT_STRING:
    case EF_CT_ENTITY_ID:
        if (list) {
            uint32_t n;
            if (parse_list(value, false, NULL, NULL, &n)) {
                ef_bytes *strs = ef_arena_alloc(a, (n ? n : 1) * sizeof(*strs));
                if (!strs) return false;
                parse_list(value, false, strs, NULL, &n);
                c->strs = strs;
                c->n = n;
                c->value_ok = true;
            }
        }
        break;
    case EF_CT_NUMBER:
        if (list) {
            uint32_t n;
            if (parse_list(value, true, NULL, NULL, &n)) {
                int32_t *nums = ef_arena_alloc(a, (n ? n : 1) * sizeof(*nums));
                if (!nums) return false;
                parse_list(value, true, NULL, nums, &n);
                c->nums = nums;
                c->n = n;
                c->value_ok = true;
            }
        } else {
            c->value_ok = ef_parse_i32(value, &c->num);
        }
        break;
    case EF_CT_DATETIME:
        c->value_ok = ef_rfc3339_parse(value, &c->secs);
        break;
    default:
        break;
    }
    c->kind = constraint_kind(c);
    if (c->kind >= EF_K_STR_EQ && c->kind <= EF_K_STR_NOTCONTAINS) {
        c->str = value.p;
        c->n = (uint32_t)value.n;
    } else if (c->kind == EF_K_NEVER || c->kind == EF_K_EMPTY || c->kind == EF_K_NOTEMPTY) {
        /* kinds that keep nothing: what a parse left behind (a list or number the operator does
         * not use, a date that did not parse) is cleared */
        c->n = 0;
        c->secs = 0;
    }
    return true;
}

/* The value of the constraint's property in the request's context, "" when absent (the last
 * duplicate wins, as ef_context_find): the same probe, with the entry's hash and key length
 * compared as one word against the tag the constraint carries. */
static inline ef_bytes context_value(const ef_eval_request *req, const ef_constraint *c)
{
    const ef_context *x = req->context;
    if (!x) return (ef_bytes){"", 0};
    if (__builtin_expect(x->linear, 0))
        return ef_context_find_linear(x, ef_constraint_property(c), (uint32_t)c->prop_tag);
    const ef_ctx_entry *entries = ef_context_entries(x);
    for (uint32_t i = (uint32_t)c->prop_tag & x->mask;; i = (i + 1) & x->mask) {
        uint32_t slot = x->index[i];
        if (!slot) return (ef_bytes){"", 0};
        const ef_ctx_entry *e = &entries[slot - 1];
        uint64_t tag = e->hash | (uint64_t)e->key_len << 32;
        if (tag == c->prop_tag && ef_mem_eq(ef_context_text(x) + e->off, c->prop, e->key_len))
            return (ef_bytes){ef_context_text(x) + e->off + e->key_len, e->value_len};
    }
}

static bool in_str_list(const ef_constraint *c, ef_bytes v)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (ef_bytes_same(c->strs[i], v)) return true;
    return false;
}

static bool in_num_list(const ef_constraint *c, int32_t x)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (c->nums[i] == x) return true;
    return false;
}

/* Flipt's engine, operator by operator and type by type (docs/evaluation.md), reduced to what a
 * request can still change: an operator the type does not have, or a value (number, date, list)
 * that did not parse, decides the answer before any request is seen. */
_Static_assert(EF_OP_GTE - EF_OP_EQ == 5 && EF_OP_NEQ == EF_OP_EQ + 1 && EF_OP_LT == EF_OP_EQ + 2 &&
                   EF_OP_LTE == EF_OP_EQ + 3 && EF_OP_GT == EF_OP_EQ + 4,
               "the comparisons are eq, neq, lt, lte, gt, gte in a row");
_Static_assert(EF_K_NUM_GTE - EF_K_NUM_EQ == 5 && EF_K_TIME_GTE - EF_K_TIME_EQ == 5 &&
                   EF_K_NUM_LT == EF_K_NUM_EQ + 2 && EF_K_TIME_LT == EF_K_TIME_EQ + 2,
               "each type's comparison kinds in ef_op's order");

static uint8_t constraint_kind(const ef_constraint *c)
{
    switch (c->type) {
    case EF_CT_STRING:
    case EF_CT_ENTITY_ID:
        switch (c->op) {
        case EF_OP_EMPTY: return EF_K_EMPTY;
        case EF_OP_NOTEMPTY: return EF_K_NOTEMPTY;
        case EF_OP_EQ: return EF_K_STR_EQ;
        case EF_OP_NEQ: return EF_K_STR_NEQ;
        case EF_OP_PREFIX: return EF_K_STR_PREFIX;
        case EF_OP_SUFFIX: return EF_K_STR_SUFFIX;
        case EF_OP_CONTAINS: return EF_K_STR_CONTAINS;
        case EF_OP_NOTCONTAINS: return EF_K_STR_NOTCONTAINS;
        /* an invalid list: isoneof is never true, isnotoneof true for any non-empty value */
        case EF_OP_ISONEOF: return c->value_ok ? EF_K_STR_IN : EF_K_NEVER;
        case EF_OP_ISNOTONEOF: return c->value_ok ? EF_K_STR_NOTIN : EF_K_NOTEMPTY;
        default: return EF_K_NEVER;
        }
    case EF_CT_BOOLEAN:
        switch (c->op) {
        case EF_OP_PRESENT: return EF_K_NOTEMPTY;
        case EF_OP_NOTPRESENT: return EF_K_EMPTY;
        case EF_OP_TRUE: return EF_K_BOOL_TRUE;
        case EF_OP_FALSE: return EF_K_BOOL_FALSE;
        default: return EF_K_NEVER;
        }
    case EF_CT_NUMBER:
    case EF_CT_DATETIME: {
        bool num = c->type == EF_CT_NUMBER;
        if (c->op == EF_OP_PRESENT) return EF_K_NOTEMPTY;
        if (c->op == EF_OP_NOTPRESENT) return EF_K_EMPTY;
        if (!c->value_ok) return EF_K_NEVER;
        if (num && c->op == EF_OP_ISONEOF) return EF_K_NUM_IN;
        if (num && c->op == EF_OP_ISNOTONEOF) return EF_K_NUM_NOTIN;
        /* eq..gte, in the same order in ef_op and in both runs of kinds */
        if (c->op < EF_OP_EQ || c->op > EF_OP_GTE) return EF_K_NEVER;
        return (uint8_t)((num ? EF_K_NUM_EQ : EF_K_TIME_EQ) + (c->op - EF_OP_EQ));
    }
    default: return EF_K_NEVER; /* an unknown type fails its segment before it is dispatched */
    }
}

/* v as Rust's i32 parse reads it; an empty value is no number. */
static inline bool num_of(ef_bytes v, int32_t *x)
{
    return v.n != 0 && ef_parse_i32(v, x);
}

static inline bool time_of(ef_bytes v, int64_t *t)
{
    return v.n != 0 && ef_rfc3339_parse(v, t);
}

/* The one dispatch per constraint (ef_ckind). Values are short: compared inline (base/hash.h's
 * *_same), a call into memcmp cost more than the bytes. */
static inline bool constraint_matches(const ef_constraint *c, const ef_eval_request *req)
{
    ef_bytes v = c->type == EF_CT_ENTITY_ID ? req->entity_id : context_value(req, c);
    const ef_bytes cv = {c->str, c->n}; /* the string kinds' value (meaningless for the others) */
    int32_t x;
    int64_t t;
    switch ((ef_ckind)c->kind) {
    case EF_K_NEVER: return false;
    case EF_K_EMPTY: return v.n == 0;
    case EF_K_NOTEMPTY: return v.n != 0;
    case EF_K_STR_EQ: return v.n != 0 && ef_bytes_same(v, cv);
    case EF_K_STR_NEQ: return v.n != 0 && !ef_bytes_same(v, cv);
    case EF_K_STR_PREFIX: return v.n != 0 && ef_bytes_prefix_same(v, cv);
    case EF_K_STR_SUFFIX: return v.n != 0 && ef_bytes_suffix_same(v, cv);
    case EF_K_STR_CONTAINS: return v.n != 0 && ef_bytes_contains(v, cv);
    case EF_K_STR_NOTCONTAINS: return v.n != 0 && !ef_bytes_contains(v, cv);
    case EF_K_STR_IN: return v.n != 0 && in_str_list(c, v);
    case EF_K_STR_NOTIN: return v.n != 0 && !in_str_list(c, v);
    case EF_K_NUM_EQ: return num_of(v, &x) && x == c->num;
    case EF_K_NUM_NEQ: return num_of(v, &x) && x != c->num;
    case EF_K_NUM_LT: return num_of(v, &x) && x < c->num;
    case EF_K_NUM_LTE: return num_of(v, &x) && x <= c->num;
    case EF_K_NUM_GT: return num_of(v, &x) && x > c->num;
    case EF_K_NUM_GTE: return num_of(v, &x) && x >= c->num;
    case EF_K_NUM_IN: return num_of(v, &x) && in_num_list(c, x);
    case EF_K_NUM_NOTIN: return num_of(v, &x) && !in_num_list(c, x);
    case EF_K_BOOL_TRUE: return ef_bytes_eq_lit(v, "true", 4);
    case EF_K_BOOL_FALSE: return ef_bytes_eq_lit(v, "false", 5);
    case EF_K_TIME_EQ: return time_of(v, &t) && t == c->secs;
    case EF_K_TIME_NEQ: return time_of(v, &t) && t != c->secs;
    case EF_K_TIME_LT: return time_of(v, &t) && t < c->secs;
    case EF_K_TIME_LTE: return time_of(v, &t) && t <= c->secs;
    case EF_K_TIME_GT: return time_of(v, &t) && t > c->secs;
    case EF_K_TIME_GTE: return time_of(v, &t) && t >= c->secs;
    }
    return false;
}

/* ALL: every constraint matches; ANY: one does, or there are none. The loop stops at the first
 * answer; past the ntest constraints worth testing, the segment fails (compile.c's
 * segment_finish decided that for the rest: one that never matches, or of an unknown type). */
static bool segment_matches(const ef_segment *s, const ef_eval_request *req)
{
    bool all = s->match_all;
    for (uint32_t i = 0; i < s->ntest; i++)
        if (constraint_matches(&s->cons[i], req) != all) return !all;
    return s->ntest == s->ncons && (all || s->ncons == 0);
}

/* Here, next to the segment and constraint matchers, so they inline: one call per rule. */
bool ef_segments_pass(const ef_segment_set *set, const ef_eval_request *req,
                      ef_matched_segments *m)
{
    uint32_t matched = 0;
    m->segs = set->segs;
    m->n = set->n;
    m->bits[0] = 0; /* most rules have a few segments: one word */
    for (uint32_t w = 1; w < (set->n + 63) / 64; w++) m->bits[w] = 0;
    for (uint32_t i = 0; i < set->n; i++) {
        if (segment_matches(&set->segs[i], req)) {
            m->bits[i / 64] |= 1ull << (i % 64);
            matched++;
        } else if (set->op_and) {
            /* the rule fails: its matched list is never read, so the rest need not be tried
             * (an OR rule tries them all: every segment that matched is reported) */
            return false;
        }
    }
    return set->op_and ? matched == set->n : matched > 0;
}
