/* SPDX-License-Identifier: MIT */
/* The GC's metrics: the run counters and durations (declared here, counted by report.c) and the
 * collector of plura_storage_bytes and plura_digest_unique, bound to one Gc until gc_free(). */
#include <pthread.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "gc/gc-internal.h"
#include "storage/governance-records.h"

static const double duration_buckets[] = { 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600 };

void gc_metrics_declare(void) {
        metrics_declare("plura_gc_runs_total", METRIC_COUNTER, "Garbage collection runs by result and mode.", NULL, 0);
        metrics_declare("plura_gc_reclaimed_bytes_total", METRIC_COUNTER,
                        "Bytes reclaimed by garbage collection (kind=disk: files removed; kind=logical: content bytes).", NULL, 0);
        metrics_declare("plura_gc_duration_seconds", METRIC_HISTOGRAM, "Duration of garbage collection runs.", duration_buckets,
                        ELEMENTSOF(duration_buckets));
}

static void gc_metrics_collect(void *userdata) {
        Gc *g = userdata;
        pthread_mutex_lock(&g->metrics_lock);
        uint64_t now = clock_monotonic_ns();
        if (g->metrics_computed && now - g->metrics_computed < (uint64_t) g->metrics_cache_ns) {
                pthread_mutex_unlock(&g->metrics_lock);
                return;
        }
        g->metrics_computed = now;
        StoreStats st = {};
        int r = store_stats(g->store, NULL, NULL, &st);
        pthread_mutex_unlock(&g->metrics_lock);
        if (r < 0) {
                log_debug_errno(r, "gc: storage statistics: %m");
                return;
        }
        metrics_gauge_set("plura_storage_bytes", "kind=\"logical\"", (double) (st.blob_bytes + st.manifest_bytes));
        metrics_gauge_set("plura_storage_bytes", "kind=\"disk\"", (double) st.blob_stored_bytes);
        metrics_gauge_set("plura_digest_unique", "kind=\"blob\"", (double) st.blobs);
        metrics_gauge_set("plura_digest_unique", "kind=\"manifest\"", (double) st.manifests);
}

void gc_metrics_init(Gc *g, int64_t cache_ns) {
        gc_metrics_declare();
        metrics_declare("plura_storage_bytes", METRIC_GAUGE,
                        "Bytes stored: kind=logical (content, blobs + inline manifests), kind=disk (blob files).", NULL, 0);
        metrics_declare("plura_digest_unique", METRIC_GAUGE, "Distinct digests stored (each stored once).", NULL, 0);
        pthread_mutex_lock(&g->metrics_lock);
        g->metrics_cache_ns = cache_ns;
        g->metrics_computed = 0;
        bool reg = !g->metrics_registered;
        g->metrics_registered = true;
        pthread_mutex_unlock(&g->metrics_lock);
        if (reg)
                metrics_add_collector(gc_metrics_collect, g);
}

void gc_metrics_unregister(Gc *g) {
        pthread_mutex_lock(&g->metrics_lock);
        bool reg = g->metrics_registered;
        g->metrics_registered = false;
        pthread_mutex_unlock(&g->metrics_lock);
        if (reg)
                metrics_remove_collector(gc_metrics_collect, g); /* waits for a collection in progress */
}
