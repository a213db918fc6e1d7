/* SPDX-License-Identifier: MIT */
/* /v1/registry/gc handlers and the server's own GC schedule:
 *   POST /v1/registry/gc              {repo?, dry_run?, wait?}  -> the report (dry_run: the plan; nothing changes)
 *                                      409 GC_RUNNING when a GC is already running. wait: false runs it in a
 *                                      thread of its own and answers 202 at once: a long GC then does not pin
 *                                      an HTTP worker thread (and the connections it serves); poll GET gc,
 *                                      then GET gc/reports/last. `plura reg gc` does that for real runs.
 *   GET  /v1/registry/gc              {running, schedule, interval_seconds, next_run?, last?}
 *                                      ?wait=N (1..300 s): while a run is in progress, answers when it
 *                                      ends or after N s, whichever is first, without holding an HTTP
 *                                      thread meanwhile (a long poll; `plura reg gc` waits this way)
 *   GET  /v1/registry/gc/reports      ?limit=N (default 20): stored report summaries, newest first
 *   GET  /v1/registry/gc/reports/last the full last report; /reports/<id> a full report by id
 * The schedule (gc.schedule: "", "hourly", "daily", "weekly" or a duration) runs in a thread of
 * its own; the first run is one interval after start-up. Shutdown cancels a running GC. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "gc/gc.h"
#include "registry-api/registry-api.h"
#include "registry-api/v1-input.h"

#define GC_WAIT_MAX_S 300U

typedef struct GcState {
        GcConfig *config;
        char config_error[512];
        Store *store;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t thread;
        bool thread_started;
        bool stop;
        unsigned async_runs;    /* POST runs in threads of their own, not yet out of gc_run() */
        int64_t next_run;       /* wall clock ns, 0 = none */
} GcState;

/* One registry per process: the state is static so it stays reachable until exit. */
static GcState state = { .lock = PTHREAD_MUTEX_INITIALIZER };
static bool state_init = false;

static GcState *gc_state(Registry *r) {
        pthread_mutex_lock(&state.lock);
        if (!state_init) {
                pthread_condattr_t ca;
                pthread_condattr_init(&ca);
                pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
                pthread_cond_init(&state.cond, &ca);
                pthread_condattr_destroy(&ca);
                state_init = true;
        }
        if (!state.config && !state.config_error[0]) {
                int k = gc_config_new(registry_config(r), &state.config, state.config_error, sizeof state.config_error);
                if (k < 0 && !state.config_error[0])
                        snprintf(state.config_error, sizeof state.config_error, "%s", strerror(-k));
                if (k < 0)
                        log_error("gc: invalid configuration: %s", state.config_error);
        }
        state.store = registry_store(r);
        pthread_mutex_unlock(&state.lock);
        return &state;
}

static int run_error(V1Response *resp, int k) {
        if (k == -EBUSY)
                return v1_error(resp, 409, "GC_RUNNING", NULL,
                                "a garbage collection is already running; only one runs at a time, retry when it has "
                                "finished (see GET /v1/registry/gc)");
        if (k == -EROFS)
                return v1_error(resp, 409, "READ_ONLY", NULL, "the store is read-only");
        if (k == -ECANCELED)
                return v1_error(resp, 503, "GC_CANCELLED", NULL, "the garbage collection was cancelled (server stopping)");
        return v1_error_errno(resp, k, "GC_FAILED", "garbage collection failed");
}

typedef struct AsyncRun {
        GcState *st;
        char *repo, *actor;
        bool dry_run;
        volatile bool done_early;
} AsyncRun;

static bool gc_state_stopping(GcState *st) {
        pthread_mutex_lock(&st->lock);
        bool stop = st->stop;
        pthread_mutex_unlock(&st->lock);
        return stop;
}

static void *async_thread(void *userdata) {
        AsyncRun *a = userdata;
        GcState *st = a->st;
        GcOptions o = { .repo = a->repo, .dry_run = a->dry_run, .actor = a->actor, .trigger = "api" };
        json_t *rep = NULL;
        int k = gc_state_stopping(st) ? -ECANCELED : gc_run(st->store, st->config, &o, &rep);
        if (k < 0)
                log_error_errno(k, "gc: background run failed: %m");
        json_decref(rep);
        pthread_mutex_lock(&st->lock);
        st->async_runs--;
        pthread_cond_broadcast(&st->cond);
        pthread_mutex_unlock(&st->lock);
        a->done_early = true;
        usleep(1100 * 1000); /* the handler may still be polling done_early */
        free(a->repo);
        free(a->actor);
        free(a);
        return NULL;
}

