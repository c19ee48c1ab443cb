/*
 * metrics.h - Prometheus metrics: labelled counters and histograms that many threads update
 * without locks, written in the text exposition format 0.0.4 at scrape time.
 *
 * A family's label sets live in a fixed-size open-addressing table; a new label set is inserted
 * with one compare-and-swap and never removed, so updates are wait-free after the first one. When a
 * family's table is full, further new label sets are counted under the label value "_other" rather
 * than growing without bound. Gauges whose values live elsewhere (snapshot versions, replication
 * state) are written by collector callbacks at scrape time.
 *
 * Updates take no locked instruction: each counting thread (up to 16 at a time in a process) adds
 * into cells of its own, which a scrape sums; a thread past those counts with atomic adds. A
 * thread's cells cost 8 bytes per counter series and 8 per histogram bucket it has updated,
 * made 32 KiB at a time, and live as long as the metrics.
 */
#ifndef EF_HTTP_METRICS_H
#define EF_HTTP_METRICS_H

#include <stdint.h>

#include "base/buf.h"
#include "base/bytes.h"

typedef struct ef_metrics ef_metrics;
typedef struct ef_metric_family ef_metric_family;

ef_metrics *ef_metrics_new(void);
void ef_metrics_free(ef_metrics *m);

/* label_names: nlabels names (copied). capacity: distinct label sets kept (rounded up to 2^k). */
ef_metric_family *ef_metrics_counter(ef_metrics *m, const char *name, const char *help,
                                     unsigned nlabels, const char *const *label_names,
                                     unsigned capacity);
/* bounds: upper bounds in seconds (or the unit set below), ascending, none negative (the +Inf
 * bucket is added); NULL for a negative bound. */
ef_metric_family *ef_metrics_histogram(ef_metrics *m, const char *name, const char *help,
                                       unsigned nlabels, const char *const *label_names,
                                       unsigned capacity, const double *bounds, unsigned nbounds);

/* values: one per label. */
void ef_counter_add(ef_metric_family *f, const ef_bytes *values, uint64_t n);
void ef_histogram_observe(ef_metric_family *f, const ef_bytes *values, double seconds);

/* A label set's series, looked up once and kept by the caller, so that later updates hash no
 * labels: a series lives as long as its metrics (never freed while they run). NULL when f is
 * NULL or out of memory; a full family gives its "_other" series, as ef_counter_add counts. */
typedef struct ef_metric_series ef_metric_series;
ef_metric_series *ef_metric_series_of(ef_metric_family *f, const ef_bytes *values);
void ef_series_add(ef_metric_series *s, uint64_t n);
/* The same, kept in *slot (atomic): the first call looks values up and stores the series, later
 * ones load it. Every thread stores the same pointer for the same values, so a slot needs no
 * lock; a caller keeps one slot per label set (a route's method and status). */
ef_metric_series *ef_metric_series_slot(ef_metric_family *f, ef_metric_series **slot,
                                        const ef_bytes *values);
/* Whether s is the series of values: its labels compared, nothing hashed. For a cache that keeps
 * the last series used and checks it before counting on it (false for NULL and "_other"). */
bool ef_metric_series_is(const ef_metric_family *f, const ef_metric_series *s,
                         const ef_bytes *values);
/* The same with the first `from` labels not compared: for a cache whose series can only have
 * been found with those values (a flag's own namespace and key). */
bool ef_metric_series_is_from(const ef_metric_family *f, const ef_metric_series *s,
                              const ef_bytes *values, unsigned from);
/* f: the histogram family s belongs to (its bucket bounds). seconds: in the family's unit. */
void ef_series_observe(const ef_metric_family *f, ef_metric_series *s, double seconds);
/* The same for a duration in nanoseconds, compared as integers with the bounds (no division on
 * the request path); a negative duration counts as 0. */
void ef_series_observe_ns(const ef_metric_family *f, ef_metric_series *s, int64_t ns);
/* A histogram whose bounds and observations are in another unit than the second (Flipt's latency
 * histogram is in milliseconds: 1000000), for ef_series_observe_ns; set before the first
 * observation. A divisor of 1e9 (a second at most); any other value is ignored. */
void ef_metrics_histogram_unit_ns(ef_metric_family *f, uint64_t ns_per_unit);

/* Scrape-time writers for gauges and counters kept elsewhere. */
typedef void (*ef_metrics_collector)(ef_buf *out, void *ctx);
int ef_metrics_add_collector(ef_metrics *m, ef_metrics_collector fn, void *ctx);

/* The whole exposition. */
void ef_metrics_write(ef_metrics *m, ef_buf *out);

/* Helpers for collectors: a label value escaped as the text format requires. */
void ef_metrics_put_label_value(ef_buf *out, ef_bytes v);

#endif
