/*
 * eval_metrics.h - counting evaluations for /metrics: by namespace, flag, reason and result
 * (match for variant flags, enabled for boolean flags), plus evaluation latency by type.
 */
#ifndef EF_API_EVAL_METRICS_H
#define EF_API_EVAL_METRICS_H

#include <stdint.h>

#include "api/node.h"

/* elapsed_ns < 0: do not observe latency (batch elements are timed as one batch). */
void ef_eval_metrics_variant(ef_node *node, ef_bytes ns, const ef_variant_result *r, int64_t elapsed_ns);
void ef_eval_metrics_boolean(ef_node *node, ef_bytes ns, const ef_boolean_result *r, int64_t elapsed_ns);
/* An evaluation that failed (unknown flag or wrong type). */
void ef_eval_metrics_error(ef_node *node, ef_bytes ns, ef_bytes flag);

#endif
