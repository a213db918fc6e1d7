/* SPDX-License-Identifier: MIT */
/* The Gc object and one run: run control (one at a time, cancel, stop, the background run), the
 * phases in order (plan, apply, mark, sweep, reconcile), the report (see gc.h). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "gc/gc-internal.h"
#include "storage/gc-records.h"

/* ---------------------------------------------------------------- the Gc object */

int gc_new(Store *s, GcConfig *c, Gc **ret) {
        _cleanup_(gc_config_freep) GcConfig *config = c;
        if (!s || !c)
                return -EINVAL;
        Gc *g = calloc(1, sizeof *g);
        if (!g)
                return -ENOMEM;
        g->store = s;
        g->config = steal_pointer(&config);
        pthread_mutex_init(&g->lock, NULL);
        pthread_mutex_init(&g->metrics_lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&g->cond, &ca);
        pthread_condattr_destroy(&ca);
        *ret = g;
        return 0;
}

static void async_options_free(Gc *g) {
        free(g->async_repo);
        free(g->async_actor);
        free(g->async_trigger);
        g->async_repo = g->async_actor = g->async_trigger = NULL;
}

Gc *gc_free(Gc *g) {
        if (!g)
                return NULL;
        gc_stop(g);
        gc_metrics_unregister(g);
        async_options_free(g);
        gc_config_free(g->config);
        pthread_cond_destroy(&g->cond);
        pthread_mutex_destroy(&g->metrics_lock);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return NULL;
}

const GcConfig *gc_config(Gc *g) {
        return g->config;
}

Store *gc_store(Gc *g) {
        return g->store;
}

/* ---------------------------------------------------------------- run control */

void gc_cancel(Gc *g) {
        __atomic_store_n(&g->cancel, 1, __ATOMIC_RELAXED);
}

bool gc_cancelled(Gc *g) {
        return __atomic_load_n(&g->cancel, __ATOMIC_RELAXED) != 0;
}

void gc_set_finished_notify(Gc *g, void (*fn)(void *userdata), void *userdata) {
        pthread_mutex_lock(&g->lock);
        g->finished_fn = fn;
        g->finished_userdata = userdata;
        pthread_mutex_unlock(&g->lock);
}

bool gc_is_running(Gc *g) {
        pthread_mutex_lock(&g->lock);
        bool r = g->running;
        pthread_mutex_unlock(&g->lock);
        return r;
}

void gc_wait_idle(Gc *g) {
        pthread_mutex_lock(&g->lock);
        while (g->active_runs > 0)
                pthread_cond_wait(&g->cond, &g->lock);
        pthread_mutex_unlock(&g->lock);
}

/* Claims the one run of g; the caller holds g->lock. */
static int run_claim_locked(Gc *g) {
        if (g->stopping)
                return -ESHUTDOWN;
        if (g->running)
                return -EBUSY;
        g->running = true;
        g->active_runs++;
        __atomic_store_n(&g->cancel, 0, __ATOMIC_RELAXED);
        return 0;
}

/* Clears running and tells the one who asked (gc_set_finished_notify()); under the lock, so that
 * once gc_set_finished_notify(NULL, NULL) returned no call is in progress. */
static void run_finished(Gc *g) {
        pthread_mutex_lock(&g->lock);
        g->running = false;
        if (g->finished_fn)
                g->finished_fn(g->finished_userdata);
        pthread_mutex_unlock(&g->lock);
}

static void run_left(Gc *g) {
        pthread_mutex_lock(&g->lock);
        g->active_runs--;
        pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->lock);
}

/* ---------------------------------------------------------------- helpers of the phases */

void run_error(Run *r, const char *what, const char *target, int err) {
        pthread_mutex_lock(&r->lock);
        json_array_append_new(r->errors, json_pack("{s:s, s:s, s:s}", "what", what, "target", strempty(target),
                                                   "error", err < 0 ? strerror(-err) : "inconsistent"));
        pthread_mutex_unlock(&r->lock);
}

