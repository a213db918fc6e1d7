/* SPDX-License-Identifier: MIT */
/* plura reg hold add|list|release and plura reg worm export|list|verify.
 * Everything but `worm verify` is a client of the server's /v1/registry API; `worm verify`
 * re-hashes a bundle on the local filesystem and needs no server. */
#include <getopt.h>
#include <stdio.h>

#include "common/macros.h"
#include "common/util.h"
#include "http-client.h"
#include "plura.h"
#include "storage/holds.h"
#include "storage/storage.h"

typedef struct Opts {
        HttpClientOptions http;
        const char *case_id;
        const char *reason;
        const char *until;
        const char *digest;
        bool json;
        bool do_export;
        int active; /* -1 any */
} Opts;

enum { OPT_CASE = 0x100, OPT_REASON, OPT_UNTIL, OPT_DIGEST, OPT_EXPORT, OPT_ACTIVE, OPT_RELEASED };

static void hold_help(FILE *f) {
        fputs("Usage: plura reg hold add DIGEST --case ID --reason TEXT [--until TIME|DURATION] [--export]\n"
              "       plura reg hold list [--case ID] [--active|--released]\n"
              "       plura reg hold release CASE_ID DIGEST\n"
              "\n"
              "RCA holds: a held digest's closure (child manifests, config, layers, referrers) is never\n"
              "garbage-collected while the hold is active; once released or expired, GC collects it only\n"
              "after a verified WORM export exists (exporting it first if needed).\n"
              "  --until    RFC 3339 time (2025-01-31T00:00:00Z) or a duration (30d, 12h)\n"
              "  --export   also write a WORM bundle now\n"
              "Common options: " HTTP_CLIENT_OPTIONS_HELP ", --json\n", f);
}

static void worm_help(FILE *f) {
        fputs("Usage: plura reg worm export (--case ID | --digest DIGEST | DIGEST) [--case ID]\n"
              "       plura reg worm list [--case ID]\n"
              "       plura reg worm verify BUNDLE_DIR          (offline, no server needed)\n"
              "\n"
              "Write-once exports of held digests into the server's worm.path. verify re-hashes every file\n"
              "of a bundle and reports missing, extra and altered files; the exit status is 1 if the bundle\n"
              "does not verify (or is incomplete), 2 on usage errors.\n"
              "Common options: " HTTP_CLIENT_OPTIONS_HELP ", --json\n", f);
}

/* *argc: the arguments left (the client options are taken out of argv) */
static int parse_opts(int *argc, char **argv, Opts *o, void (*help)(FILE *)) {
        static const struct option longopts[] = {
                { "case", required_argument, NULL, OPT_CASE },     { "case-id", required_argument, NULL, OPT_CASE },
                { "reason", required_argument, NULL, OPT_REASON }, { "until", required_argument, NULL, OPT_UNTIL },
                { "digest", required_argument, NULL, OPT_DIGEST }, { "export", no_argument, NULL, OPT_EXPORT },
                { "active", no_argument, NULL, OPT_ACTIVE },       { "released", no_argument, NULL, OPT_RELEASED },
                { "json", no_argument, NULL, 'j' },                { "help", no_argument, NULL, 'h' },
                {},
        };
        *o = (Opts) { .active = -1 };
        *argc = http_client_options_take(*argc, argv, &o->http);
        if (*argc < 0) {
                help(stderr);
                return -EINVAL;
        }
        optind = 1;
        int c;
        while ((c = getopt_long(*argc, argv, "jh", longopts, NULL)) >= 0)
                switch (c) {
                case OPT_CASE: o->case_id = optarg; break;
                case OPT_REASON: o->reason = optarg; break;
                case OPT_UNTIL: o->until = optarg; break;
                case OPT_DIGEST: o->digest = optarg; break;
                case OPT_EXPORT: o->do_export = true; break;
                case OPT_ACTIVE: o->active = 1; break;
                case OPT_RELEASED: o->active = 0; break;
                case 'j': o->json = true; break;
                case 'h': help(stdout); return 0;
                default: help(stderr); return -EINVAL;
                }
        return 1;
}

static void print_json(json_t *j) {
        _cleanup_free_ char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
        puts(s ? s : "null");
}

static const char *jstr(json_t *o, const char *k) {
        const char *s = json_string_value(json_object_get(o, k));
        return s ? s : "-";
}

/* Runs one request; prints the server's refusal and returns 1 if it was not 2xx. */
static int request(const Opts *o, const char *method, const char *path, json_t *body, const char *what, HttpResult *res) {
        int r = http_json_request(&o->http, method, path, body, res);
        if (r < 0 || res->status < 200 || res->status >= 300) {
                http_print_error(what, res);
                if (o->json && res->body)
                        print_json(res->body);
                return 1;
        }
        return 0;
}

