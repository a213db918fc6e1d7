/* SPDX-License-Identifier: MIT */
/* The human table of a GC report (gc_report_print in gc.h). A file of its own: the `plura reg`
 * client prints reports without linking the GC, the store or RocksDB. */
#include <inttypes.h>
#include <stdio.h>

#include "common/util.h"
#include "gc/gc.h"

static uint64_t jint(const json_t *o, const char *k) {
        return (uint64_t) json_integer_value(json_object_get(o, k));
}

static void print_acc_table(FILE *f, const char *title, const json_t *obj) {
        if (json_object_size(obj) == 0)
                return;
        fprintf(f, "\n%-40s %6s %9s %7s %11s %11s\n", title, "TAGS", "MANIFESTS", "BLOBS", "LOGICAL", "DISK");
        const char *k;
        json_t *v;
        json_object_foreach((json_t *) obj, k, v) {
                char b1[32], b2[32];
                fprintf(f, "%-40s %6" PRIu64 " %9" PRIu64 " %7" PRIu64 " %11s %11s\n", k, jint(v, "tags_deleted"),
                        MAX(jint(v, "manifests_deleted"), jint(v, "links_deleted")), jint(v, "blobs_deleted"),
                        format_bytes(b1, sizeof b1, jint(v, "bytes_logical")), format_bytes(b2, sizeof b2, jint(v, "bytes_disk")));
        }
}

void gc_report_print(FILE *f, const json_t *rep) {
        const json_t *t = json_object_get(rep, "totals");
        const json_t *ph = json_object_get(rep, "phases");
        bool dry = json_is_true(json_object_get(rep, "dry_run"));
        char b1[32], b2[32];
        fprintf(f, "%s %s%s%s, %.3f s (plan %.3f, apply %.3f, mark %.3f, sweep %.3f, reconcile %.3f)\n",
                dry ? "GC dry run (nothing changed)" : "GC run", strempty(json_string_value(json_object_get(rep, "started"))),
                json_is_string(json_object_get(rep, "repo")) ? " for " : "", strempty(json_string_value(json_object_get(rep, "repo"))),
                json_number_value(json_object_get(rep, "duration_seconds")), json_number_value(json_object_get(ph, "plan")),
                json_number_value(json_object_get(ph, "apply")), json_number_value(json_object_get(ph, "mark")),
                json_number_value(json_object_get(ph, "sweep")), json_number_value(json_object_get(ph, "reconcile")));
        fprintf(f, "%s %" PRIu64 " tags, %" PRIu64 " repository links, %" PRIu64 " manifests, %" PRIu64 " blobs, %" PRIu64
                " orphan files\n",
                dry ? "Would delete:" : "Deleted:", jint(t, "tags_deleted"), jint(t, "links_deleted"), jint(t, "manifests_deleted"),
                jint(t, "blobs_deleted"), jint(t, "orphans_deleted"));
        fprintf(f, "%s %s on disk, %s logical\n", dry ? "Would reclaim:" : "Reclaimed:",
                format_bytes(b1, sizeof b1, jint(t, "bytes_disk")), format_bytes(b2, sizeof b2, jint(t, "bytes_logical")));
        fprintf(f, "Scanned: %" PRIu64 " repositories, %" PRIu64 " tags, %" PRIu64 " manifests, %" PRIu64 " blobs (%" PRIu64
                " live)\n",
                jint(t, "repositories"), jint(t, "tags_scanned"), jint(t, "manifests_scanned"), jint(t, "blobs_scanned"),
                jint(t, "blobs_marked"));
        print_acc_table(f, "REPOSITORY", json_object_get(rep, "per_repository"));
        print_acc_table(f, "RULE", json_object_get(rep, "per_rule"));
        const json_t *kept = json_object_get(rep, "kept");
        if (json_object_size(kept) > 0) {
                fprintf(f, "\nKept (tags and links) by rule:");
                const char *k;
                json_t *v;
                json_object_foreach((json_t *) kept, k, v)
                        fprintf(f, " %s=%" JSON_INTEGER_FORMAT, k, json_integer_value(v));
                fputc('\n', f);
        }
        const json_t *holds = json_object_get(rep, "holds");
        size_t i;
        json_t *v;
        if (json_array_size(holds) > 0) {
                fprintf(f, "\nHolds:\n");
                json_array_foreach(holds, i, v)
                        fprintf(f, "  %s %s: %s%s%s\n", strempty(json_string_value(json_object_get(v, "case_id"))),
                                strempty(json_string_value(json_object_get(v, "digest"))),
                                strempty(json_string_value(json_object_get(v, "action"))),
                                json_object_get(v, "bundle") ? " -> " : "", strempty(json_string_value(json_object_get(v, "bundle"))));
        }
        if (jint(t, "skipped_raced") > 0)
                fprintf(f, "\nSkipped %" PRIu64 " deletions that raced with pushes or pulls (collected next time).\n",
                        jint(t, "skipped_raced"));
        if (jint(t, "records_without_file") > 0)
                fprintf(f, "\nWARNING: %" PRIu64 " blob records have no file (run plura fsck).\n", jint(t, "records_without_file"));
        const json_t *errors = json_object_get(rep, "errors");
        if (json_array_size(errors) > 0) {
                fprintf(f, "\nErrors:\n");
                json_array_foreach(errors, i, v)
                        fprintf(f, "  %s %s: %s\n", strempty(json_string_value(json_object_get(v, "what"))),
                                strempty(json_string_value(json_object_get(v, "target"))),
                                strempty(json_string_value(json_object_get(v, "error"))));
        }
}