void run_error_msg(Run *r, const char *what, const char *target, const char *msg) {
        pthread_mutex_lock(&r->lock);
        json_array_append_new(r->errors, json_pack("{s:s, s:s, s:s}", "what", what, "target", strempty(target), "error", msg));
        pthread_mutex_unlock(&r->lock);
}

void note_raced(Run *r, const char *kind, const char *repo, const char *name, const char *why) {
        pthread_mutex_lock(&r->lock);
        r->skipped_raced++;
        if (json_array_size(r->raced_list) < LIST_MAX)
                json_array_append_new(r->raced_list, json_pack("{s:s, s:s, s:s, s:s}", "kind", kind, "repo", strempty(repo),
                                                               "name", name, "why", why));
        pthread_mutex_unlock(&r->lock);
}

void run_test_delay(Run *r) {
        if (r->delay_ms > 0) {
                struct timespec ts = { .tv_sec = r->delay_ms / 1000, .tv_nsec = (long) (r->delay_ms % 1000) * 1000000L };
                nanosleep(&ts, NULL);
        }
}

double since(uint64_t t0) {
        return (double) (clock_monotonic_ns() - t0) / 1e9;
}

Acc *repo_acc(Run *r, uint32_t repo) {
        if (repo >= r->n_repo_acc)
                return &r->repo_acc[r->n_repo_acc]; /* "(none)" */
        return &r->repo_acc[repo];
}

/* The process's peak RSS so far, for the phase log lines (sizing a GC run is about memory). */
long peak_rss_mib(void) {
        struct rusage ru;
        return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024 : -1;
}

/* ---------------------------------------------------------------- the run */

static void run_done(Run *r) {
        store_snapshot_free(r->snap2);
        store_snapshot_free(r->snap1);
        store_snapshot_free(r->live);
        plan_done(&r->p);
        graph_done(&r->g);
        free(r->owner);
        free(r->link_bytes);
        free(r->repo_acc);
        json_decref(r->orphan_list);
        json_decref(r->missing_list);
        json_decref(r->raced_list);
        json_decref(r->errors);
        pthread_mutex_destroy(&r->lock);
}

/* The phases. Every snapshot and view of the run reads cold: the index block cache stays with
 * the lookups that serve requests (the GC reads each record of a million-blob store once; letting
 * it fill the cache added its whole 64 MiB to the server's RSS during a run). */
