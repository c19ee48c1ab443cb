/*
 * eval_metrics.c - evaluation counters (see eval_metrics.h). Lock-free: metrics.c's tables.
 * Every evaluation updates edgeflag's series and Flipt's (flipt_evaluations_*) in the same call,
 * so the two can never disagree; must never allocate or block.
 */
#include "api/eval_metrics.h"

#include "api/eval_activity.h"

/* A flag's series are kept in its tally (eval.h), found by label lookup the first time and then
 * counted with an atomic add: an evaluation hashes no labels for them. A tally belongs to one
 * compiled flag of one namespace, so its slots stand for that (namespace, flag); series live as
 * long as the metrics. A tally bound to another node's metrics counts the slow way. */
/* S_RESULTS keeps the flag's last flipt_evaluations_results_total series, checked before use
 * (its labels vary with the result); the others are fixed per slot. */
enum { S_REQUESTS, S_LATENCY, S_RESULTS, S_EVALS }; /* S_EVALS + reason * 2 + result */

/* Whether t's slots hold this node's series (binding them to it when unbound). */
static bool tally_ours(ef_node *node, const ef_tally *t)
{
    ef_tally *w = (ef_tally *)t; /* only owners and slots change, atomically (eval.h) */
    void *owner = __atomic_load_n(&w->series_owner, __ATOMIC_ACQUIRE);
    if (owner == node->metrics) return true;
    void *none = NULL;
    return !owner && (__atomic_compare_exchange_n(&w->series_owner, &none, node->metrics, false,
                                                  __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ||
                      none == node->metrics);
}

static ef_metric_series *flag_series(ef_node *node, const ef_tally *t, unsigned i,
                                     ef_metric_family *f, const ef_bytes *labels)
{
    if (!t || i >= EF_TALLY_SERIES || !tally_ours(node, t)) return ef_metric_series_of(f, labels);
    return ef_metric_series_slot(f, (ef_metric_series **)&((ef_tally *)t)->series[i], labels);
}

/* Flipt's result counter: a flag mostly answers the same way, so its last series is kept and
 * its labels compared (no hashing) before it is counted again. */
static void count_result(ef_node *node, const ef_tally *t, const ef_bytes *labels)
{
    ef_metric_family *f = node->m.flipt_results;
    if (!t || !tally_ours(node, t)) {
        ef_counter_add(f, labels, 1);
        return;
    }
    ef_metric_series **slot = (ef_metric_series **)&((ef_tally *)t)->series[S_RESULTS];
    ef_metric_series *s = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    /* the slot is this tally's, and a tally is one flag of one namespace: a series it holds was
     * found with these first two labels, so only the result's are compared */
    if (!ef_metric_series_is_from(f, s, labels, 2)) {
        s = ef_metric_series_of(f, labels);
        if (s) __atomic_store_n(slot, s, __ATOMIC_RELEASE);
    }
    if (s) ef_series_add(s, 1);
}

static void count(ef_node *node, ef_bytes ns, ef_bytes flag, const ef_tally *t, ef_reason reason,
                  bool result)
{
    ef_bytes labels[4] = {ns, flag, ef_bytes_of(ef_reason_name(reason)),
                          result ? EF_BYTES_LIT("true") : EF_BYTES_LIT("false")};
    ef_metric_series *e =
        flag_series(node, t, S_EVALS + (unsigned)reason * 2 + result, node->m.evaluations, labels);
    if (e) ef_series_add(e, 1);
    ef_metric_series *q = flag_series(node, t, S_REQUESTS, node->m.flipt_requests,
                                      labels); /* its labels: the first two */
    if (q) ef_series_add(q, 1);
}

/* Flipt's latency histogram is in milliseconds, per namespace and flag. */
static void flipt_latency(ef_node *node, ef_bytes ns, ef_bytes flag, const ef_tally *t,
                          int64_t elapsed_ns)
{
    ef_bytes labels[2] = {ns, flag};
    ef_metric_series *s = flag_series(node, t, S_LATENCY, node->m.flipt_latency_ms, labels);
    if (s) ef_series_observe_ns(node->m.flipt_latency_ms, s, elapsed_ns); /* its unit: ms */
}

void ef_eval_metrics_variant(ef_node *node, ef_bytes ns, const ef_variant_result *r, int64_t elapsed_ns)
{
    const char *reason = ef_reason_name(r->reason);
    count(node, ns, r->flag_key, r->tally, r->reason, r->match);
    ef_activity_count_variant(node->activity, ns, r); /* the flag page's chart (eval_activity.h) */
    /* Flipt's variant results: match, the first matched segment, reason, the variant key */
    int first = ef_matched_next(&r->segments, 0);
    ef_bytes fl[7] = {ns, r->flag_key, EF_BYTES_LIT("variant"), ef_bytes_of(reason), r->variant_key,
                      r->match ? EF_BYTES_LIT("true") : EF_BYTES_LIT("false"),
                      first >= 0 ? ef_matched_key(&r->segments, first) : (ef_bytes){"", 0}};
    count_result(node, r->tally, fl);
    if (elapsed_ns >= 0) {
        if (node->m.evaluation_seconds_variant)
            ef_series_observe_ns(node->m.evaluation_seconds, node->m.evaluation_seconds_variant, elapsed_ns);
        flipt_latency(node, ns, r->flag_key, r->tally, elapsed_ns);
    }
}

void ef_eval_metrics_boolean(ef_node *node, ef_bytes ns, const ef_boolean_result *r, int64_t elapsed_ns)
{
    const char *reason = ef_reason_name(r->reason);
    count(node, ns, r->flag_key, r->tally, r->reason, r->enabled);
    ef_activity_count_boolean(node->activity, ns, r);
    /* Flipt's boolean results carry no match or segment: empty labels, which Prometheus treats
     * as absent */
    ef_bytes fl[7] = {ns, r->flag_key, EF_BYTES_LIT("boolean"), ef_bytes_of(reason),
                      r->enabled ? EF_BYTES_LIT("true") : EF_BYTES_LIT("false"), {"", 0}, {"", 0}};
    count_result(node, r->tally, fl);
    if (elapsed_ns >= 0) {
        if (node->m.evaluation_seconds_boolean)
            ef_series_observe_ns(node->m.evaluation_seconds, node->m.evaluation_seconds_boolean, elapsed_ns);
        flipt_latency(node, ns, r->flag_key, r->tally, elapsed_ns);
    }
}

void ef_eval_metrics_error(ef_node *node, ef_bytes ns, ef_bytes flag)
{
    ef_bytes labels[4] = {ns, flag, EF_BYTES_LIT("ERROR"), EF_BYTES_LIT("false")};
    ef_activity_count(node->activity, ns, flag, EF_ACT_ERROR, (ef_bytes){"", 0});
    ef_counter_add(node->m.evaluations, labels, 1);
    ef_counter_add(node->m.flipt_requests, labels, 1);
    ef_counter_add(node->m.flipt_errors, labels, 1);
}

void ef_eval_metrics_unknown(ef_node *node, ef_bytes ns, ef_bytes flag, bool ns_exists)
{
    /* the budget is the unknown_flags family's bound: a key it keeps a series for is within it;
     * past it, the family answers with its "_other" series. Parentheses are outside Flipt's key
     * alphabet ([-_,A-Za-z0-9]+), so "(unknown)" cannot be a real flag's or namespace's label.
     * A key outside that alphabet (any bytes a path's %XX or a header can carry) names no flag
     * and is "(unknown)" at once: kept, keys that differ only in bytes that are not UTF-8 would
     * print as one label twice (the exposition writes such bytes as U+FFFD), which Prometheus
     * drops as duplicate samples. */
    if (!ef_key_valid(flag) || (!ns_exists && !ef_key_valid(ns))) {
        if (!ns_exists) ns = EF_BYTES_LIT("(unknown)");
        flag = EF_BYTES_LIT("(unknown)");
    }
    ef_bytes key[2] = {ns, flag};
    ef_metric_series *s = ef_metric_series_of(node->m.unknown_flags, key);
    if (s) ef_series_add(s, 1);
    if (!ef_metric_series_is(node->m.unknown_flags, s, key)) {
        if (!ns_exists) ns = EF_BYTES_LIT("(unknown)");
        flag = EF_BYTES_LIT("(unknown)");
    }
    ef_eval_metrics_error(node, ns, flag);
}
