/* SPDX-License-Identifier: MIT */
/* plura reg promote|rollback|block|unblock|history|metrics|audit|tags: a thin client of the
 * server's /v1/registry governance API. Human output by default, --json for the server's JSON.
 * Exit status: 0 done, 1 refused or failed (with the server's reason on stderr), 2 usage. */

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "common/log.h"
#include "common/util.h"
#include "http-client.h"
#include "plura.h"

typedef struct Opts {
        HttpClientOptions http;
        bool json;
} Opts;

static char *urlencode(const char *s) {
        return http_url_escape(s);
}

static void print_json(json_t *j) {
        _cleanup_free_ char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (s)
                printf("%s\n", s);
}

static const char *jstr(json_t *o, const char *k) {
        return json_string_value(json_object_get(o, k));
}

/* Times come as RFC 3339 strings or integer ns. */
static const char *jtime(json_t *o, const char *k, char *buf, size_t n) {
        json_t *v = json_object_get(o, k);
        if (json_is_string(v))
                return json_string_value(v);
        if (json_is_integer(v))
                return format_timestamp(buf, n, json_integer_value(v));
        return "-";
}

/* Runs a request; on a non-2xx answer prints the server's reason and returns 1. */
static int request(const Opts *o, const char *what, const char *method, const char *path, json_t *body, HttpResult *res) {
        int r = http_json_request(&o->http, method, path, body, res);
        if (r < 0 || res->status < 200 || res->status >= 300) {
                http_print_error(what, res);
                return 1;
        }
        return 0;
}

static void usage(FILE *f, const char *verb) {
        fprintf(f,
                "Usage:\n"
                "  plura reg promote REPO FROM TO DIGEST      FROM/TO: repo, dev, stg, prod:candidate, prod:stable\n"
                "  plura reg rollback REPO TO                 TO = prod:stable or prod:stable@sha256:...\n"
                "  plura reg block DIGEST --reason TEXT [--cve ID]... [--severity S]\n"
                "  plura reg block --import REPORT.json --threshold critical=0,high=3 [--digest D] [--dry-run]\n"
                "  plura reg block --list\n"
                "  plura reg unblock DIGEST\n"
                "  plura reg history REPO [TAG]\n"
                "  plura reg metrics [--repo REPO]\n"
                "  plura reg audit [--limit N] [--cursor C] [--action A] [--target T] [--all]\n"
                "  plura reg tags REPO\n"
                "Common options: " HTTP_CLIENT_OPTIONS_HELP ", --json\n");
        (void) verb;
}

/* ------------------------------------------------------------------ promote / rollback */

static void print_state(json_t *state) {
        const char *k;
        json_t *v;
        json_object_foreach(state, k, v)
                printf("  %-16s %s\n", k, json_is_string(v) ? json_string_value(v) : "-");
}

static int do_promote(const Opts *o, char **args, int n) {
        if (n != 4) {
                usage(stderr, "promote");
                return 2;
        }
        json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "repo", args[0], "from", args[1], "to", args[2], "digest", args[3]);
        HttpResult res;
        int r = request(o, "promote", "POST", "/v1/registry/promote", body, &res);
        json_decref(body);
        if (r == 0) {
                if (o->json)
                        print_json(res.body);
                else {
                        json_t *b = res.body;
                        if (json_is_false(json_object_get(b, "changed")))
                                printf("%s is already at %s of %s\n", jstr(b, "digest"), jstr(b, "to"), jstr(b, "svc"));
                        else {
                                printf("promoted %s to %s\n", jstr(b, "digest"), jstr(b, "reference"));
                                printf("  previous: %s\n", jstr(b, "previous") ? jstr(b, "previous") : "-");
                                _cleanup_free_ char *g = json_dumps(json_object_get(b, "gates_passed"), JSON_COMPACT);
                                printf("  gates passed: %s\n", g ? g : "[]");
                        }
                        printf("channels of %s:\n", jstr(b, "svc"));
                        print_state(json_object_get(b, "state"));
                }
        } else if (o->json && res.body)
                print_json(res.body);
        http_result_done(&res);
        return r;
}