static int run_phases(Run *r) {
        int q;
        uint64_t t0 = clock_monotonic_ns();

        /* 1. plan */
        q = store_snapshot_new(r->s, &(StoreSnapshotOptions) { .cold = true, .live = true }, &r->live);
        if (q >= 0)
                q = store_snapshot_new(r->s, &(StoreSnapshotOptions) { .cold = true }, &r->snap1);
        if (q < 0)
                return log_error_errno(q, "gc: cannot take a snapshot: %m");
        q = graph_load(&r->g, r->s, r->snap1);
        if (q < 0)
                return log_error_errno(q, "gc: cannot load manifests: %m");
        q = plan_build(&r->p, r->s, r->snap1, &r->g, r->c, r->o, r->now);
        if (q < 0)
                return q;
        r->t_plan = since(t0);

        /* 2. apply */
        t0 = clock_monotonic_ns();
        if (!r->o->dry_run) {
                log_info("gc: phase apply (plan %.2f s)", r->t_plan);
                q = gc_apply(r);
                if (q < 0)
                        return q;
        }
        r->t_apply = since(t0);

        /* 3. mark */
        log_info("gc: phase mark (plan %.2f s, apply %.2f s; peak RSS %ld MiB)", r->t_plan, since(t0), peak_rss_mib());
        t0 = clock_monotonic_ns();
        IndexSnapshot *msnap = r->snap1;
        if (!r->o->dry_run) {
                r->mark_start = clock_now_ns();
                /* with the digest lock generations of just before it: the sweep skips re-reading
                 * the candidates no writer touched since */
                q = store_snapshot_new(r->s, &(StoreSnapshotOptions) { .cold = true, .generations = true }, &r->snap2);
                if (q < 0)
                        return q;
                msnap = r->snap2;
        } else
                r->mark_start = r->now;
        q = gc_mark(r, msnap, r->o->dry_run);
        if (q < 0)
                return log_error_errno(q, "gc: mark failed: %m");
        r->t_mark = since(t0);

        /* 4. sweep */
        log_info("gc: phase sweep (mark %.2f s; peak RSS %ld MiB)", since(t0), peak_rss_mib());
        t0 = clock_monotonic_ns();
        r->link_bytes = calloc(MAX(r->p.n_links, (size_t) 1), sizeof(LinkBytes));
        r->n_repo_acc = r->p.n_repos;
        r->repo_acc = calloc(r->n_repo_acc + 1, sizeof(Acc));
        if (!r->link_bytes || !r->repo_acc)
                return -ENOMEM;
        if (!r->o->dry_run) {
                /* intent for fsck: files without record older than mark_start may be ours (a crash
                 * between record and file removal); removed when the run ends */
                _cleanup_free_ char *intent = strdup_printf("{\"mark_start\":%lld,\"started\":%lld,\"pid\":%d}",
                                                            (long long) r->mark_start, (long long) r->now, (int) getpid());
                q = intent ? store_gc_sweep_intent_put(r->s, intent) : -ENOMEM;
                if (q < 0)
                        return log_error_errno(q, "gc: cannot record the sweep intent: %m");
                r->intent_written = true;
        }
        if (r->o->test_before_manifest_sweep)
                r->o->test_before_manifest_sweep(r->gc, r->o->test_userdata);
        q = gc_sweep(r, msnap);
        if (q < 0)
                return log_error_errno(q, "gc: sweep failed: %m");
        r->t_sweep = since(t0);

        /* 5. reconcile (whole store only) */
        t0 = clock_monotonic_ns();
        if (!r->scoped) {
                q = gc_reconcile(r);
                if (q < 0)
                        run_error(r, "reconcile", NULL, q);
        }
        r->t_reconcile = since(t0);

        uint64_t cache, memtables;
        if (store_index_memory(r->s, &cache, &memtables) >= 0)
                log_info("gc: index block cache %" PRIu64 " MiB, memtables %" PRIu64 " MiB; peak RSS %ld MiB",
                         cache >> 20, memtables >> 20, peak_rss_mib());
        return 0;
}

typedef struct RunThread {
        Run *r;
        int nice;
        bool idle;
        int result;
} RunThread;

static void note_own_priority(Run *r) {
        errno = 0;
        int cur = getpriority(PRIO_PROCESS, (id_t) gettid());
        r->cpu_nice = errno == 0 ? cur : -1;
        r->cpu_idle = sched_getscheduler(0) == SCHED_IDLE;
}

/* The run's own thread, at gc.cpu_nice or under SCHED_IDLE (gc.sched_idle): it and the sweep
 * threads it starts (which inherit both) yield the CPU to request threads. Measured at 250k
 * blobs with a fixed 2,000 req/s of manifest GETs on 2 cores: p99 during GC 4.6-4.8 ms at
 * nice 0, 2.2 ms at nice 10, GC time the same; a CPU saturated by requests leaves such a GC
 * little (1M blobs: 14-18 s at nice 0, 36 s at nice 10). SCHED_IDLE goes further: a waking
 * request thread preempts a GC thread at once instead of when the GC's slice is used up. A
 * thread of its own because neither can be undone without privilege, and the caller may be an
 * HTTP worker. */
static void *run_thread(void *userdata) {
        RunThread *t = userdata;
        (void) pthread_setname_np(pthread_self(), "plura-gc");
        if (t->nice > 0 && setpriority(PRIO_PROCESS, (id_t) gettid(), t->nice) < 0)
                log_warning_errno(errno, "gc: cannot lower the GC threads' CPU priority: %m");
        if (t->idle && sched_setscheduler(0, SCHED_IDLE, &(struct sched_param) { .sched_priority = 0 }) < 0)
                log_warning_errno(errno, "gc: cannot run the GC threads under SCHED_IDLE, at nice %d instead: %m", t->nice);
        note_own_priority(t->r);
        t->result = run_phases(t->r);
        return NULL;
}

