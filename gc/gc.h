/* SPDX-License-Identifier: MIT */
#pragma once

/* gc: retention policy evaluation, online mark-and-sweep, reports.
 *
 * A run has five phases:
 *
 *  1. plan       Retention is evaluated over a RocksDB snapshot into a list of tag and
 *                repository-manifest-link deletions, each with the rule that caused it.
 *  2. apply      (not in a dry run) the deletions go through the store API, each re-checked
 *                against the live index first (a tag moved or pulled, or a manifest re-tagged
 *                since the snapshot is skipped).
 *  3. mark       From a second snapshot (a dry run: the plan's snapshot minus the planned
 *                deletions). Roots: every remaining repository link (so every tag), channel
 *                history inside its window, holds that protect, blobs younger than grace.
 *                Index -> child manifests -> config, layers; nothing else.
 *  4. sweep      Unmarked manifest records are removed under the manifest's digest lock unless it
 *                was pushed again since the mark (its first child's blob record changed, or, for
 *                an index, a repository link exists). Unmarked blobs older than grace are removed
 *                under store_digest_lock after re-reading the record: a record that differs from
 *                the mark snapshot's (a manifest PUT, mount or commit touched it) or was touched at
 *                or after the mark started is kept. Records first: the records and repository
 *                links of all removed blobs are deleted, made durable with one WAL sync, and
 *                then each file goes under its lock again unless a commit wrote a new record
 *                for it in between: a crash leaves at worst an orphan file. While a
 *                sweep runs, meta "gc/sweep" = {mark_start} tells fsck that blob files without
 *                record older than mark_start are the GC's (not a problem; the next run collects
 *                them). Removals run on a pool of threads, each item under its own lock.
 *  5. reconcile  Files under <root>/blobs without an index record, older than grace, are
 *                orphans (a crashed sweep, a crashed commit) and are removed under the same
 *                lock; records whose file is missing are reported.
 *
 * How the retention rules combine, per repository R (selected by the rule list: every rule
 * whose `repos` glob matches R applies in order, keys of a later rule override):
 *
 *  - Tags matching a keep_forever pattern (release tags vX.Y.Z, X.Y.Z, X.Y.Z_<sha>, the
 *    moving tags latest and dev, the channel pointers stable and candidate) are never deleted.
 *  - Cosign tag-scheme referrers (sha256-<hex>.sig/.att/.sbom) follow the digest they name:
 *    kept while that manifest lives in R, deleted with it.
 *  - Every other tag belongs to a "version" = the digest it points at. Versions are ranked by
 *    their newest tag update; the keep_last newest are kept. An older version is deleted only
 *    if it is ALSO idle: no push or pull (tag updated/last_pulled, link pushed/last_pulled) for
 *    idle_days. keep_last: 0 keeps none by rank, idle_days: 0 means "idle" immediately.
 *  - A repository link (R, D) lives if any of: it keeps a tag; D is protected (it was at a
 *    channel pointer within that channel's window — prod:stable 180 d, prod:candidate 30 d,
 *    stg 30 d, dev 14 d, the window of "env:pointer" or else of "env" from the rule set of
 *    channels/<env>/<svc> — or D is under an active RCA hold, or an inactive hold whose WORM
 *    export could not be made); it never had a tag and was pushed or pulled within
 *    untagged_grace; it is a child of a live index in R (a multi-arch index keeps its
 *    platform manifests — never distribution#3178); it is a referrer (subject field) of a live
 *    manifest in R. A referrer whose subject is linked in R lives exactly as long as its
 *    subject (its own non-forever tags do not keep it).
 *  - Everything else is deleted: the link, its tags, its referrer record. A manifest record
 *    with no link left in any repository and not protected is removed in the sweep, and the
 *    blobs only it referenced go with it.
 *
 * Bytes "freed" by a deletion are the bytes of blobs unique to it: not reachable from anything
 * that stays. A blob shared by several deleted manifests is counted once, under the first
 * deletion (in plan order) that references it. Blobs no manifest references are reported under
 * rule "unreferenced", orphan files under "orphan". */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/config.h"
#include "storage/storage.h"

typedef struct GcConfig GcConfig;

