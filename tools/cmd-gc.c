/* SPDX-License-Identifier: MIT */
/* plura reg gc (client of POST /v1/registry/gc) and the options it shares with the offline
 * plura gc (cmd-gc-offline.c). Both print the same human table, or the report JSON with --json.
 * Part of the client binary: nothing here opens a store. */
#include <getopt.h>
#include <stdio.h>

#include "common/log.h"
#include "common/util.h"
#include "gc/gc.h"
#include "http-client.h"
#include "plura.h"

enum { OPT_REPO = 0x100, OPT_DRY_RUN, OPT_JSON, OPT_REPORTS, OPT_LAST, OPT_IF_IDLE };

/* plura reg gc's exit status when the server already runs a GC (409 GC_RUNNING): not a failure of
 * the run asked for, which a scheduler may treat as success (systemd SuccessExitStatus=, or
 * --if-idle, which exits 0 then: a Kubernetes Job has no list of successful exit statuses). */
#define REG_GC_EXIT_RUNNING 3

static void gc_help(FILE *f) {
        fputs("Usage: plura gc [-c FILE] [--data DIR] [--repo R] [--dry-run] [--json]\n"
              "\n"
              "Offline garbage collection of a stopped server's store (the same run as POST /v1/registry/gc:\n"
              "retention plan, mark, sweep, reconcile; the report is stored in the index). With a running\n"
              "server use 'plura reg gc' instead.\n"
              "  --repo R     restrict the retention plan (and the blobs swept) to repositories matching R\n"
              "               (a name or a glob like 'apps/**')\n"
              "  --dry-run    evaluate and print the plan with the bytes it would free; change nothing\n"
              "  --json       print the report as JSON\n"
              "Exit status: 0 done (the report lists per-item errors), 1 failed, 2 usage or configuration error.\n", f);
}

static void reg_gc_help(FILE *f) {
        fputs("Usage: plura reg gc [--repo R] [--dry-run] [--if-idle] [--json] [--url URL] [--actor NAME] [--ca FILE|--insecure]\n"
              "       plura reg gc --reports [--json]      stored reports (newest first)\n"
              "       plura reg gc --last [--json]         the last stored report in full\n"
              "\n"
              "Runs (or, with --dry-run, plans) garbage collection on a running server and prints the\n"
              "report: what was deleted by which retention rule and the bytes reclaimed per repository.\n"
              "  --if-idle    when the server already runs a GC, say so and exit 0 (for schedulers)\n"
              "Exit status: 0 done, 1 refused or failed, 2 usage, 3 a GC is already running (409 GC_RUNNING;\n"
              "0 with --if-idle): nothing was started.\n", f);
}

