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
 * Parse, call the Gc (gc/gc.h: the run, its background thread, the schedule), format the answer.
 * The Gc hangs off the registry (its feature state "gc"); shutdown stops it, cancelling a run. */
#include <errno.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/util.h"
#include "gc/gc.h"
#include "registry-api/v1.h"
#include "registry-api/v1-input.h"

#define GC_WAIT_MAX_S 300U

/* The registry's GC, or why there is none (an invalid gc section: every POST says so). */
static int run_error(V1Response *resp, int k) {
        if (k == -EBUSY)
                return v1_error(resp, 409, "GC_RUNNING", NULL,
                                "a garbage collection is already running; only one runs at a time, retry when it has "
                                "finished (see GET /v1/registry/gc)");
        if (k == -EROFS)
                return v1_error(resp, 409, "READ_ONLY", NULL, "the store is read-only");
        if (k == -ESHUTDOWN)
                return v1_error(resp, 503, "GC_CANCELLED", NULL, "the server is stopping");
        if (k == -ECANCELED)
                return v1_error(resp, 503, "GC_CANCELLED", NULL, "the garbage collection was cancelled (server stopping)");
        return v1_error_errno(resp, k, "GC_FAILED", "garbage collection failed");
}

static int handle_post(Registry *r, const V1Request *req, V1Response *resp) {
        Gc *g = registry_gc(r);
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
        json_t *f = b ? json_object_get(b, "repo") : NULL;
        o.repo = f ? json_string_value(f) : v1_request_query(req, "repo");
        if (o.repo && !*o.repo)
                o.repo = NULL;
        f = b ? json_object_get(b, "dry_run") : NULL;
        if (f)
                o.dry_run = json_is_true(f);
        else if (!v1_query_bool(req, resp, "INVALID_REQUEST", "dry_run", &o.dry_run))
                return 0;
        f = b ? json_object_get(b, "wait") : NULL;
        bool wait = !f || json_is_true(f);
        if (!wait) {
                /* the Gc's own thread; GET gc says running from the moment this returns */
                if (!o.actor)
                        o.actor = "gc";
                int k = gc_start(g, &o);
                if (k < 0 && k != -EBUSY && k != -ESHUTDOWN && k != -ENOMEM)
                        return v1_error(resp, 500, "INTERNAL_ERROR", NULL, "cannot start the GC thread: %s", strerror(-k));
                if (k == -ENOMEM)
                        return v1_error(resp, 500, "INTERNAL_ERROR", NULL, "out of memory");
                if (k < 0)
                        return run_error(resp, k);
                resp->status = 202;
                resp->body = json_pack("{s:s, s:s}", "status", "started", "poll", "/v1/registry/gc");
                return 0;
        }

        json_t *rep = NULL;
        int k = gc_run(g, &o, &rep);
        if (k < 0)
                return run_error(resp, k);
        resp->status = 200;
        resp->body = rep;
        return 0;
}

static int handle_get(Registry *r, const V1Request *req, V1Response *resp) {
        Gc *g = registry_gc(r);
        Store *store = registry_store(r);
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
                uint64_t gen = registry_v1_wake_generation(r); /* before looking: a wake after it is not lost */
                bool running = gc_is_running(g);
                if (secs > 0) {
                        uint64_t now = clock_monotonic_ns();
                        uint64_t deadline = req->wait_deadline_ns ? req->wait_deadline_ns : now + secs * NSEC_PER_SEC;
                        if (running && now < deadline) {
                                resp->wait_until_ns = deadline;
                                resp->wait_generation = gen;
                                return 0;
                        }
                }
                json_t *o = json_pack("{s:b, s:s, s:I}", "running", running, "schedule", gc_config_schedule(gc_config(g)),
                                      "interval_seconds", (json_int_t) (gc_config_schedule_ns(gc_config(g)) / (int64_t) NSEC_PER_SEC));
                int64_t next = gc_scheduler_next_run(g);
                if (next) {
                        char buf[32];
                        json_object_set_new(o, "next_run", json_string(format_timestamp(buf, sizeof buf, next)));
                }
                json_t *last = NULL;
                if (gc_report_last(store, &last) >= 0) {
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
                int k = gc_reports_list(store, (size_t) limit, &arr);
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
                k = gc_report_last(store, &rep);
        else {
                char *end;
                long long id = strtoll(rest, &end, 10);
                if (*end || id <= 0)
                        return v1_error(resp, 400, "INVALID_REQUEST", NULL, "report id: expected the numeric id of a report");
                json_t *all = NULL;
                k = gc_reports_list(store, 0, &all);
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

void v1_gc_register(Registry *r) {
        registry_v1_register(r, "POST", "gc", (V1Access) { "gc", V1_REPO_BODY }, handle_post);
        registry_v1_register(r, "GET", "gc", (V1Access) { "gc", V1_REPO_NONE }, handle_get);
        gc_set_finished_notify(registry_gc(r), wake_waiting, r);
}

void v1_gc_unregister(Registry *r) {
        gc_set_finished_notify(registry_gc(r), NULL, NULL); /* no call is in progress once it returns */
}
