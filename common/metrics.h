/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include "macros.h"

/* Process-wide metrics registry rendered in Prometheus text format on /metrics.
 * Series are identified by name + label string (e.g. "route=\"manifest\",status=\"200\"").
 * Thread-safe; the hot path takes one mutex only to find the series. */

typedef enum MetricType {
        METRIC_COUNTER,
        METRIC_GAUGE,
        METRIC_HISTOGRAM,
        _METRIC_TYPE_MAX,
        _METRIC_TYPE_INVALID = -1,
} MetricType;

/* Declares a metric family (idempotent). Histograms use buckets in seconds (or the unit of
 * the observed values); NULL buckets = default latency buckets. */
void metrics_declare(const char *name, MetricType type, const char *help, const double *buckets, size_t n_buckets);
void metrics_counter_add(const char *name, const char *labels, double v);
void metrics_gauge_set(const char *name, const char *labels, double v);
void metrics_histogram_observe(const char *name, const char *labels, double v);
/* Current value of a counter/gauge series (0 if absent); for tests and JSON metrics. */
double metrics_get(const char *name, const char *labels);
/* p-quantile (0..1) estimated from a histogram's buckets; NAN if no observations. */
double metrics_histogram_quantile(const char *name, const char *labels, double q);
uint64_t metrics_histogram_count(const char *name, const char *labels);

/* Callback run before rendering, to refresh gauges computed on demand. */
typedef void (*MetricsCollectFn)(void *userdata);
void metrics_add_collector(MetricsCollectFn fn, void *userdata);
/* Removes what metrics_add_collector() added; returns once no render is calling it any more. */
void metrics_remove_collector(MetricsCollectFn fn, void *userdata);

/* Renders everything; returns a malloc()ed string. */
char *metrics_render(void);
void metrics_reset(void); /* tests */
