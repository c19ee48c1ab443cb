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

uint8_t ef_op_parse(ef_bytes name)
{
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
        if (ef_bytes_eq(name, ef_bytes_of(op_names[i].name))) return op_names[i].op;
    return EF_OP_OTHER;
}

bool ef_constraint_prepare(ef_arena *a, ef_constraint *c)
{
    c->value_ok = false;
    c->prop_hash = ef_context_hash(c->property.p, c->property.n);
    bool list = c->op == EF_OP_ISONEOF || c->op == EF_OP_ISNOTONEOF;
    switch (c->type) {
    case EF_CT_STRING:
    case EF_CT_ENTITY_ID:
        if (list) {
            uint32_t n;
            if (parse_list(c->value, false, NULL, NULL, &n)) {
                ef_bytes *strs = ef_arena_alloc(a, (n ? n : 1) * sizeof(*strs));
                if (!strs) return false;
                parse_list(c->value, false, strs, NULL, &n);
                c->strs = strs;
                c->list_n = n;
                c->value_ok = true;
            }
        }
        break;
    case EF_CT_NUMBER:
        if (list) {
            uint32_t n;
            if (parse_list(c->value, true, NULL, NULL, &n)) {
                int32_t *nums = ef_arena_alloc(a, (n ? n : 1) * sizeof(*nums));
                if (!nums) return false;
                parse_list(c->value, true, NULL, nums, &n);
                c->nums = nums;
                c->list_n = n;
                c->value_ok = true;
            }
        } else {
            c->value_ok = ef_parse_i32(c->value, &c->num);
        }
        break;
    case EF_CT_DATETIME:
        c->value_ok = ef_rfc3339_parse(c->value, &c->secs);
        break;
    default:
        break;
    }
    return true;
}

/* The context value for a property: a missing key reads as "". Later duplicates win. */
static inline ef_bytes context_value(const ef_eval_request *req, const ef_constraint *c)
{
    return ef_context_find(req->context, c->property, c->prop_hash);
}

static bool in_str_list(const ef_constraint *c, ef_bytes v)
{
    for (uint32_t i = 0; i < c->list_n; i++)
        if (ef_bytes_eq(c->strs[i], v)) return true;
    return false;
}

static bool match_string(const ef_constraint *c, ef_bytes v)
{
    switch (c->op) {
    case EF_OP_EMPTY: return v.n == 0;
    case EF_OP_NOTEMPTY: return v.n != 0;
    default: break;
    }
    if (v.n == 0) return false;
    switch (c->op) {
    case EF_OP_EQ: return ef_bytes_eq(v, c->value);
    case EF_OP_NEQ: return !ef_bytes_eq(v, c->value);
    case EF_OP_PREFIX: return ef_bytes_has_prefix(v, c->value);
    case EF_OP_SUFFIX: return ef_bytes_has_suffix(v, c->value);
    case EF_OP_CONTAINS: return ef_bytes_contains(v, c->value);
    case EF_OP_NOTCONTAINS: return !ef_bytes_contains(v, c->value);
    case EF_OP_ISONEOF: return c->value_ok && in_str_list(c, v);
    case EF_OP_ISNOTONEOF: return !(c->value_ok && in_str_list(c, v));
    default: return false;
    }
}

static bool match_number(const ef_constraint *c, ef_bytes v)
{
    switch (c->op) {
    case EF_OP_PRESENT: return v.n != 0;
    case EF_OP_NOTPRESENT: return v.n == 0;
    default: break;
    }
    if (v.n == 0) return false;
    int32_t x;
    if (!ef_parse_i32(v, &x)) return false;
    if (c->op == EF_OP_ISONEOF || c->op == EF_OP_ISNOTONEOF) {
        if (!c->value_ok) return false;
        bool found = false;
        for (uint32_t i = 0; i < c->list_n && !found; i++) found = c->nums[i] == x;
        return c->op == EF_OP_ISONEOF ? found : !found;
    }
    if (!c->value_ok) return false;
    switch (c->op) {
    case EF_OP_EQ: return x == c->num;
    case EF_OP_NEQ: return x != c->num;
    case EF_OP_LT: return x < c->num;
    case EF_OP_LTE: return x <= c->num;
    case EF_OP_GT: return x > c->num;
    case EF_OP_GTE: return x >= c->num;
    default: return false;
    }
}

static bool match_boolean(const ef_constraint *c, ef_bytes v)
{
    switch (c->op) {
    case EF_OP_PRESENT: return v.n != 0;
    case EF_OP_NOTPRESENT: return v.n == 0;
    default: break;
    }
    bool b;
    if (ef_bytes_eq_lit(v, "true", 4))
        b = true;
    else if (ef_bytes_eq_lit(v, "false", 5))
        b = false;
    else
        return false;
    switch (c->op) {
    case EF_OP_TRUE: return b;
    case EF_OP_FALSE: return !b;
    default: return false;
    }
}

static bool match_datetime(const ef_constraint *c, ef_bytes v)
{
    switch (c->op) {
    case EF_OP_PRESENT: return v.n != 0;
    case EF_OP_NOTPRESENT: return v.n == 0;
    default: break;
    }
    int64_t t;
    if (v.n == 0 || !ef_rfc3339_parse(v, &t) || !c->value_ok) return false;
    switch (c->op) {
    case EF_OP_EQ: return t == c->secs;
    case EF_OP_NEQ: return t != c->secs;
    case EF_OP_LT: return t < c->secs;
    case EF_OP_LTE: return t <= c->secs;
    case EF_OP_GT: return t > c->secs;
    case EF_OP_GTE: return t >= c->secs;
    default: return false;
    }
}

static bool constraint_matches(const ef_constraint *c, const ef_eval_request *req)
{
    if (c->type == EF_CT_ENTITY_ID) return match_string(c, req->entity_id);
    ef_bytes v = context_value(req, c); /* one lookup site, inlined */
    switch (c->type) {
    case EF_CT_STRING: return match_string(c, v);
    case EF_CT_NUMBER: return match_number(c, v);
    case EF_CT_BOOLEAN: return match_boolean(c, v);
    case EF_CT_DATETIME: return match_datetime(c, v);
    default: return false;
    }
}

/* ALL: every constraint matches; ANY: one does, or there are none. The loop stops at the first
 * answer, and a constraint of an unknown type fails the whole segment when it is reached (the
 * constraints before it are nknown). */
static bool segment_matches(const ef_segment *s, const ef_eval_request *req)
{
    bool all = s->match_all;
    for (uint32_t i = 0; i < s->nknown; i++)
        if (constraint_matches(&s->cons[i], req) != all) return !all;
    return s->nknown == s->ncons && (all || s->ncons == 0);
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