static int run_phases_deprioritized(Run *r, int nice, bool idle) {
        if (nice <= 0 && !idle) {
                note_own_priority(r);
                return run_phases(r);
        }
        RunThread t = { .r = r, .nice = nice, .idle = idle };
        pthread_t th;
        int k = pthread_create(&th, NULL, run_thread, &t);
        if (k != 0) {
                log_warning_errno(k, "gc: cannot start the GC thread, running at normal priority: %m");
                note_own_priority(r);
                return run_phases(r);
        }
        pthread_join(th, NULL);
        return t.result;
}

/* One run, its claim taken (run_claim_locked()); lets go of it. */
static int run_claimed(Gc *g, const GcOptions *o, json_t **ret_report) {
        Store *s = g->store;
        const GcConfig *c = g->config;
        if (!o->dry_run && store_is_read_only(s)) {
                run_finished(g);
                run_left(g);
                return -EROFS;
        }

        Run r = {
                .gc = g,
                .s = s,
                .c = c,
                .o = o,
                .actor = o->actor ? o->actor : "gc",
                .scoped = o->repo && *o->repo,
                .orphan_list = json_array(),
                .missing_list = json_array(),
                .raced_list = json_array(),
                .errors = json_array(),
        };
        pthread_mutex_init(&r.lock, NULL);
        const char *delay = getenv("PLURA_GC_TEST_DELAY_MS");
        if (delay)
                r.delay_ms = (unsigned) strtoul(delay, NULL, 10);
        int64_t started = clock_now_ns();
        uint64_t mono0 = clock_monotonic_ns();
        r.now = started;
        r.cutoff = started - c->grace_ns;
        log_info("gc: %s started%s%s (peak RSS so far %ld MiB)", o->dry_run ? "dry run" : "run", o->repo ? " for " : "",
                 strempty(o->repo), peak_rss_mib());

        int q = graph_init(&r.g);
        if (q >= 0)
                q = run_phases_deprioritized(&r, c->cpu_nice, c->sched_idle);
        json_t *rep = NULL;
        if (q >= 0) {
                /* durations from the monotonic clock, times from the (injectable) wall clock */
                int64_t ended = started + (int64_t) (clock_monotonic_ns() - mono0);
                rep = gc_report_build(&r, started, ended);
                if (!rep)
                        q = -ENOMEM;
        }
        bool stored = false;
        if (q >= 0 && !o->dry_run) {
                int k = gc_report_store(s, c, rep, started, r.intent_written);
                if (k < 0)
                        log_warning_errno(k, "gc: cannot store the report: %m");
                else
                        r.intent_written = false, stored = true; /* intent removed in the same batch */
        }
        if (r.intent_written && q < 0)
                /* cancelled or failed in the sweep: records may be gone whose files are not (the
                 * record pass ran, the file pass did not). The intent stays, so that fsck counts
                 * those files as this run's leftovers, as after a kill -9; the next run collects
                 * them and removes it. */
                log_warning("gc: the run stopped in its sweep; the sweep intent stays for fsck and the next run");
        else if (r.intent_written) {
                int k = store_gc_sweep_intent_clear(s);
                if (k < 0)
                        log_warning_errno(k, "gc: cannot remove the sweep intent: %m");
        }
        gc_metrics_after_run(o, q, rep);
        if (rep) {
                json_t *t = json_object_get(rep, "totals");
                char b1[32];
                log_info("gc: %s done in %.3fs: %" JSON_INTEGER_FORMAT " tags, %" JSON_INTEGER_FORMAT
                         " manifests, %" JSON_INTEGER_FORMAT " blobs, %s on disk",
                         o->dry_run ? "dry run" : "run", json_real_value(json_object_get(rep, "duration_seconds")),
                         json_integer_value(json_object_get(t, "tags_deleted")),
                         json_integer_value(json_object_get(t, "manifests_deleted")),
                         json_integer_value(json_object_get(t, "blobs_deleted")),
                         format_bytes(b1, sizeof b1, (uint64_t) json_integer_value(json_object_get(t, "bytes_disk"))));
        } else
                log_error_errno(q, "gc: failed: %m");
        run_done(&r);

        run_finished(g);
        /* The report is readable (GET gc/reports/last) from here on; its sync comes after the
         * clients waiting for the run (GET gc?wait=N) have been told it is over. That sync is the
         * journal commit of all the run's unlinks (10k blobs on ext4: 10-15 ms, a tenth of the
         * run). Returns only once it is durable. If power fails first, the report is lost and the
         * intent stays: fsck and the next run treat that as an interrupted sweep. The records
         * were synced before any file went. */
        if (stored) {
                int k = store_sync_wal(s);
                if (k < 0)
                        log_warning_errno(k, "gc: cannot sync the stored report: %m");
        }
        run_left(g);
        if (q < 0) {
                json_decref(rep);
                return q;
        }
        if (ret_report)
                *ret_report = rep;
        else
                json_decref(rep);
        return 0;
}