static int do_rollback(const Opts *o, char **args, int n) {
        if (n != 2) {
                usage(stderr, "rollback");
                return 2;
        }
        json_t *body = json_pack("{s:s, s:s}", "repo", args[0], "to", args[1]);
        HttpResult res;
        int r = request(o, "rollback", "POST", "/v1/registry/rollback", body, &res);
        json_decref(body);
        if (r == 0) {
                if (o->json)
                        print_json(res.body);
                else {
                        json_t *b = res.body;
                        printf("rolled back %s to %s (was %s) in %.2f ms\n", jstr(b, "reference"), jstr(b, "digest"),
                               jstr(b, "previous"), json_number_value(json_object_get(b, "duration_ms")));
                }
        } else if (o->json && res.body)
                print_json(res.body);
        http_result_done(&res);
        return r;
}

/* ------------------------------------------------------------------ block */

static const char *const severities[] = { "critical", "high", "medium", "low", "unknown" };

static int severity_index(const char *s) {
        if (!s)
                return 4;
        for (size_t i = 0; i < ELEMENTSOF(severities); i++)
                if (strcasecmp(s, severities[i]) == 0)
                        return (int) i;
        if (strcasecmp(s, "negligible") == 0)
                return 3;
        return 4;
}

static int parse_threshold(const char *s, long max[5]) {
        for (size_t i = 0; i < 5; i++)
                max[i] = -1; /* no limit */
        _cleanup_free_ char *c = strdup(s);
        if (!c)
                return -ENOMEM;
        char *save = NULL;
        for (char *t = strtok_r(c, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(t, '=');
                if (!eq)
                        return -EINVAL;
                *eq = 0;
                int idx = -1;
                for (size_t i = 0; i < ELEMENTSOF(severities); i++)
                        if (strcasecmp(t, severities[i]) == 0)
                                idx = (int) i;
                char *end;
                long v = strtol(eq + 1, &end, 10);
                if (idx < 0 || *end || end == eq + 1 || v < 0)
                        return -EINVAL;
                max[idx] = v;
        }
        return 0;
}

static void add_finding(json_t *ids[5], const char *sev, const char *id) {
        int i = severity_index(sev);
        if (id && !json_object_get(ids[i], id))
                json_object_set_new(ids[i], id, json_true());
}

/* Trivy: Results[].Vulnerabilities[].{VulnerabilityID, Severity}; digest from Metadata.RepoDigests.
 * Grype: matches[].vulnerability.{id, severity}; digest from source.target.manifestDigest. */
static int scan_report(json_t *rep, const char **ret_format, json_t *ids[5], char **ret_digest) {
        *ret_digest = NULL;
        json_t *results = json_object_get(rep, "Results");
        json_t *matches = json_object_get(rep, "matches");
        size_t i, j;
        json_t *v, *w;
        if (json_is_array(results)) {
                *ret_format = "trivy";
                json_array_foreach(results, i, v)
                        json_array_foreach(json_object_get(v, "Vulnerabilities"), j, w)
                                add_finding(ids, jstr(w, "Severity"), jstr(w, "VulnerabilityID"));
                json_array_foreach(json_object_get(json_object_get(rep, "Metadata"), "RepoDigests"), i, v) {
                        const char *at = json_is_string(v) ? strchr(json_string_value(v), '@') : NULL;
                        if (at && !*ret_digest)
                                *ret_digest = strdup(at + 1);
                }
                return 0;
        }
        if (json_is_array(matches)) {
                *ret_format = "grype";
                json_array_foreach(matches, i, v) {
                        json_t *vu = json_object_get(v, "vulnerability");
                        add_finding(ids, jstr(vu, "severity"), jstr(vu, "id"));
                }
                json_t *target = json_object_get(json_object_get(rep, "source"), "target");
                const char *md = jstr(target, "manifestDigest");
                if (md)
                        *ret_digest = strdup(md);
                return 0;
        }
        return -EINVAL;
}

static int do_block_import(const Opts *o, const char *path, const char *threshold, const char *digest,
                           const char *reason, bool dry_run) {
        json_error_t je;
        _cleanup_(json_decrefp) json_t *rep = json_load_file(path, 0, &je);
        if (!rep) {
                fprintf(stderr, "plura reg block: %s:%d: %s\n", path, je.line, je.text);
                return 1;
        }
        long max[5];
        if (parse_threshold(threshold ? threshold : "critical=0,high=0", max) < 0) {
                fprintf(stderr, "plura reg block: --threshold: expected SEVERITY=N[,...] with SEVERITY one of critical, high, medium, low, unknown\n");
                return 2;
        }
        json_t *ids[5];
        for (size_t i = 0; i < 5; i++)
                ids[i] = json_object();
        const char *format = NULL;
        _cleanup_free_ char *report_digest = NULL;
        int r = scan_report(rep, &format, ids, &report_digest);
        int ret = 1;
        if (r < 0) {
                fprintf(stderr, "plura reg block: %s is neither a Trivy (Results[]) nor a Grype (matches[]) JSON report\n", path);
                goto out;
        }
        if (!digest)
                digest = report_digest;
        if (!digest) {
                fprintf(stderr, "plura reg block: no --digest given and the report names no image digest\n");
                ret = 2;
                goto out;
        }
        char why[512] = "";
        size_t wl = 0;
        bool over = false;
        json_t *counts = json_object(), *cves = json_array();
        for (size_t i = 0; i < 5; i++) {
                size_t n = json_object_size(ids[i]);
                json_object_set_new(counts, severities[i], json_integer((json_int_t) n));
                if (max[i] >= 0 && (long) n > max[i]) {
                        over = true;
                        wl += (size_t) snprintf(why + wl, sizeof(why) - MIN(wl, sizeof(why)), "%s%s %zu > %ld", wl ? ", " : "",
                                                severities[i], n, max[i]);
                        const char *id;
                        json_t *x;
                        json_object_foreach(ids[i], id, x)
                                json_array_append_new(cves, json_string(id));
                }
        }
        if (!over) {
                if (o->json) {
                        json_t *j = json_pack("{s:s, s:s, s:b, s:O}", "digest", digest, "format", format, "blocked", false,
                                              "counts", counts);
                        print_json(j);
                        json_decref(j);
                } else {
                        _cleanup_free_ char *c = json_dumps(counts, JSON_COMPACT);
                        printf("%s: within the threshold %s (%s report: %s); not blocked\n", digest,
                               threshold ? threshold : "critical=0,high=0", format, c ? c : "");
                }
                ret = 0;
                json_decref(counts);
                json_decref(cves);
                goto out;
        }
        char full_reason[1024];
        snprintf(full_reason, sizeof(full_reason), "%s%s%s report %s over threshold %s: %s", reason ? reason : "",
                 reason ? "; " : "", format, path, threshold ? threshold : "critical=0,high=0", why);
        if (dry_run) {
                printf("would block %s: %s\n", digest, full_reason);
                json_decref(counts);
                json_decref(cves);
                ret = 0;
                goto out;
        }
        const char *top = "unknown";
        for (size_t i = 0; i < 5; i++)
                if (json_object_size(ids[i]) > 0) {
                        top = severities[i];
                        break;
                }
        json_t *body = json_pack("{s:s, s:s, s:o, s:s, s:o, s:{s:s, s:s}}", "digest", digest, "reason", full_reason, "cves",
                                 cves, "severity", top, "counts", counts, "source", "format", format, "report", path);
        HttpResult res;
        ret = request(o, "block", "POST", "/v1/registry/block", body, &res);
        json_decref(body);
        if (ret == 0) {
                if (o->json)
                        print_json(res.body);
                else
                        printf("blocked %s: %s\n", digest, full_reason);
        }
        http_result_done(&res);
out:
        for (size_t i = 0; i < 5; i++)
                json_decref(ids[i]);
        return ret;
}

static int do_block(const Opts *o, int argc, char **argv) {
        static const struct option longopts[] = {
                { "reason", required_argument, NULL, 'r' }, { "cve", required_argument, NULL, 'c' },
                { "severity", required_argument, NULL, 's' }, { "import", required_argument, NULL, 'i' },
                { "threshold", required_argument, NULL, 't' }, { "digest", required_argument, NULL, 'd' },
                { "dry-run", no_argument, NULL, 'n' }, { "list", no_argument, NULL, 'l' }, {},
        };
        const char *reason = NULL, *severity = NULL, *import = NULL, *threshold = NULL, *digest = NULL;
        bool dry_run = false, list = false;
        _cleanup_(json_decrefp) json_t *cves = json_array();
        int c;
        optind = 0;
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0)
                switch (c) {
                case 'r': reason = optarg; break;
                case 'c': json_array_append_new(cves, json_string(optarg)); break;
                case 's': severity = optarg; break;
                case 'i': import = optarg; break;
                case 't': threshold = optarg; break;
                case 'd': digest = optarg; break;
                case 'n': dry_run = true; break;
                case 'l': list = true; break;
                default: usage(stderr, "block"); return 2;
                }
        if (optind < argc && !digest)
                digest = argv[optind++];
        if (list) {
                HttpResult res;
                int r = request(o, "block", "GET", "/v1/registry/block", NULL, &res);
                if (r == 0) {
                        if (o->json)
                                print_json(res.body);
                        else {
                                size_t i;
                                json_t *b;
                                char tb[64];
                                json_array_foreach(json_object_get(res.body, "blocked"), i, b)
                                        printf("%s  %s  %s  %s\n", jstr(b, "digest"), jtime(b, "time", tb, sizeof(tb)),
                                               jstr(b, "actor") ? jstr(b, "actor") : "-", jstr(b, "reason") ? jstr(b, "reason") : "");
                        }
                }
                http_result_done(&res);
                return r;
        }
        if (import)
                return do_block_import(o, import, threshold, digest, reason, dry_run);
        if (!digest || !reason) {
                fprintf(stderr, "plura reg block: a DIGEST and --reason are needed (or --import REPORT)\n");
                return 2;
        }
        json_t *body = json_pack("{s:s, s:s, s:O}", "digest", digest, "reason", reason, "cves", cves);
        if (severity)
                json_object_set_new(body, "severity", json_string(severity));
        HttpResult res;
        int r = request(o, "block", "POST", "/v1/registry/block", body, &res);
        json_decref(body);
        if (r == 0) {
                if (o->json)
                        print_json(res.body);
                else
                        printf("blocked %s: %s\n", digest, reason);
        }
        http_result_done(&res);
        return r;
}