static void print_hold(json_t *h) {
        const char *state = json_is_true(json_object_get(h, "active")) ? "active"
                            : json_is_string(json_object_get(h, "released")) ? "released"
                                                                              : "expired";
        printf("%-20s %s  %-8s  ", jstr(h, "case_id"), jstr(h, "digest"), state);
        if (json_is_string(json_object_get(h, "released")))
                printf("released %s", jstr(h, "released"));
        else if (json_is_string(json_object_get(h, "until")))
                printf("until %s", jstr(h, "until"));
        else
                printf("until released");
        printf("  %s\n", jstr(h, "reason"));
        if (json_is_string(json_object_get(h, "export_bundle")))
                printf("%-20s exported: %s\n", "", jstr(h, "export_bundle"));
}

int reg_hold(int argc, char **argv) {
        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                hold_help(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        const char *verb = argv[1];
        Opts o;
        int n = argc - 1;
        int r = parse_opts(&n, argv + 1, &o, hold_help);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        char **args = argv + 1 + optind;
        int nargs = n - optind;
        HttpResult res = {};
        int rc = 0;

        if (streq(verb, "add")) {
                const char *digest = nargs >= 1 ? args[0] : o.digest;
                if (!digest || !o.case_id || !o.reason) {
                        fputs("plura reg hold add: DIGEST, --case and --reason are required\n", stderr);
                        return 2;
                }
                _cleanup_(json_decrefp) json_t *body = json_pack("{s:s, s:s, s:s, s:s?, s:b}", "digest", digest, "case_id", o.case_id,
                                                                 "reason", o.reason, "until", o.until, "export", o.do_export);
                rc = request(&o, "POST", "/v1/registry/holds", body, "hold add", &res);
                if (rc == 0) {
                        if (o.json)
                                print_json(res.body);
                        else {
                                printf("%s hold %s on %s\n", res.status == 201 ? "added" : "renewed", o.case_id, digest);
                                json_t *cl = json_object_get(res.body, "closure");
                                if (cl)
                                        printf("covers %lld manifest(s), %lld blob(s), %lld bytes\n",
                                               (long long) json_integer_value(json_object_get(cl, "manifests")),
                                               (long long) json_integer_value(json_object_get(cl, "blobs")),
                                               (long long) json_integer_value(json_object_get(cl, "bytes")));
                                if (json_object_get(res.body, "closure_error"))
                                        printf("warning: %s\n", jstr(res.body, "closure_error"));
                                if (json_is_string(json_object_get(res.body, "export_bundle")))
                                        printf("exported to %s\n", jstr(res.body, "export_bundle"));
                        }
                }
        } else if (streq(verb, "list")) {
                _cleanup_free_ char *path = NULL;
                if (o.case_id && !case_id_is_valid(o.case_id)) {
                        fprintf(stderr, "plura reg hold list: invalid case id '%s'\n", o.case_id);
                        return 2;
                }
                path = strdup_printf("/v1/registry/holds%s%s%s%s", o.case_id ? "?case_id=" : "", o.case_id ? o.case_id : "",
                                     o.active < 0 ? "" : o.case_id ? "&active=" : "?active=",
                                     o.active < 0 ? "" : o.active ? "true" : "false");
                if (!path)
                        return 1;
                rc = request(&o, "GET", path, NULL, "hold list", &res);
                if (rc == 0) {
                        if (o.json)
                                print_json(res.body);
                        else {
                                size_t i;
                                json_t *h;
                                json_array_foreach(json_object_get(res.body, "holds"), i, h)
                                        print_hold(h);
                                if (json_array_size(json_object_get(res.body, "holds")) == 0)
                                        puts("no holds");
                        }
                }
        } else if (streq(verb, "release")) {
                const char *case_id = o.case_id, *digest = o.digest;
                if (nargs >= 2) {
                        case_id = args[0];
                        digest = args[1];
                } else if (nargs == 1) {
                        if (case_id)
                                digest = args[0];
                        else
                                case_id = args[0];
                }
                if (!case_id || !digest) {
                        fputs("plura reg hold release: CASE_ID and DIGEST are required\n", stderr);
                        return 2;
                }
                if (!case_id_is_valid(case_id)) {
                        fprintf(stderr, "plura reg hold release: invalid case id '%s'\n", case_id);
                        return 2;
                }
                _cleanup_free_ char *path = strdup_printf("/v1/registry/holds/%s/%s", case_id, digest);
                if (!path)
                        return 1;
                rc = request(&o, "DELETE", path, NULL, "hold release", &res);
                if (rc == 0) {
                        if (o.json)
                                print_json(res.body);
                        else
                                printf("released hold %s on %s%s\n", case_id, digest,
                                       json_is_string(json_object_get(res.body, "export_bundle"))
                                               ? ""
                                               : " (GC exports it to WORM before collecting)");
                }
        } else {
                fprintf(stderr, "plura reg hold: unknown verb '%s'\n\n", verb);
                hold_help(stderr);
                return 2;
        }
        http_result_done(&res);
        return rc;
}

#ifndef PLURA_CLIENT_ONLY /* verify runs in plura-store */
static void print_verify(json_t *rep) {
        const char *status = jstr(rep, "status");
        printf("%s: %s\n", jstr(rep, "bundle"), status);
        if (json_object_get(rep, "digest"))
                printf("  case %s, digest %s, exported %s by %s\n", jstr(rep, "case_id"), jstr(rep, "digest"),
                       jstr(rep, "exported_at"), jstr(rep, "registry_id"));
        printf("  %lld file(s), %lld bytes re-hashed\n", (long long) json_integer_value(json_object_get(rep, "files_checked")),
               (long long) json_integer_value(json_object_get(rep, "bytes_checked")));
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(rep, "missing"), i, x)
                printf("  missing: %s\n", json_string_value(x));
        json_array_foreach(json_object_get(rep, "extra"), i, x)
                printf("  extra:   %s\n", json_string_value(x));
        json_array_foreach(json_object_get(rep, "altered"), i, x) {
                if (json_object_get(x, "error"))
                        printf("  altered: %s (%s)\n", jstr(x, "path"), jstr(x, "error"));
                else
                        printf("  altered: %s (sha256 %s, expected %s; %lld bytes, expected %lld)\n", jstr(x, "path"),
                               jstr(x, "actual_sha256"), jstr(x, "expected_sha256"),
                               (long long) json_integer_value(json_object_get(x, "actual_size")),
                               (long long) json_integer_value(json_object_get(x, "expected_size")));
        }
        json_array_foreach(json_object_get(rep, "problems"), i, x)
                printf("  problem: %s\n", json_string_value(x));
}
#endif

