/*
 * eval_metrics.c - evaluation counters (see eval_metrics.h). Lock-free: metrics.c's tables.
 */
#include "api/eval_metrics.h"

static void count(ef_node *node, ef_bytes ns, ef_bytes flag, const char *reason, bool result)
{
    ef_bytes labels[4] = {ns, flag, ef_bytes_of(reason), result ? EF_BYTES_LIT("true") : EF_BYTES_LIT("false")};
    ef_counter_add(node->m.evaluations, labels, 1);
}

void ef_eval_metrics_variant(ef_node *node, ef_bytes ns, const ef_variant_result *r, int64_t elapsed_ns)
{
    count(node, ns, r->flag_key, ef_reason_name(r->reason), r->match);
    if (elapsed_ns >= 0)
        ef_histogram_observe(node->m.evaluation_seconds, &EF_BYTES_LIT("variant"), (double)elapsed_ns / 1e9);
}

void ef_eval_metrics_boolean(ef_node *node, ef_bytes ns, const ef_boolean_result *r, int64_t elapsed_ns)
{
    count(node, ns, r->flag_key, ef_reason_name(r->reason), r->enabled);
    if (elapsed_ns >= 0)
        ef_histogram_observe(node->m.evaluation_seconds, &EF_BYTES_LIT("boolean"), (double)elapsed_ns / 1e9);
}

void ef_eval_metrics_error(ef_node *node, ef_bytes ns, ef_bytes flag)
{
    ef_bytes labels[4] = {ns, flag, EF_BYTES_LIT("ERROR"), EF_BYTES_LIT("false")};
    ef_counter_add(node->m.evaluations, labels, 1);
}