static int handle_post(Registry *r, const V1Request *req, V1Response *resp) {
        GcState *st = gc_state(r);
        if (!st->config)
                return v1_error(resp, 500, "GC_CONFIG_INVALID", NULL, "gc configuration: %s", st->config_error);
        if (req->path && !streq(req->path, "gc") && !streq(req->path, "gc/"))
                return v1_error(resp, 404, "NOT_FOUND", NULL, "unknown GC endpoint /v1/registry/%s", req->path);

        /* repo (a name or glob) and dry_run also as ?repo= and ?dry_run= */
        static const V1Field fields[] = {
                { "repo", V1_STRING, false },
                { "dry_run", V1_BOOL, false },
                { "wait", V1_BOOL, false },
        };
        if (!v1_query_valid(req, resp, "INVALID_REQUEST", (const char *const[]) { "repo", "dry_run", NULL }) ||
            !v1_body_valid(req, resp, "INVALID_REQUEST", fields, ELEMENTSOF(fields)))
                return 0;
        GcOptions o = { .actor = req->actor, .trigger = "api" };
        json_t *b = req->body;
        json_t *v = b ? json_object_get(b, "repo") : NULL;
        o.repo = v ? json_string_value(v) : v1_request_query(req, "repo");
        if (o.repo && !*o.repo)
                o.repo = NULL;
        v = b ? json_object_get(b, "dry_run") : NULL;
        if (v)
                o.dry_run = json_is_true(v);
        else if (!v1_query_bool(req, resp, "INVALID_REQUEST", "dry_run", &o.dry_run))
                return 0;
        v = b ? json_object_get(b, "wait") : NULL;
        bool wait = !v || json_is_true(v);
        if (gc_state_stopping(st))
                return v1_error(resp, 503, "GC_CANCELLED", NULL, "the server is stopping");
        if (!wait) {
                if (gc_is_running())
                        return run_error(resp, -EBUSY);
                AsyncRun *a = calloc(1, sizeof(AsyncRun));
                if (!a)
                        return v1_error(resp, 500, "INTERNAL_ERROR", NULL, "out of memory");
                a->st = st;
                a->repo = o.repo ? strdup(o.repo) : NULL;
                a->actor = strdup(req->actor ? req->actor : "gc");
                a->dry_run = o.dry_run;
                pthread_t t;
                pthread_attr_t attr;
                pthread_attr_init(&attr);
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                pthread_mutex_lock(&st->lock);
                st->async_runs++;
                int k = pthread_create(&t, &attr, async_thread, a);
                if (k != 0)
                        st->async_runs--;
                pthread_mutex_unlock(&st->lock);
                pthread_attr_destroy(&attr);
                if (k != 0) {
                        free(a->repo);
                        free(a->actor);
                        free(a);
                        return v1_error(resp, 500, "INTERNAL_ERROR", NULL, "cannot start the GC thread: %s", strerror(k));
                }
                /* wait until it has taken the GC lock, so that GET gc says running; a thread
                 * starts in tens of microseconds, and a 5 ms step here was a tenth of a 10k-blob
                 * run's time end to end */
                for (int i = 0; i < 5000 && !gc_is_running() && !a->done_early; i++)
                        usleep(200);
                resp->status = 202;
                resp->body = json_pack("{s:s, s:s}", "status", "started", "poll", "/v1/registry/gc");
                return 0;
        }

        json_t *rep = NULL;
        int k = gc_run(st->store, st->config, &o, &rep);
        if (k < 0)
                return run_error(resp, k);
        resp->status = 200;
        resp->body = rep;
        return 0;
}

