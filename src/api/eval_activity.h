/*
 * eval_activity.h - evaluation activity: how many evaluations each flag had, per outcome (a
 * variant key, or enabled / disabled / no match / error), in per-minute buckets for the last
 * EF_ACT_MINUTES minutes, in fixed memory. The flag page's chart, its API
 * (GET /edgeflag/v1/namespaces/{ns}/flags/{key}/activity) and the
 * edgeflag_flag_evaluations_total metric read it.
 *
 * Counting costs the evaluation path one relaxed atomic add into a fixed slot: no lock, no
 * allocation, no hashing, no clock read. The slot of each (flag, outcome) is resolved once, on the
 * first evaluation of that outcome after the flag was compiled, and kept in the flag's tally
 * (eval.h); a flag recompiled by a write resolves to the same series, so counts carry across
 * snapshot swaps exactly. The minute is the table's own (ef_activity_tick, driven by
 * ef_activity_start_clock's thread at each minute boundary), not read from a clock per
 * evaluation. When the table is full or a key is too long, the evaluation is counted under
 * "overflowed" instead.
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

/* One evaluation. variant: the variant key for EF_ACT_VARIANT (ignored otherwise). a may be NULL.
 * The slow path (a key lookup): for errors, whose flag may not exist. */
void ef_activity_count(ef_activity *a, ef_bytes ns, ef_bytes flag, ef_act_kind kind, ef_bytes variant);
/* One evaluation's result, as the server counts it (the hook in eval_metrics.c; the bench): one
 * atomic add once the result's tally is bound to this table. */
void ef_activity_count_variant(ef_activity *a, ef_bytes ns, const ef_variant_result *r);
void ef_activity_count_boolean(ef_activity *a, ef_bytes ns, const ef_boolean_result *r);

/* Moves the table's current minute forward to minute (Unix time / 60; never back), emptying the
 * buckets it passes. Thread-safe; evaluations counted meanwhile land in the old or the new minute. */
void ef_activity_tick(ef_activity *a, uint32_t minute);
/* The table's current minute (without a table, the wall clock's). */
uint32_t ef_activity_now(const ef_activity *a);
/* Starts a thread that ticks the table at every minute boundary of the wall clock (stopped by
 * ef_activity_free). Returns 0 or -1. Without it the minute moves only when someone ticks. */
int ef_activity_start_clock(ef_activity *a);

/* {"minutes":N,"start":"RFC3339 of the oldest minute","series":[{"outcome":..,"kind":..,
 *  "counts":[N per minute, oldest first],"total":T}],"total":T} for the last `minutes` minutes
 * (1..EF_ACT_MINUTES) ending with the table's current minute. */
void ef_activity_flag_json(ef_activity *a, ef_bytes ns, ef_bytes flag, unsigned minutes, ef_buf *out);
/* The per-minute sum over the outcomes of one flag, oldest first, into counts[minutes] (minutes
 * 1..EF_ACT_MINUTES, ending with the table's current minute); returns their total. */
uint64_t ef_activity_flag_counts(ef_activity *a, ef_bytes ns, ef_bytes flag, unsigned minutes, uint64_t *counts);
/* Calls fn once per flag with evaluations in the last `minutes` minutes, with that sum per minute
 * (as ef_activity_flag_counts), in key order. Allocates a list of the table's slots (not for the
 * evaluation path); returns -1 when it cannot. */
int ef_activity_each_flag(ef_activity *a, unsigned minutes,
                          void (*fn)(ef_bytes ns, ef_bytes flag, const uint64_t *counts, void *ctx), void *ctx);
/* Prometheus: edgeflag_flag_evaluations_total{node,namespace,flag,outcome} (since start) and
 * edgeflag_flag_evaluations_overflowed_total. */
void ef_activity_metrics(ef_activity *a, const char *node, ef_buf *out);

/* The wall clock's minute (Unix time / 60), from a coarse clock: for ticking, never per evaluation. */
uint32_t ef_activity_minute(void);

#endif