static int do_unblock(const Opts *o, char **args, int n) {
        if (n != 1) {
                usage(stderr, "unblock");
                return 2;
        }
        _cleanup_free_ char *path = strdup_printf("/v1/registry/block/%s", args[0]);
        HttpResult res;
        int r = request(o, "unblock", "DELETE", path, NULL, &res);
        if (r == 0) {
                if (o->json)
                        print_json(res.body);
                else
                        printf("unblocked %s\n", args[0]);
        }
        http_result_done(&res);
        return r;
}

/* ------------------------------------------------------------------ history, audit, metrics, tags */

static int do_history(const Opts *o, char **args, int n) {
        if (n < 1 || n > 2) {
                usage(stderr, "history");
                return 2;
        }
        _cleanup_free_ char *er = urlencode(args[0]);
        _cleanup_free_ char *et = n > 1 ? urlencode(args[1]) : NULL;
        _cleanup_free_ char *path = strdup_printf("/v1/registry/history?repo=%s%s%s", er, et ? "&tag=" : "", et ? et : "");
        HttpResult res;
        int r = request(o, "history", "GET", path, NULL, &res);
        if (r == 0) {
                if (o->json)
                        print_json(res.body);
                else {
                        json_t *b = res.body;
                        const char *k;
                        json_t *arr, *e;
                        size_t i;
                        char tb[64];
                        printf("tags of %s:\n", jstr(b, "repo"));
                        if (json_object_size(json_object_get(b, "tags")) == 0)
                                printf("  (none)\n");
                        json_object_foreach(json_object_get(b, "tags"), k, arr) {
                                printf("  %s\n", k);
                                json_array_foreach(arr, i, e)
                                        printf("    %-30s %-7s %s  %s\n", jtime(e, "time", tb, sizeof(tb)), strna(jstr(e, "action")),
                                               strna(jstr(e, "digest")), strna(jstr(e, "actor")));
                        }
                        printf("channels of %s:\n", jstr(b, "svc"));
                        if (json_object_size(json_object_get(b, "channels")) == 0)
                                printf("  (none)\n");
                        json_t *ch;
                        json_object_foreach(json_object_get(b, "channels"), k, ch) {
                                printf("  %s -> %s\n", k, jstr(ch, "current") ? jstr(ch, "current") : "-");
                                json_array_foreach(json_object_get(ch, "history"), i, e)
                                        printf("    %-30s %-8s %s  %s%s%s\n", jtime(e, "time", tb, sizeof(tb)), strna(jstr(e, "action")),
                                               strna(jstr(e, "digest")), strna(jstr(e, "actor")), jstr(e, "previous") ? "  previous " : "",
                                               jstr(e, "previous") ? jstr(e, "previous") : "");
                        }
                }
        }
        http_result_done(&res);
        return r;
}

