/* SPDX-License-Identifier: MIT */
/* A run's report: built from the run's accounting, stored through storage's GC records (the last
 * report and the list, gc.reports_kept of them), read back, and counted in the GC metrics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "gc/gc-internal.h"
#include "storage/gc-records.h"

static json_t *acc_json(const Acc *a) {
        return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "tags_deleted", (json_int_t) a->tags, "links_deleted",
                         (json_int_t) a->links, "manifests_deleted", (json_int_t) a->manifests, "blobs_deleted",
                         (json_int_t) a->blobs, "bytes_logical", (json_int_t) a->bytes_logical, "bytes_disk",
                         (json_int_t) a->bytes_disk, "manifest_bytes", (json_int_t) a->manifest_bytes);
}

static bool acc_empty(const Acc *a) {
        return !a->tags && !a->links && !a->manifests && !a->blobs && !a->bytes_disk && !a->bytes_logical;
}

json_t *gc_report_build(Run *r, int64_t started, int64_t ended) {
        Plan *p = &r->p;
        json_t *tags = json_array(), *links = json_array();
        json_t *kept = json_object();
        unsigned kept_counts[_GC_RULE_MAX] = {};

        for (size_t i = 0; i < p->n_tags; i++) {
                PlanTag *t = &p->tags[i];
                if (!t->deleted) {
                        kept_counts[t->rule]++;
                        continue;
                }
                bool done = r->o->dry_run || t->applied;
                if (done) {
                        r->total.tags++;
                        repo_acc(r, t->repo)->tags++;
                        r->rule_acc[t->rule].tags++;
                }
                if (json_array_size(tags) < LIST_MAX)
                        json_array_append_new(tags, json_pack("{s:s, s:s, s:s, s:s, s:b}", "repo", p->repos[t->repo].name,
                                                              "tag", t->name, "digest", t->info.digest, "rule",
                                                              gc_rule_to_string(t->rule), "applied", done));
        }
        for (size_t i = 0; i < p->n_links; i++) {
                PlanLink *l = &p->links[i];
                if (l->live)
                        continue;
                bool done = r->o->dry_run || l->applied;
                if (done) {
                        r->total.links++;
                        repo_acc(r, l->repo)->links++;
                        r->rule_acc[l->rule].links++;
                }
                if (json_array_size(links) >= LIST_MAX)
                        continue;
                char d[DIGEST_MAX_LEN];
                digest_table_name(r->g.digests, l->digest, d);
                json_array_append_new(links, json_pack("{s:s, s:s, s:s, s:b, s:b, s:I, s:I}", "repo", p->repos[l->repo].name,
                                                       "digest", d, "rule", gc_rule_to_string(l->rule), "applied", done,
                                                       "manifest_removed", r->link_bytes[i].manifest_removed,
                                                       "bytes_logical", (json_int_t) r->link_bytes[i].logical,
                                                       "bytes_disk", (json_int_t) r->link_bytes[i].disk));
        }
        for (size_t i = 0; i < p->n_links; i++)
                if (p->links[i].live)
                        kept_counts[p->links[i].rule]++;
        for (int i = 0; i < _GC_RULE_MAX; i++)
                if (kept_counts[i])
                        json_object_set_new(kept, gc_rule_to_string(i), json_integer(kept_counts[i]));

        json_t *per_repo = json_object();
        for (size_t i = 0; i <= r->n_repo_acc; i++) {
                const Acc *a = &r->repo_acc[i];
                if (acc_empty(a))
                        continue;
                json_object_set_new(per_repo, i < r->n_repo_acc ? p->repos[i].name : "(none)", acc_json(a));
        }
        json_t *per_rule = json_object();
        for (int i = 0; i < _GC_RULE_MAX; i++)
                if (!acc_empty(&r->rule_acc[i]))
                        json_object_set_new(per_rule, gc_rule_to_string(i), acc_json(&r->rule_acc[i]));

        char s1[32], s2[32];
        json_t *totals = acc_json(&r->total);
        json_object_set_new(totals, "orphans_deleted", json_integer((json_int_t) r->orphans));
        json_object_set_new(totals, "orphan_bytes", json_integer((json_int_t) r->orphan_bytes));
        json_object_set_new(totals, "records_without_file", json_integer((json_int_t) r->missing_files));
        json_object_set_new(totals, "skipped_raced", json_integer((json_int_t) r->skipped_raced));
        json_object_set_new(totals, "repositories", json_integer((json_int_t) p->n_repos));
        json_object_set_new(totals, "links_scanned", json_integer((json_int_t) p->n_links));
        json_object_set_new(totals, "tags_scanned", json_integer((json_int_t) p->n_tags));
        json_object_set_new(totals, "manifests_scanned", json_integer((json_int_t) r->g.n_manifests));
        json_object_set_new(totals, "manifests_marked", json_integer((json_int_t) r->manifests_marked));
        json_object_set_new(totals, "blobs_scanned", json_integer((json_int_t) r->blobs_scanned));
        json_object_set_new(totals, "blobs_marked", json_integer((json_int_t) r->blobs_marked));
        json_object_set_new(totals, "errors", json_integer((json_int_t) (json_array_size(r->errors) + json_array_size(p->errors))));

        json_t *errors = json_deep_copy(p->errors);
        json_array_extend(errors, r->errors);

        double total_s = (double) (ended - started) / 1e9;
        json_t *rep = json_pack("{s:I, s:s, s:s, s:f, s:b, s:s?, s:s, s:s, s:f, s:f, s:{s:f, s:f, s:f, s:f, s:f}, s:o, s:o, s:o, s:o, "
                                "s:{s:o, s:o}, s:O, s:O, s:o, s:o, s:o, s:o}",
                                "id", (json_int_t) started, "started", format_timestamp(s1, sizeof s1, started), "ended",
                                format_timestamp(s2, sizeof s2, ended), "duration_seconds", total_s, "dry_run", r->o->dry_run,
                                "repo", r->o->repo && *r->o->repo ? r->o->repo : NULL, "trigger",
                                r->o->trigger ? r->o->trigger : "api", "actor", r->actor, "grace_seconds",
                                (double) r->c->grace_ns / 1e9, "untagged_grace_seconds", (double) r->c->untagged_grace_ns / 1e9,
                                "phases", "plan", r->t_plan, "apply", r->t_apply, "mark", r->t_mark, "sweep", r->t_sweep,
                                "reconcile", r->t_reconcile, "totals", totals, "per_repository", per_repo, "per_rule", per_rule,
                                "kept", kept, "plan", "tags", tags, "manifests", links, "holds", p->holds, "channel_windows",
                                p->windows, "orphans", json_incref(r->orphan_list), "records_without_file",
                                json_incref(r->missing_list), "skipped", json_incref(r->raced_list), "errors", errors);
        if (rep) {
                json_object_set_new(rep, "cpu_nice", json_integer(r->cpu_nice));
                json_object_set_new(rep, "cpu_policy", json_string(r->cpu_idle ? "idle" : "normal"));
        }
        return rep;
}

/* Stores the report under its start time and as the last one, drops the oldest beyond reports_kept
 * and (with clear_intent) the sweep intent, all in one batch, not synced: gc_run() syncs it once
 * the run no longer counts as running (see there). */
