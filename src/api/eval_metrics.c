/*
 * eval_metrics.c - evaluation counters (see eval_metrics.h). Lock-free: metrics.c's tables.
 * Every evaluation updates edgeflag's series and Flipt's (flipt_evaluations_*) in the same call,
 * so the two can never disagree; must never allocate or block.
 */
#include "api/eval_metrics.h"

#include "api/eval_activity.h"

static void count(ef_node *node, ef_bytes ns, ef_bytes flag, const char *reason, bool result)
{
    ef_bytes labels[4] = {ns, flag, ef_bytes_of(reason), result ? EF_BYTES_LIT("true") : EF_BYTES_LIT("false")};
    ef_counter_add(node->m.evaluations, labels, 1);
    ef_counter_add(node->m.flipt_requests, labels, 1); /* its labels: the first two */
}

/* Flipt's latency histogram is in milliseconds, per namespace and flag. */
static void flipt_latency(ef_node *node, ef_bytes ns, ef_bytes flag, int64_t elapsed_ns)
{
    ef_bytes labels[2] = {ns, flag};
    ef_histogram_observe(node->m.flipt_latency_ms, labels, (double)elapsed_ns / 1e6);
}

void ef_eval_metrics_variant(ef_node *node, ef_bytes ns, const ef_variant_result *r, int64_t elapsed_ns)
{
    const char *reason = ef_reason_name(r->reason);
    count(node, ns, r->flag_key, reason, r->match);
    ef_activity_count_variant(node->activity, ns, r); /* the flag page's chart (eval_activity.h) */
    /* Flipt's variant results: match, the first matched segment, reason, the variant key */
    int first = ef_matched_next(&r->segments, 0);
    ef_bytes fl[7] = {ns, r->flag_key, EF_BYTES_LIT("variant"), ef_bytes_of(reason), r->variant_key,
                      r->match ? EF_BYTES_LIT("true") : EF_BYTES_LIT("false"),
                      first >= 0 ? ef_matched_key(&r->segments, first) : (ef_bytes){"", 0}};
    ef_counter_add(node->m.flipt_results, fl, 1);
    if (elapsed_ns >= 0) {
        ef_histogram_observe(node->m.evaluation_seconds, &EF_BYTES_LIT("variant"), (double)elapsed_ns / 1e9);
        flipt_latency(node, ns, r->flag_key, elapsed_ns);
    }
}

void ef_eval_metrics_boolean(ef_node *node, ef_bytes ns, const ef_boolean_result *r, int64_t elapsed_ns)
{
    const char *reason = ef_reason_name(r->reason);
    count(node, ns, r->flag_key, reason, r->enabled);
    ef_activity_count_boolean(node->activity, ns, r);
    /* Flipt's boolean results carry no match or segment: empty labels, which Prometheus treats
     * as absent */
    ef_bytes fl[7] = {ns, r->flag_key, EF_BYTES_LIT("boolean"), ef_bytes_of(reason),
                      r->enabled ? EF_BYTES_LIT("true") : EF_BYTES_LIT("false"), {"", 0}, {"", 0}};
    ef_counter_add(node->m.flipt_results, fl, 1);
    if (elapsed_ns >= 0) {
        ef_histogram_observe(node->m.evaluation_seconds, &EF_BYTES_LIT("boolean"), (double)elapsed_ns / 1e9);
        flipt_latency(node, ns, r->flag_key, elapsed_ns);
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