int reg_worm(int argc, char **argv) {
        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                worm_help(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        const char *verb = argv[1];
        Opts o;
        int n = argc - 1;
        int r = parse_opts(&n, argv + 1, &o, worm_help);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        char **args = argv + 1 + optind;
        int nargs = n - optind;

        if (streq(verb, "verify")) {
                if (nargs != 1) {
                        fputs("plura reg worm verify: exactly one BUNDLE_DIR expected\n", stderr);
                        return 2;
                }
#ifdef PLURA_CLIENT_ONLY
                return plura_exec_store(); /* the bundle is hashed with the store's code */
#else
                json_t *rep = NULL;
                r = worm_verify(args[0], &rep);
                if (o.json)
                        print_json(rep);
                else if (rep)
                        print_verify(rep);
                else
                        fprintf(stderr, "plura reg worm verify: %s: %s\n", args[0], strerror(-r));
                json_decref(rep);
                return r < 0 ? 1 : 0;
#endif
        }

        HttpResult res = {};
        int rc = 0;
        if (streq(verb, "export")) {
                const char *digest = nargs >= 1 ? args[0] : o.digest;
                if (!digest && !o.case_id) {
                        fputs("plura reg worm export: --case ID and/or a DIGEST is required\n", stderr);
                        return 2;
                }
                _cleanup_(json_decrefp) json_t *body = json_pack("{s:s?, s:s?}", "case_id", o.case_id, "digest", digest);
                rc = request(&o, "POST", "/v1/registry/worm/export", body, "worm export", &res);
                if (rc == 0) {
                        if (o.json)
                                print_json(res.body);
                        else {
                                size_t i;
                                json_t *b;
                                json_array_foreach(json_object_get(res.body, "bundles"), i, b)
                                        printf("exported %s (case %s) to %s: %lld files, %lld bytes%s\n", jstr(b, "digest"),
                                               jstr(b, "case_id"), jstr(b, "bundle"),
                                               (long long) json_integer_value(json_object_get(b, "files")),
                                               (long long) json_integer_value(json_object_get(b, "bytes")),
                                               json_is_true(json_object_get(b, "immutable")) ? ", immutable" : "");
                        }
                }
        } else if (streq(verb, "list")) {
                if (o.case_id && !case_id_is_valid(o.case_id)) {
                        fprintf(stderr, "plura reg worm list: invalid case id '%s'\n", o.case_id);
                        return 2;
                }
                _cleanup_free_ char *path = strdup_printf("/v1/registry/worm/bundles%s%s", o.case_id ? "?case_id=" : "",
                                                          o.case_id ? o.case_id : "");
                if (!path)
                        return 1;
                rc = request(&o, "GET", path, NULL, "worm list", &res);
                if (rc == 0) {
                        if (o.json)
                                print_json(res.body);
                        else {
                                size_t i;
                                json_t *b;
                                json_array_foreach(json_object_get(res.body, "bundles"), i, b)
                                        printf("%-10s %s  %s\n", json_is_true(json_object_get(b, "complete")) ? "complete" : "INCOMPLETE",
                                               json_object_get(b, "digest") ? jstr(b, "digest") : jstr(b, "digest_short"),
                                               jstr(b, "bundle"));
                                if (json_array_size(json_object_get(res.body, "bundles")) == 0)
                                        printf("no bundles under %s\n", jstr(res.body, "path"));
                        }
                }
        } else {
                fprintf(stderr, "plura reg worm: unknown verb '%s'\n\n", verb);
                worm_help(stderr);
                return 2;
        }
        http_result_done(&res);
        return rc;
}
