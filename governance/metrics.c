/* SPDX-License-Identifier: MIT */
/* Release metrics: images at each environment's pointers, storage (store_stats()), promotion
 * latency and rollback time from the channel history (it survives restarts), block events, SBOM
 * and signature coverage of what is in channels; as JSON and as Prometheus gauges. */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/metrics.h"
#include "common/util.h"
#include "governance/governance-internal.h"
#include "storage/governance-records.h"

/* digest -> the channel repository that has it at a pointer */
static int channel_tags_collect(void *userdata, const char *env, const char *svc, const char *tag, const TagInfo *ti) {
        json_t *digests = userdata;
        if (!streq(tag, CHANNEL_STABLE) && !streq(tag, CHANNEL_CANDIDATE))
                return 0;
        if (json_object_get(digests, ti->digest))
                return 0;
        _cleanup_free_ char *repo = channel_repo_name(env, svc);
        if (!repo)
                return -ENOMEM;
        json_object_set_new(digests, ti->digest, json_string(repo));
        return 0;
}

typedef struct HistStatsCtx {
        Governance *g;
        double *lat;
        size_t n_lat, cap_lat;
        double *rb;
        size_t n_rb, cap_rb;
} HistStatsCtx;

static void push_value(double **arr, size_t *n, size_t *cap, double v) {
        if (*n >= *cap) {
                size_t nc = *cap ? *cap * 2 : 64;
                double *na = realloc(*arr, nc * sizeof(double));
                if (!na)
                        return;
                *arr = na;
                *cap = nc;
        }
        (*arr)[(*n)++] = v;
}