int gc_cli_parse(int argc, char **argv, GcCliOptions *o, bool offline) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' }, { "data", required_argument, NULL, 'd' },
                { "repo", required_argument, NULL, OPT_REPO }, { "dry-run", no_argument, NULL, OPT_DRY_RUN },
                { "json", no_argument, NULL, OPT_JSON },     { "reports", no_argument, NULL, OPT_REPORTS },
                { "last", no_argument, NULL, OPT_LAST },     { "if-idle", no_argument, NULL, OPT_IF_IDLE },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        void (*help)(FILE *) = offline ? gc_help : reg_gc_help;
        argc = http_client_options_take(argc, argv, &o->http);
        if (argc < 0)
                return -2;
        int c;
        optind = 0;
        while ((c = getopt_long(argc, argv, "c:d:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        o->config = optarg;
                        break;
                case 'd':
                        o->data = optarg;
                        break;
                case OPT_REPO:
                        o->repo = optarg;
                        break;
                case OPT_DRY_RUN:
                        o->dry_run = true;
                        break;
                case OPT_JSON:
                        o->json = true;
                        break;
                case OPT_REPORTS:
                        o->reports = true;
                        break;
                case OPT_LAST:
                        o->last = true;
                        break;
                case OPT_IF_IDLE:
                        o->if_idle = true;
                        break;
                case 'h':
                        help(stdout);
                        return 0;
                default:
                        help(stderr);
                        return -2;
                }
        if (optind < argc) {
                fprintf(stderr, "plura %sgc: unexpected argument '%s'\n", offline ? "" : "reg ", argv[optind]);
                help(stderr);
                return -2;
        }
        if (offline && (o->http.url || o->http.ca || o->http.insecure || o->reports || o->last || o->if_idle)) {
                fprintf(stderr, "plura gc: --url/--ca/--insecure/--reports/--last/--if-idle belong to 'plura reg gc'\n");
                return -2;
        }
        if (!offline && (o->config || o->data)) {
                fprintf(stderr, "plura reg gc: -c/--data belong to the offline 'plura gc'\n");
                return -2;
        }
        return 1;
}

void gc_cli_print_json(json_t *j) {
        json_dumpf(j, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
}

/* 409 with the code GC_RUNNING: the other 409 (READ_ONLY) is a failure */
static bool gc_running_error(const HttpResult *res) {
        json_t *e = json_array_get(json_object_get(res->body, "errors"), 0);
        return streq_ptr(json_string_value(json_object_get(e, "code")), "GC_RUNNING");
}

int reg_gc(int argc, char **argv) {
        GcCliOptions o = {};
        int r = gc_cli_parse(argc, argv, &o, false);
        if (r <= 0)
                return r == 0 ? 0 : 2;
        HttpResult res = {};
        if (o.reports || o.last) {
                r = http_json_request(&o.http, "GET", o.last ? "/v1/registry/gc/reports/last" : "/v1/registry/gc/reports?limit=100",
                                      NULL, &res);
                if (r < 0 || res.status != 200) {
                        http_print_error("plura reg gc", &res);
                        http_result_done(&res);
                        return 1;
                }
                if (o.json)
                        gc_cli_print_json(res.body);
                else if (o.last)
                        gc_report_print(stdout, res.body);
                else {
                        json_t *arr = json_object_get(res.body, "reports");
                        size_t i;
                        json_t *v;
                        printf("%-22s %-8s %-10s %9s %6s %9s %7s %11s\n", "STARTED", "MODE", "TRIGGER", "SECONDS", "TAGS",
                               "MANIFESTS", "BLOBS", "RECLAIMED");
                        json_array_foreach(arr, i, v) {
                                json_t *t = json_object_get(v, "totals");
                                char b[32];
                                printf("%-22s %-8s %-10s %9.3f %6" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT " %7" JSON_INTEGER_FORMAT
                                       " %11s\n",
                                       strempty(json_string_value(json_object_get(v, "started"))),
                                       json_is_true(json_object_get(v, "dry_run")) ? "dry-run" : "run",
                                       strempty(json_string_value(json_object_get(v, "trigger"))),
                                       json_number_value(json_object_get(v, "duration_seconds")),
                                       json_integer_value(json_object_get(t, "tags_deleted")),
                                       json_integer_value(json_object_get(t, "manifests_deleted")),
                                       json_integer_value(json_object_get(t, "blobs_deleted")),
                                       format_bytes(b, sizeof b, (uint64_t) json_integer_value(json_object_get(t, "bytes_disk"))));
                        }
                }
                http_result_done(&res);
                return 0;
        }
        /* real runs in the background on the server (202), so a long GC does not pin one of its
         * HTTP worker threads; then wait for its end with long polls (GET gc?wait=N, answered
         * when the run ends) and fetch the stored report. Dry runs answer at once. */
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:b, s:b}", "dry_run", o.dry_run, "wait", o.dry_run);
        if (o.repo)
                json_object_set_new(body, "repo", json_string(o.repo));
        r = http_json_request(&o.http, "POST", "/v1/registry/gc", body, &res);
        if (r >= 0 && res.status == 202) {
                /* Polling every 2 ms instead cost a tenth of the CPU of a 10k-blob run on 2 cores.
                 * A server that answers the 30 s long poll well before its time while the run
                 * goes on (one older than ?wait) is polled every 10 ms, backing off to 250 ms. */
                unsigned sleep_ms = 10;
                for (;;) {
                        http_result_done(&res);
                        res = (HttpResult) {};
                        uint64_t t0 = clock_monotonic_ns();
                        r = http_json_request(&o.http, "GET", "/v1/registry/gc?wait=30", NULL, &res);
                        if (r < 0 || res.status != 200)
                                break;
                        if (!json_is_true(json_object_get(res.body, "running")))
                                break;
                        if (clock_monotonic_ns() - t0 < 15 * NSEC_PER_SEC) {
                                usleep(sleep_ms * 1000);
                                sleep_ms = MIN(sleep_ms * 2, 250U);
                        }
                }
                if (r >= 0 && res.status == 200) {
                        http_result_done(&res);
                        res = (HttpResult) {};
                        r = http_json_request(&o.http, "GET", "/v1/registry/gc/reports/last", NULL, &res);
                }
        }
        if (r >= 0 && res.status == 409 && gc_running_error(&res)) {
                if (o.if_idle)
                        fprintf(stderr, "plura reg gc: a garbage collection is already running on the server; "
                                        "nothing started (--if-idle)\n");
                else
                        http_print_error("plura reg gc", &res);
                http_result_done(&res);
                return o.if_idle ? 0 : REG_GC_EXIT_RUNNING;
        }
        if (r < 0 || res.status != 200 || !res.body) {
                http_print_error("plura reg gc", &res);
                http_result_done(&res);
                return 1;
        }
        if (o.json)
                gc_cli_print_json(res.body);
        else
                gc_report_print(stdout, res.body);
        http_result_done(&res);
        return 0;
}