/* Parses the "gc" section (and borrows "worm") of the configuration. */
int gc_config_new(Config *c, GcConfig **ret, char *err, size_t errlen);
GcConfig *gc_config_free(GcConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(GcConfig *, gc_config_free);
/* Interval of gc.schedule in ns ("" = 0 = off, "daily", "weekly", or a duration like "6h"). */
int64_t gc_config_schedule_ns(const GcConfig *c);
/* gc.schedule as written ("" when off). */
const char *gc_config_schedule(const GcConfig *c);

/* "" -> 0, "daily", "weekly", "hourly" or a duration. -EINVAL otherwise. */
int gc_parse_schedule(const char *s, int64_t *ret);

/* The GC of one store: its configuration, whether and which run is in progress, its schedule and
 * its metrics. Every function may be called from any thread. */
typedef struct Gc Gc;

/* Takes c (also on failure). */
int gc_new(Store *s, GcConfig *c, Gc **ret);
/* gc_stop(), then frees. */
Gc *gc_free(Gc *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(Gc *, gc_free);
const GcConfig *gc_config(Gc *g);
Store *gc_store(Gc *g);

typedef struct GcOptions {
        const char *repo;       /* glob restricting the retention plan and the sweep; NULL = all */
        bool dry_run;           /* evaluate and report, change nothing */
        const char *actor;      /* for audit ("gc" if NULL) */
        const char *trigger;    /* "api", "schedule", "offline" (report field) */
        /* tests: called after the mark (its snapshot taken) and before the manifest sweep; and by
         * the blob sweep after the record deletions are durable and before any file is removed
         * (a push of the same digest in that window must keep its file) */
        void (*test_before_manifest_sweep)(Gc *g, void *userdata);
        void (*test_between_sweep_passes)(Gc *g, void *userdata);
        void *test_userdata;
} GcOptions;

/* Runs one GC. Only one at a time per Gc: -EBUSY if one is running; -ESHUTDOWN after gc_stop().
 * The report (see docs) is returned in *ret_report and, unless dry_run, stored in the index as
 * the last report and in the list of reports (keeping gc.reports_kept). Errors of single deletions
 * go into the report; the return value is negative only if the run could not proceed. */
int gc_run(Gc *g, const GcOptions *o, json_t **ret_report);
/* gc_run() in a thread the Gc owns (joined by the next gc_start() or by gc_stop()): returns once
 * the run has started (gc_is_running() is true from then until its report is readable), -EBUSY if
 * one is running, -ESHUTDOWN after gc_stop(). The report is then read with gc_report_last(). */
int gc_start(Gc *g, const GcOptions *o);

/* True while a run is in progress. */
bool gc_is_running(Gc *g);
/* Waits until no gc_run() is in progress, including the report's sync after gc_is_running()
 * turned false. */
void gc_wait_idle(Gc *g);
/* fn(userdata) is called by every run (any thread) right after gc_is_running() turned false, the
 * report already readable through gc_report_last(): the server wakes its long polls of
 * GET /v1/registry/gc?wait=N with it. NULL to remove; once that returned no call is in progress.
 * fn must not call into this module. */
void gc_set_finished_notify(Gc *g, void (*fn)(void *userdata), void *userdata);
/* Asks a running GC to stop at the next step: it returns -ECANCELED, leaving the store consistent
 * (every step is atomic on its own; the next run picks up the rest). */
void gc_cancel(Gc *g);
/* Server shutdown: the schedule stops, new runs are refused (-ESHUTDOWN), a running one is
 * cancelled, and this returns once none is in progress and the background thread is joined (the
 * store may then be closed). gc_scheduler_start() takes runs again. */
void gc_stop(Gc *g);

/* The schedule (gc.schedule) in a thread of its own, the first run one interval after the start:
 * 0 and nothing when gc.schedule is off or the store is read-only. Also takes runs again after
 * gc_stop(). */
int gc_scheduler_start(Gc *g);
/* Ends the schedule's thread, after the scheduled run in progress if there is one (gc_stop()
 * cancels that first). */
void gc_scheduler_stop(Gc *g);
/* The wall-clock time of the next scheduled run (ns), 0 if none. */
int64_t gc_scheduler_next_run(Gc *g);

/* Prints a report as a human table (format_bytes) to f. */
void gc_report_print(FILE *f, const json_t *report);

/* Stored reports, newest first, at most limit (0 = all). */
int gc_reports_list(Store *s, size_t limit, json_t **ret);
/* The last stored report, -ENOENT if none. */
int gc_report_last(Store *s, json_t **ret);

/* Declares the GC metrics and registers the collector of plura_storage_bytes and
 * plura_digest_unique (computed from the index, cached for cache_ns) until gc_free(). */
void gc_metrics_init(Gc *g, int64_t cache_ns);

/* Test hook: PLURA_GC_TEST_DELAY_MS=N sleeps N ms between mark and sweep steps (crash tests). */
