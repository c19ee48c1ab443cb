/*
 * eval_metrics.h - counting evaluations for /metrics: by namespace, flag, reason and result
 * (match for variant flags, enabled for boolean flags), plus evaluation latency by type.
 */
#ifndef EF_API_EVAL_METRICS_H
#define EF_API_EVAL_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "api/node.h"

/* elapsed_ns < 0: do not observe latency (batch elements are timed as one batch). */
void ef_eval_metrics_variant(ef_node *node, ef_bytes ns, const ef_variant_result *r, int64_t elapsed_ns);
void ef_eval_metrics_boolean(ef_node *node, ef_bytes ns, const ef_boolean_result *r, int64_t elapsed_ns);
/* An evaluation of an existing flag that failed (the wrong type for it). */
void ef_eval_metrics_error(ef_node *node, ef_bytes ns, ef_bytes flag);

/* An evaluation of a flag that does not exist (ns_exists: whether its namespace does). Those keys
 * are the client's to make up, so they get a budget of their own: the first EF_UNKNOWN_FLAG_KEYS
 * distinct (namespace, flag) pairs are counted under their keys, as Flipt counts them, and in
 * edgeflag_unknown_flag_evaluations_total; later ones under the flag "(unknown)" (and the
 * namespace "(unknown)" when it does not exist), which no Flipt key can spell. Made-up keys thus
 * take at most that many series of any family or slots of the activity table, and cannot push a
 * real flag's series into "_other". */
#define EF_UNKNOWN_FLAG_KEYS 256
void ef_eval_metrics_unknown(ef_node *node, ef_bytes ns, ef_bytes flag, bool ns_exists);

#endif
