/*
 * flag_same.h - test helper: whether two compiled flag parts are the same, field by field (the
 * compiled model of src/eval/model.h, not pointers). Used by test_snapdoc and fuzz_decl to hold
 * a part compiled from a store's values to the part its piece's text compiles into.
 */
#ifndef EF_TEST_FLAG_SAME_H
#define EF_TEST_FLAG_SAME_H

#include <string.h>

#include "eval/model.h"

#define EF_SAME(cond, what)                                                                        \
    do {                                                                                           \
        if (!(cond)) return what;                                                                  \
    } while (0)

static inline const char *ef_test_segments_differ(const ef_segment_set *a, const ef_segment_set *b)
{
    EF_SAME(a->op_and == b->op_and && a->n == b->n, "segment operator or count");
    for (uint32_t i = 0; i < a->n; i++) {
        const ef_segment *x = &a->segs[i], *y = &b->segs[i];
        EF_SAME(ef_bytes_eq(x->key, y->key) && x->match_all == y->match_all &&
                    x->ncons == y->ncons && x->ntest == y->ntest,
                "segment");
        for (uint32_t k = 0; k < x->ncons; k++) {
            const ef_constraint *c = &x->cons[k], *d = &y->cons[k];
            EF_SAME(c->kind == d->kind && c->type == d->type && c->op == d->op &&
                        c->value_ok == d->value_ok && c->prop_tag == d->prop_tag && c->n == d->n &&
                        ef_bytes_eq(ef_constraint_property(c), ef_constraint_property(d)),
                    "constraint");
            /* what the kind keeps of the value, in the one place they share */
            bool str = c->kind >= EF_K_STR_EQ && c->kind <= EF_K_STR_NOTCONTAINS;
            bool strs = c->kind == EF_K_STR_IN || c->kind == EF_K_STR_NOTIN;
            bool nums = c->kind == EF_K_NUM_IN || c->kind == EF_K_NUM_NOTIN;
            if (str)
                EF_SAME(ef_bytes_eq((ef_bytes){c->str, c->n}, (ef_bytes){d->str, d->n}), "constraint value");
            else if (!strs && !nums)
                EF_SAME(c->secs == d->secs, "constraint value"); /* a number, a time, or nothing (0) */
            for (uint32_t l = 0; (strs || nums) && l < c->n; l++)
                EF_SAME(nums ? c->nums[l] == d->nums[l] : ef_bytes_eq(c->strs[l], d->strs[l]),
                        "constraint list");
        }
    }
    return NULL;
}

/* NULL when the same, else what differs. */
static inline const char *ef_test_part_differs(const ef_flag_part *pa, const ef_flag_part *pb)
{
    const ef_flag *a = &pa->flag, *b = &pb->flag;
    EF_SAME(ef_bytes_eq(pa->piece, pb->piece) && pa->piece_hash == pb->piece_hash &&
                pa->key_hash == pb->key_hash,
            "piece");
    EF_SAME(ef_bytes_eq(a->key, b->key) && ef_bytes_eq(a->name, b->name) && a->type == b->type &&
                a->enabled == b->enabled && a->key_crc == b->key_crc,
            "flag");
    EF_SAME(a->has_default == b->has_default && a->default_has_attachment == b->default_has_attachment &&
                ef_bytes_eq(a->default_key, b->default_key) &&
                ef_bytes_eq(a->default_attachment, b->default_attachment) &&
                ef_bytes_eq(a->default_attachment_json, b->default_attachment_json) &&
                a->default_vidx == b->default_vidx,
            "default variant");
    EF_SAME(a->nrules == b->nrules && a->nrollouts == b->nrollouts, "rule or rollout count");
    for (uint32_t i = 0; i < a->nrules; i++) {
        const ef_rule *x = &a->rules[i], *y = &b->rules[i];
        const char *why = ef_test_segments_differ(&x->segs, &y->segs);
        if (why) return why;
        EF_SAME(x->ndist == y->ndist, "distribution count");
        for (uint32_t k = 0; k < x->ndist; k++)
            EF_SAME(ef_bytes_eq(x->dist[k].variant_key, y->dist[k].variant_key) &&
                        ef_bytes_eq(x->dist[k].attachment, y->dist[k].attachment) &&
                        ef_bytes_eq(x->dist[k].attachment_json, y->dist[k].attachment_json) &&
                        x->dist[k].has_attachment == y->dist[k].has_attachment &&
                        x->dist[k].vidx == y->dist[k].vidx && x->bounds[k] == y->bounds[k],
                    "distribution");
    }
    for (uint32_t i = 0; i < a->nrollouts; i++) {
        const ef_rollout *x = &a->rollouts[i], *y = &b->rollouts[i];
        EF_SAME(x->kind == y->kind && x->value == y->value &&
                    memcmp(&x->percentage, &y->percentage, sizeof(float)) == 0,
                "rollout");
        const char *why = ef_test_segments_differ(&x->segs, &y->segs);
        if (why) return why;
    }
    return NULL;
}

#undef EF_SAME

#endif
