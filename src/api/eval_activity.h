/*
 * eval_activity.h - evaluation activity: how many evaluations each flag had, per outcome (a
 * variant key, or enabled / disabled / no match / error), in per-minute buckets for the last
 * EF_ACT_MINUTES minutes, in fixed memory. The flag page's chart, its API
 * (GET /edgeflag/v1/namespaces/{ns}/flags/{key}/activity) and the
 * edgeflag_flag_evaluations_total metric read it.
 *
 * Counting (ef_activity_count) is called on every evaluation: it takes no lock, never allocates
 * and never blocks (a hash probe into a fixed table, atomics on a packed minute+count word). When
 * the table is full or a key is too long, the evaluation is counted under "overflowed" instead.
 */
#ifndef EF_API_EVAL_ACTIVITY_H
#define EF_API_EVAL_ACTIVITY_H

#include <stdint.h>

#include "base/buf.h"
#include "base/bytes.h"
#include "eval/eval.h"

#define EF_ACT_MINUTES 64 /* the last hour and a little more */

typedef enum ef_act_kind {
    EF_ACT_VARIANT = 0, /* a variant flag answered with this variant */
    EF_ACT_ENABLED,     /* a boolean flag answered true */
    EF_ACT_DISABLED,    /* false from a boolean flag, or a disabled variant flag */
    EF_ACT_NO_MATCH,    /* a variant flag matched no rule and has no default variant */
    EF_ACT_ERROR,       /* not found, wrong type */
} ef_act_kind;

typedef struct ef_activity ef_activity;

/* slots: distinct (namespace, flag, outcome) series kept (rounded up to 2^k, at least 64). */
ef_activity *ef_activity_new(unsigned slots);
void ef_activity_free(ef_activity *a);

/* One evaluation. variant: the variant key for EF_ACT_VARIANT (ignored otherwise). a may be NULL. */
void ef_activity_count(ef_activity *a, ef_bytes ns, ef_bytes flag, ef_act_kind kind, ef_bytes variant);
/* One evaluation's result, as the server counts it (the hook in eval_metrics.c; the bench). */
void ef_activity_count_variant(ef_activity *a, ef_bytes ns, const ef_variant_result *r);
void ef_activity_count_boolean(ef_activity *a, ef_bytes ns, const ef_boolean_result *r);
/* Same, at a given minute (Unix time / 60): for tests and benches. */
void ef_activity_count_at(ef_activity *a, ef_bytes ns, ef_bytes flag, ef_act_kind kind, ef_bytes variant,
                          uint32_t minute);

/* {"minutes":N,"start":"RFC3339 of the oldest minute","series":[{"outcome":..,"kind":..,
 *  "counts":[N per minute, oldest first],"total":T}],"total":T} for the last `minutes` minutes
 * (1..EF_ACT_MINUTES) ending with now_minute. */
void ef_activity_flag_json(ef_activity *a, ef_bytes ns, ef_bytes flag, unsigned minutes, uint32_t now_minute,
                           ef_buf *out);
/* The per-minute sum over the outcomes of one flag, oldest first, into counts[minutes]. */
void ef_activity_flag_sum(ef_activity *a, ef_bytes ns, ef_bytes flag, unsigned minutes, uint32_t now_minute,
                          uint64_t *counts);
/* Prometheus: edgeflag_flag_evaluations_total{node,namespace,flag,outcome} (since start) and
 * edgeflag_flag_evaluations_overflowed_total. */
void ef_activity_metrics(ef_activity *a, const char *node, ef_buf *out);

/* The current minute (Unix time / 60), from a coarse clock. */
uint32_t ef_activity_minute(void);

#endif