static int do_audit(const Opts *o, int argc, char **argv) {
        static const struct option longopts[] = {
                { "limit", required_argument, NULL, 'l' }, { "cursor", required_argument, NULL, 'c' },
                { "after", required_argument, NULL, 'c' }, { "action", required_argument, NULL, 'a' },
                { "target", required_argument, NULL, 't' }, { "all", no_argument, NULL, 'A' }, {},
        };
        const char *limit = "100", *action = NULL, *target = NULL;
        _cleanup_free_ char *cursor = NULL;
        bool all = false;
        int c;
        optind = 0;
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0)
                switch (c) {
                case 'l': limit = optarg; break;
                case 'c': cursor = strdup(optarg); break;
                case 'a': action = optarg; break;
                case 't': target = optarg; break;
                case 'A': all = true; break;
                default: usage(stderr, "audit"); return 2;
                }
        _cleanup_(json_decrefp) json_t *collected = json_array();
        for (;;) {
                _cleanup_free_ char *ea = action ? urlencode(action) : NULL, *et = target ? urlencode(target) : NULL;
                _cleanup_free_ char *path = strdup_printf("/v1/registry/audit?limit=%s%s%s%s%s%s%s", limit,
                                                          cursor ? "&cursor=" : "", cursor ? cursor : "", ea ? "&action=" : "",
                                                          ea ? ea : "", et ? "&target=" : "", et ? et : "");
                HttpResult res;
                int r = request(o, "audit", "GET", path, NULL, &res);
                if (r != 0) {
                        http_result_done(&res);
                        return r;
                }
                json_t *ev = json_object_get(res.body, "events");
                size_t i;
                json_t *e;
                char tb[64];
                json_array_foreach(ev, i, e) {
                        if (o->json)
                                json_array_append(collected, e);
                        else {
                                _cleanup_free_ char *d = json_object_get(e, "detail") ? json_dumps(json_object_get(e, "detail"), JSON_COMPACT) : NULL;
                                printf("%s  %-12s %-18s %-8s %s%s%s\n", jtime(e, "time", tb, sizeof(tb)), strna(jstr(e, "actor")),
                                       strna(jstr(e, "action")), strna(jstr(e, "result")), strna(jstr(e, "target")), d ? "  " : "",
                                       d ? d : "");
                        }
                }
                const char *next = jstr(res.body, "next_cursor");
                free(cursor);
                cursor = next ? strdup(next) : NULL;
                http_result_done(&res);
                if (!all || !cursor)
                        break;
        }
        if (o->json) {
                json_t *j = json_pack("{s:O, s:o}", "events", collected, "next_cursor", cursor ? json_string(cursor) : json_null());
                print_json(j);
                json_decref(j);
        } else if (cursor)
                printf("# more: plura reg audit --cursor %s\n", cursor);
        return 0;
}