static int hist_stats_collect(void *userdata, const ChannelHistoryEntry *e) {
        HistStatsCtx *c = userdata;
        const char *action = e->action;
        json_t *lat = json_object_get(e->record, "latency_s");
        json_t *dur = json_object_get(e->record, "duration_ms");
        if (streq_ptr(action, "promote") && json_is_number(lat))
                push_value(&c->lat, &c->n_lat, &c->cap_lat, json_number_value(lat));
        if (streq_ptr(action, "rollback") && json_is_number(dur))
                push_value(&c->rb, &c->n_rb, &c->cap_rb, json_number_value(dur) / 1e3);
        return 0;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static json_t *distribution(double *v, size_t n) {
        if (n == 0)
                return json_pack("{s:i, s:n, s:n, s:n}", "count", 0, "p50_seconds", "p95_seconds", "max_seconds");
        qsort(v, n, sizeof(double), cmp_double);
        /* nearest rank */
        size_t i95 = (size_t) ceil(0.95 * (double) n);
        size_t i50 = (size_t) ceil(0.50 * (double) n);
        return json_pack("{s:I, s:f, s:f, s:f}", "count", (json_int_t) n, "p50_seconds", v[i50 ? i50 - 1 : 0],
                         "p95_seconds", v[i95 ? i95 - 1 : 0], "max_seconds", v[n - 1]);
}

static int compute_metrics(Governance *g, const char *repo, json_t **ret) {
        _cleanup_free_ char *svc = NULL, *app = NULL;
        if (repo && governance_repo_svc(g, repo, &svc, &app) < 0)
                return -EINVAL;
        Store *s = g->store;
        json_t *out = json_object();
        if (repo)
                json_object_set_new(out, "repo", json_string(app));

        /* images currently at the channel pointers of each env */
        json_t *by_env = json_object();
        _cleanup_(json_decrefp) json_t *all = json_object();
        for (size_t i = 0; i < g->n_envs; i++) {
                _cleanup_(json_decrefp) json_t *digests = json_object();
                if (!digests)
                        continue;
                (void) store_channel_tags_foreach(s, NULL, g->envs[i], svc, channel_tags_collect, digests);
                json_object_set_new(by_env, g->envs[i], json_integer((json_int_t) json_object_size(digests)));
                json_object_update_missing(all, digests);
        }
        json_object_set_new(out, "image_count_by_env", by_env);

        /* distinct manifests and the blob bytes on disk: registry-wide or what the repository links */
        StoreStats st = {};
        (void) store_stats(s, NULL, app, &st);
        json_object_set_new(out, "digest_unique", json_integer((json_int_t) st.manifests));
        json_object_set_new(out, "registry_storage_bytes", json_integer((json_int_t) st.blob_stored_bytes));

        /* promotion latency and rollback time, from channel history (survives restarts) */
        HistStatsCtx hc = { .g = g };
        if (svc)
                for (size_t i = 0; i < g->n_envs; i++)
                        (void) store_channel_history_foreach(s, NULL, g->envs[i], svc, NULL, hist_stats_collect, &hc);
        else
                (void) store_channel_history_foreach(s, NULL, NULL, NULL, NULL, hist_stats_collect, &hc);
        json_object_set_new(out, "promotion_latency", distribution(hc.lat, hc.n_lat));
        json_object_set_new(out, "rollback_time", distribution(hc.rb, hc.n_rb));
        free(hc.lat);
        free(hc.rb);

        /* block events */
        size_t nk;
        const char *const *kinds = gov_cve_event_kinds(&nk);
        json_t *ev = json_object();
        uint64_t total = 0;
        for (size_t i = 0; i < nk; i++) {
                char name[64];
                snprintf(name, sizeof(name), "cve_block_events/%s", kinds[i]);
                uint64_t v = gov_counter_get(g, name);
                total += v;
                json_object_set_new(ev, kinds[i], json_integer((json_int_t) v));
        }
        json_object_set_new(out, "cve_block_events", json_integer((json_int_t) total));
        json_object_set_new(out, "cve_block_events_by_kind", ev);
        json_object_set_new(out, "blocked_digests", json_integer((json_int_t) g->n_blocked));

        /* coverage over the digests currently in channels */
        size_t with_sbom = 0, signed_ok = 0, in_channels = json_object_size(all);
        const char *d;
        json_t *chv;
        json_object_foreach(all, d, chv) {
                _cleanup_free_ char *csvc = NULL, *capp = NULL;
                if (governance_repo_svc(g, json_string_value(chv), &csvc, &capp) < 0)
                        continue;
                /* the application repository: apps/<svc>, or <svc> for repos outside apps/ */
                _cleanup_(stored_manifest_freep) StoredManifest *m = NULL;
                const char *src = capp;
                if (store_manifest_get(s, capp, d, &m) < 0)
                        src = csvc;
                if (gov_has_sbom(g, src, d))
                        with_sbom++;
                bool ok = false;
                if (gov_signature_check(g, src, d, &ok, NULL) > 0 && ok)
                        signed_ok++;
        }
        json_object_set_new(out, "digests_in_channels", json_integer((json_int_t) in_channels));
        json_object_set_new(out, "sbom_coverage", in_channels ? json_real((double) with_sbom / (double) in_channels) : json_null());
        json_object_set_new(out, "signed_artifacts",
                            in_channels ? json_real((double) signed_ok / (double) in_channels) : json_null());
        *ret = out;
        return 0;
}

int governance_metrics(Governance *g, const char *repo, json_t **ret) {
        json_t *m = NULL;
        int r = compute_metrics(g, repo, &m);
        if (r < 0)
                return r;
        /* the live histograms (since start) next to the persistent ones */
        double p95 = metrics_histogram_quantile(M_ROLLBACK_TIME, NULL, 0.95);
        json_object_set_new(m, "rollback_time_p95_seconds_live", isnan(p95) ? json_null() : json_real(p95));
        *ret = m;
        return 0;
}

/* ------------------------------------------------------------------ Prometheus */

void governance_metrics_collect(Governance *g) {
        if (!g)
                return;
        pthread_mutex_lock(&g->cache_lock);
        int64_t now = clock_now_ns();
        json_t *m = NULL;
        if (g->cache_metrics && now - g->cache_time < 10 * (int64_t) NSEC_PER_SEC && now >= g->cache_time)
                m = json_incref(g->cache_metrics);
        else if (compute_metrics(g, NULL, &m) >= 0) {
                json_decref(g->cache_metrics);
                g->cache_metrics = json_incref(m);
                g->cache_time = now;
        }
        if (m) {
                const char *env;
                json_t *v;
                json_object_foreach(json_object_get(m, "image_count_by_env"), env, v) {
                        char labels[96];
                        snprintf(labels, sizeof(labels), "env=\"%s\"", env);
                        metrics_gauge_set(M_IMAGE_COUNT, labels, (double) json_integer_value(v));
                }
                /* digest_unique: gc/ exports plura_digest_unique{kind="blob"|"manifest"} */
                metrics_gauge_set(M_STORAGE_BYTES, NULL,
                                  (double) json_integer_value(json_object_get(m, "registry_storage_bytes")));
                json_t *sb = json_object_get(m, "sbom_coverage"), *sg = json_object_get(m, "signed_artifacts");
                if (json_is_number(sb))
                        metrics_gauge_set(M_SBOM_COVERAGE, NULL, json_number_value(sb));
                if (json_is_number(sg))
                        metrics_gauge_set(M_SIGNED_ARTIFACTS, NULL, json_number_value(sg));
                json_decref(m);
        }
        pthread_mutex_unlock(&g->cache_lock);
}

static int seed_histograms(void *userdata, const ChannelHistoryEntry *e) {
        const char *action = e->action;
        json_t *lat = json_object_get(e->record, "latency_s"), *dur = json_object_get(e->record, "duration_ms");
        if (streq_ptr(action, "promote") && json_is_number(lat))
                metrics_histogram_observe(M_PROMOTION_LATENCY, NULL, json_number_value(lat));
        if (streq_ptr(action, "rollback") && json_is_number(dur))
                metrics_histogram_observe(M_ROLLBACK_TIME, NULL, json_number_value(dur) / 1e3);
        return 0;
}

/* The process's metrics already count something of these: seeded before, or live since. */
static bool metrics_seeded(void) {
        if (metrics_histogram_count(M_PROMOTION_LATENCY, NULL) > 0 || metrics_histogram_count(M_ROLLBACK_TIME, NULL) > 0)
                return true;
        size_t nk;
        const char *const *kinds = gov_cve_event_kinds(&nk);
        for (size_t i = 0; i < nk; i++) {
                char labels[64];
                snprintf(labels, sizeof(labels), "kind=\"%s\"", kinds[i]);
                if (metrics_get(M_CVE_BLOCK_EVENTS, labels) > 0)
                        return true;
        }
        return false;
}

void gov_metrics_init(Governance *g) {
        static const double latency_buckets[] = { 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800 };
        metrics_declare(M_IMAGE_COUNT, METRIC_GAUGE, "Images (distinct digests) at the channel pointers of each environment", NULL, 0);
        metrics_declare(M_STORAGE_BYTES, METRIC_GAUGE, "Bytes of blob storage on disk", NULL, 0);
        metrics_declare(M_PROMOTION_LATENCY, METRIC_HISTOGRAM, "Seconds from the first push of a digest to the end of the release chain (prod:stable)",
                        latency_buckets, ELEMENTSOF(latency_buckets));
        metrics_declare(M_ROLLBACK_TIME, METRIC_HISTOGRAM, "Seconds a rollback takes, request to pointer moved", NULL, 0);
        metrics_declare(M_CVE_BLOCK_EVENTS, METRIC_COUNTER, "Block list events: blocks, denied pulls, denied promotions", NULL, 0);
        metrics_declare(M_SBOM_COVERAGE, METRIC_GAUGE, "Share of digests in channels with an SBOM referrer", NULL, 0);
        metrics_declare(M_SIGNED_ARTIFACTS, METRIC_GAUGE, "Share of digests in channels with a signature that verifies", NULL, 0);
        metrics_declare(M_PROMOTIONS, METRIC_COUNTER, "Promotions by target", NULL, 0);
        metrics_declare(M_ROLLBACKS, METRIC_COUNTER, "Rollbacks", NULL, 0);
        metrics_declare(M_POLICY_REFUSALS, METRIC_COUNTER, "Tag writes refused by the tag policy", NULL, 0);

        /* the histograms and counters of the metrics registry are the process's: seed them from
         * the store once, not again for a second Governance of the process */
        if (metrics_seeded())
                return;
        (void) store_channel_history_foreach(g->store, NULL, NULL, NULL, NULL, seed_histograms, NULL);
        size_t nk;
        const char *const *kinds = gov_cve_event_kinds(&nk);
        for (size_t i = 0; i < nk; i++) {
                char name[64], labels[64];
                snprintf(name, sizeof(name), "cve_block_events/%s", kinds[i]);
                snprintf(labels, sizeof(labels), "kind=\"%s\"", kinds[i]);
                metrics_counter_add(M_CVE_BLOCK_EVENTS, labels, (double) gov_counter_get(g, name));
        }
}