int gc_run(Gc *g, const GcOptions *o, json_t **ret_report) {
        pthread_mutex_lock(&g->lock);
        int q = run_claim_locked(g);
        pthread_mutex_unlock(&g->lock);
        if (q < 0)
                return q;
        return run_claimed(g, o, ret_report);
}

/* ---------------------------------------------------------------- the background run */

static void *async_thread(void *userdata) {
        Gc *g = userdata;
        (void) pthread_setname_np(pthread_self(), "plura-gc-async");
        int k = run_claimed(g, &g->async_options, NULL);
        if (k < 0)
                log_error_errno(k, "gc: background run failed: %m");
        return NULL;
}

/* The previous background run's thread, once its run is over (it is, or is about to be: the
 * caller saw running false under the lock, and the thread only returns after that). */
static void async_join_locked(Gc *g) {
        if (!g->async_joinable)
                return;
        pthread_t t = g->async_thread;
        g->async_joinable = false;
        pthread_mutex_unlock(&g->lock);
        pthread_join(t, NULL);
        pthread_mutex_lock(&g->lock);
}

int gc_start(Gc *g, const GcOptions *o) {
        pthread_mutex_lock(&g->lock);
        int q = g->stopping ? -ESHUTDOWN : g->running ? -EBUSY : 0;
        if (q >= 0)
                async_join_locked(g); /* its run is over: gc_start() and gc_stop() are the joiners */
        if (q >= 0)
                q = run_claim_locked(g);
        if (q < 0) {
                pthread_mutex_unlock(&g->lock);
                return q;
        }
        /* the thread reads its options from g, copied: the caller's strings may go at once */
        async_options_free(g);
        g->async_repo = o->repo ? strdup(o->repo) : NULL;
        g->async_actor = o->actor ? strdup(o->actor) : NULL;
        g->async_trigger = o->trigger ? strdup(o->trigger) : NULL;
        g->async_options = *o;
        g->async_options.repo = g->async_repo;
        g->async_options.actor = g->async_actor;
        g->async_options.trigger = g->async_trigger;
        if ((o->repo && !g->async_repo) || (o->actor && !g->async_actor) || (o->trigger && !g->async_trigger))
                q = -ENOMEM;
        else
                q = -pthread_create(&g->async_thread, NULL, async_thread, g);
        g->async_joinable = q >= 0;
        pthread_mutex_unlock(&g->lock);
        if (q < 0) {
                /* the claim goes back as a run that never started */
                run_finished(g);
                run_left(g);
        }
        return q;
}

void gc_stop(Gc *g) {
        pthread_mutex_lock(&g->lock);
        g->stopping = true;
        if (g->running)
                gc_cancel(g); /* prompt shutdown: the run stops at its next step */
        pthread_mutex_unlock(&g->lock);
        gc_scheduler_stop(g);
        gc_wait_idle(g);
        pthread_mutex_lock(&g->lock);
        async_join_locked(g);
        pthread_mutex_unlock(&g->lock);
}