static void print_dist(const char *name, json_t *d) {
        json_t *p95 = json_object_get(d, "p95_seconds");
        if (json_is_number(p95))
                printf("%-24s count %" JSON_INTEGER_FORMAT ", p50 %.3fs, p95 %.3fs, max %.3fs\n", name,
                       json_integer_value(json_object_get(d, "count")), json_number_value(json_object_get(d, "p50_seconds")),
                       json_number_value(p95), json_number_value(json_object_get(d, "max_seconds")));
        else
                printf("%-24s no data\n", name);
}

static int do_metrics(const Opts *o, int argc, char **argv) {
        static const struct option longopts[] = { { "repo", required_argument, NULL, 'r' }, {} };
        const char *repo = NULL;
        int c;
        optind = 0;
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0)
                switch (c) {
                case 'r': repo = optarg; break;
                default: usage(stderr, "metrics"); return 2;
                }
        if (!repo && optind < argc)
                repo = argv[optind];
        _cleanup_free_ char *er = repo ? urlencode(repo) : NULL;
        _cleanup_free_ char *path = strdup_printf("/v1/registry/metrics%s%s", er ? "?repo=" : "", er ? er : "");
        HttpResult res;
        int r = request(o, "metrics", "GET", path, NULL, &res);
        if (r == 0) {
                json_t *b = res.body;
                if (o->json)
                        print_json(b);
                else {
                        char bb[32];
                        printf("%-24s %s\n", "scope", repo ? jstr(b, "repo") : "registry");
                        const char *k;
                        json_t *v;
                        json_object_foreach(json_object_get(b, "image_count_by_env"), k, v)
                                printf("image_count_by_env %-5s %" JSON_INTEGER_FORMAT "\n", k, json_integer_value(v));
                        printf("%-24s %" JSON_INTEGER_FORMAT "\n", "digest_unique", json_integer_value(json_object_get(b, "digest_unique")));
                        printf("%-24s %s\n", "registry_storage_bytes",
                               format_bytes(bb, sizeof(bb), (uint64_t) json_integer_value(json_object_get(b, "registry_storage_bytes"))));
                        print_dist("promotion_latency", json_object_get(b, "promotion_latency"));
                        print_dist("rollback_time", json_object_get(b, "rollback_time"));
                        printf("%-24s %" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT " digests blocked now)\n", "cve_block_events",
                               json_integer_value(json_object_get(b, "cve_block_events")),
                               json_integer_value(json_object_get(b, "blocked_digests")));
                        json_t *sb = json_object_get(b, "sbom_coverage"), *sg = json_object_get(b, "signed_artifacts");
                        printf("%-24s %s%.1f%%\n", "sbom_coverage", json_is_number(sb) ? "" : "n/a ", json_is_number(sb) ? 100 * json_number_value(sb) : 0.0);
                        printf("%-24s %s%.1f%%\n", "signed_artifacts", json_is_number(sg) ? "" : "n/a ", json_is_number(sg) ? 100 * json_number_value(sg) : 0.0);
                        printf("%-24s %" JSON_INTEGER_FORMAT "\n", "digests_in_channels",
                               json_integer_value(json_object_get(b, "digests_in_channels")));
                }
        }
        http_result_done(&res);
        return r;
}