static int handle_get(Registry *r, const V1Request *req, V1Response *resp) {
        GcState *st = gc_state(r);
        const char *sub = req->path ? startswith(req->path, "gc") : NULL;
        if (!sub)
                sub = "";
        if (*sub == '/')
                sub++;

        if (!v1_body_valid(req, resp, "INVALID_REQUEST", NULL, 0))
                return 0;
        if (streq(sub, "")) {
                uint64_t secs = 0;
                if (!v1_query_valid(req, resp, "INVALID_REQUEST", (const char *const[]) { "wait", NULL }) ||
                    !v1_query_uint(req, resp, "INVALID_REQUEST", "wait", 0, GC_WAIT_MAX_S, &secs))
                        return 0;
                if (secs > 0) {
                        uint64_t gen = registry_v1_wake_generation(r), now = clock_monotonic_ns();
                        uint64_t deadline = req->wait_deadline_ns ? req->wait_deadline_ns : now + secs * NSEC_PER_SEC;
                        if (gc_is_running() && now < deadline) {
                                resp->wait_until_ns = deadline;
                                resp->wait_generation = gen;
                                return 0;
                        }
                }
                json_t *o = json_pack("{s:b, s:s, s:I}", "running", gc_is_running(), "schedule",
                                      st->config ? json_string_value(json_object_get(config_section(registry_config(r), "gc"), "schedule")) ?: "" : "",
                                      "interval_seconds", (json_int_t) (st->config ? gc_config_schedule_ns(st->config) / (int64_t) NSEC_PER_SEC : 0));
                pthread_mutex_lock(&st->lock);
                int64_t next = st->next_run;
                pthread_mutex_unlock(&st->lock);
                if (next) {
                        char buf[32];
                        json_object_set_new(o, "next_run", json_string(format_timestamp(buf, sizeof buf, next)));
                }
                json_t *last = NULL;
                if (gc_report_last(st->store, &last) >= 0) {
                        json_object_set_new(o, "last", json_pack("{s:O?, s:O?, s:O?, s:O?}", "started", json_object_get(last, "started"),
                                                                 "dry_run", json_object_get(last, "dry_run"), "duration_seconds",
                                                                 json_object_get(last, "duration_seconds"), "totals",
                                                                 json_object_get(last, "totals")));
                        json_decref(last);
                }
                resp->body = o;
                return 0;
        }
        const char *rest = startswith(sub, "reports");
        if (!rest)
                return v1_error(resp, 404, "NOT_FOUND", NULL, "unknown GC endpoint /v1/registry/%s", req->path);
        if (*rest == 0 || streq(rest, "/")) {
                uint64_t limit = 20;
                if (!v1_query_valid(req, resp, "INVALID_REQUEST", (const char *const[]) { "limit", NULL }) ||
                    !v1_query_uint(req, resp, "INVALID_REQUEST", "limit", 1, 100000, &limit))
                        return 0;
                json_t *arr = NULL;
                int k = gc_reports_list(st->store, (size_t) limit, &arr);
                if (k < 0)
                        return v1_error(resp, 500, "INTERNAL_ERROR", NULL, "cannot list reports: %s", strerror(-k));
                resp->body = json_pack("{s:o}", "reports", arr);
                return 0;
        }
        rest++;
        if (!v1_query_valid(req, resp, "INVALID_REQUEST", NULL))
                return 0;
        json_t *rep = NULL;
        int k;
        if (streq(rest, "last"))
                k = gc_report_last(st->store, &rep);
        else {
                char *end;
                long long id = strtoll(rest, &end, 10);
                if (*end || id <= 0)
                        return v1_error(resp, 400, "INVALID_REQUEST", NULL, "report id: expected the numeric id of a report");
                json_t *all = NULL;
                k = gc_reports_list(st->store, 0, &all);
                if (k >= 0) {
                        k = -ENOENT;
                        size_t i;
                        json_t *x;
                        json_array_foreach(all, i, x)
                                if (json_integer_value(json_object_get(x, "id")) == id) {
                                        rep = json_incref(x);
                                        k = 0;
                                        break;
                                }
                        json_decref(all);
                }
        }
        if (k == -ENOENT)
                return v1_error(resp, 404, "NOT_FOUND", NULL, "no such GC report");
        if (k < 0)
                return v1_error(resp, 500, "INTERNAL_ERROR", NULL, "cannot read report: %s", strerror(-k));
        resp->body = rep;
        return 0;
}