int gc_report_store(Store *s, const GcConfig *c, json_t *rep, int64_t started, bool clear_intent) {
        _cleanup_free_ char *txt = json_dumps(rep, JSON_COMPACT);
        if (!txt)
                return -ENOMEM;
        return store_gc_report_put(s, txt, started, c->reports_kept, clear_intent);
}

typedef struct ListCtx {
        json_t *arr;
        bool summaries;
} ListCtx;

static int list_cb(void *userdata, int64_t started, const char *json, size_t len) {
        ListCtx *c = userdata;
        json_error_t je;
        json_t *j = json_loadb(json, len, 0, &je);
        if (!j)
                return 0;
        if (c->summaries) {
                json_object_del(j, "plan");
                json_object_del(j, "orphans");
                json_object_del(j, "skipped");
                json_object_del(j, "channel_windows");
                json_object_del(j, "records_without_file");
        }
        json_array_insert_new(c->arr, 0, j); /* newest first */
        return 0;
}

int gc_reports_list(Store *s, size_t limit, json_t **ret) {
        ListCtx c = { .arr = json_array(), .summaries = limit != 0 };
        if (!c.arr)
                return -ENOMEM;
        int r = store_gc_reports_foreach(s, list_cb, &c);
        if (r < 0) {
                json_decref(c.arr);
                return r;
        }
        while (limit && json_array_size(c.arr) > limit)
                json_array_remove(c.arr, json_array_size(c.arr) - 1);
        *ret = c.arr;
        return 0;
}

int gc_report_last(Store *s, json_t **ret) {
        _cleanup_free_ char *v = NULL;
        int r = store_gc_report_last(s, &v);
        if (r < 0)
                return r;
        json_error_t je;
        *ret = json_loads(v, 0, &je);
        return *ret ? 0 : -EBADMSG;
}

void gc_metrics_after_run(const GcOptions *o, int result, const json_t *rep) {
        gc_metrics_declare();
        char labels[64];
        snprintf(labels, sizeof labels, "result=\"%s\",dry_run=\"%s\"", result < 0 ? "error" : "ok", o->dry_run ? "true" : "false");
        metrics_counter_add("plura_gc_runs_total", labels, 1);
        if (!rep)
                return;
        if (!o->dry_run) {
                json_t *t = json_object_get(rep, "totals");
                metrics_counter_add("plura_gc_reclaimed_bytes_total", "kind=\"disk\"",
                                    (double) json_integer_value(json_object_get(t, "bytes_disk")));
                metrics_counter_add("plura_gc_reclaimed_bytes_total", "kind=\"logical\"",
                                    (double) json_integer_value(json_object_get(t, "bytes_logical")));
        }
        metrics_histogram_observe("plura_gc_duration_seconds", o->dry_run ? "dry_run=\"true\"" : "dry_run=\"false\"",
                                  json_real_value(json_object_get(rep, "duration_seconds")));
}