static int do_tags(const Opts *o, char **args, int n) {
        if (n != 1) {
                usage(stderr, "tags");
                return 2;
        }
        _cleanup_free_ char *path = strdup_printf("/v2/%s/tags/list", args[0]);
        HttpResult res;
        int r = request(o, "tags", "GET", path, NULL, &res);
        if (r != 0) {
                http_result_done(&res);
                return r;
        }
        _cleanup_free_ char *er = urlencode(args[0]);
        _cleanup_free_ char *cpath = strdup_printf("/v1/registry/channels?repo=%s", er);
        HttpResult ch;
        bool have_ch = http_json_request(&o->http, "GET", cpath, NULL, &ch) >= 0 &&
                       ch.status == 200;
        if (o->json) {
                json_t *j = json_pack("{s:O, s:O}", "tags", json_object_get(res.body, "tags"), "channels",
                                      have_ch ? json_object_get(ch.body, "state") : json_null());
                print_json(j);
                json_decref(j);
        } else {
                size_t i;
                json_t *t;
                json_array_foreach(json_object_get(res.body, "tags"), i, t)
                        printf("%s\n", json_string_value(t));
                if (have_ch) {
                        printf("channels:\n");
                        print_state(json_object_get(ch.body, "state"));
                }
        }
        http_result_done(&ch);
        http_result_done(&res);
        return 0;
}

/* ------------------------------------------------------------------ dispatch */

int reg_governance(int argc, char **argv) {
        /* argv[0] is the verb; pull the common options out, keep the rest in order */
        Opts o = { 0 };
        argc = http_client_options_take(argc, argv, &o.http);
        if (argc < 0)
                return 2;
        _cleanup_free_ char **rest = calloc((size_t) argc + 1, sizeof(char *));
        if (!rest)
                return 1;
        int n = 0;
        rest[n++] = argv[0];
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (streq(a, "--json"))
                        o.json = true;
                else if (streq(a, "--help") || streq(a, "-h")) {
                        usage(stdout, argv[0]);
                        return 0;
                } else
                        rest[n++] = argv[i];
        }
        const char *verb = argv[0];
        if (streq(verb, "promote"))
                return do_promote(&o, rest + 1, n - 1);
        if (streq(verb, "rollback"))
                return do_rollback(&o, rest + 1, n - 1);
        if (streq(verb, "block"))
                return do_block(&o, n, rest);
        if (streq(verb, "unblock"))
                return do_unblock(&o, rest + 1, n - 1);
        if (streq(verb, "history"))
                return do_history(&o, rest + 1, n - 1);
        if (streq(verb, "metrics"))
                return do_metrics(&o, n, rest);
        if (streq(verb, "audit"))
                return do_audit(&o, n, rest);
        if (streq(verb, "tags"))
                return do_tags(&o, rest + 1, n - 1);
        usage(stderr, verb);
        return 2;
}