static void wake_waiting(void *userdata) {
        registry_v1_wake(userdata);
}

void v1_gc_unregister(Registry *r) {
        (void) r;
        gc_set_finished_notify(NULL, NULL);
}

void v1_gc_register(Registry *r) {
        gc_set_finished_notify(wake_waiting, r);
        registry_v1_register(r, "POST", "gc", (V1Access) { "gc", V1_REPO_BODY }, handle_post);
        registry_v1_register(r, "GET", "gc", (V1Access) { "gc", V1_REPO_NONE }, handle_get);
        gc_metrics_init(registry_store(r), 30 * (int64_t) NSEC_PER_SEC);
}

/* ---- the schedule */

static void *scheduler_thread(void *userdata) {
        GcState *st = userdata;
        int64_t interval = gc_config_schedule_ns(st->config);
        uint64_t next_mono = clock_monotonic_ns() + (uint64_t) interval;
        pthread_mutex_lock(&st->lock);
        st->next_run = clock_now_ns() + interval;
        while (!st->stop) {
                uint64_t now = clock_monotonic_ns();
                if (now < next_mono) {
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        uint64_t wait = MIN(next_mono - now, (uint64_t) 3600 * NSEC_PER_SEC);
                        uint64_t ns = (uint64_t) ts.tv_nsec + wait % NSEC_PER_SEC;
                        ts.tv_sec += (time_t) (wait / NSEC_PER_SEC) + (time_t) (ns / NSEC_PER_SEC);
                        ts.tv_nsec = (long) (ns % NSEC_PER_SEC);
                        pthread_cond_timedwait(&st->cond, &st->lock, &ts);
                        continue;
                }
                pthread_mutex_unlock(&st->lock);
                GcOptions o = { .actor = "gc-schedule", .trigger = "schedule" };
                json_t *rep = NULL;
                int k = gc_run(st->store, st->config, &o, &rep);
                if (k == -EBUSY)
                        log_info("gc: scheduled run skipped, a GC is already running");
                else if (k < 0 && k != -ECANCELED)
                        log_error_errno(k, "gc: scheduled run failed: %m");
                json_decref(rep);
                pthread_mutex_lock(&st->lock);
                next_mono = clock_monotonic_ns() + (uint64_t) interval;
                st->next_run = clock_now_ns() + interval;
        }
        st->next_run = 0;
        pthread_mutex_unlock(&st->lock);
        return NULL;
}

int gc_scheduler_start(Registry *r) {
        GcState *st = gc_state(r);
        if (!st->config)
                return -EINVAL;
        if (gc_config_schedule_ns(st->config) <= 0 || store_is_read_only(st->store))
                return 0;
        pthread_mutex_lock(&st->lock);
        st->stop = false;
        pthread_mutex_unlock(&st->lock);
        int k = pthread_create(&st->thread, NULL, scheduler_thread, st);
        if (k != 0)
                return -k;
        st->thread_started = true;
        log_info("gc: scheduled every %s", json_string_value(json_object_get(config_section(registry_config(r), "gc"), "schedule")));
        return 0;
}

void gc_scheduler_stop(Registry *r) {
        GcState *st = &state;
        if (!state_init)
                return;
        pthread_mutex_lock(&st->lock);
        st->stop = true;
        pthread_cond_broadcast(&st->cond);
        pthread_mutex_unlock(&st->lock);
        if (gc_is_running())
                gc_cancel(); /* prompt shutdown: the run stops at its next step */
        if (st->thread_started) {
                pthread_join(st->thread, NULL);
                st->thread_started = false;
        }
        /* runs started by POST (threads of their own) must be out of the store before it closes;
         * none starts once stop is set */
        pthread_mutex_lock(&st->lock);
        while (st->async_runs > 0) {
                pthread_mutex_unlock(&st->lock);
                gc_cancel();
                gc_wait_idle();
                pthread_mutex_lock(&st->lock);
                if (st->async_runs > 0)
                        pthread_cond_wait(&st->cond, &st->lock);
        }
        pthread_mutex_unlock(&st->lock);
        gc_wait_idle();
        gc_metrics_done();
}
