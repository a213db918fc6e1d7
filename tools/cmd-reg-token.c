/* SPDX-License-Identifier: MIT */
/* plura reg token create|list|revoke: API tokens for CI and robots (needs the admin action). */
#include <getopt.h>
#include <stdio.h>

#include "common/macros.h"
#include "common/util.h"
#include "http-client.h"
#include "plura.h"

enum { OPT_NAME = 0x100, OPT_SCOPE, OPT_EXPIRES };

static void token_help(FILE *f) {
        fputs("Usage: plura reg token create --name NAME --scope 'GLOB:ACTION[,ACTION...]' [--scope ...] [--expires 90d|TIME]\n"
              "       plura reg token list\n"
              "       plura reg token revoke ID|NAME\n"
              "\n"
              "API tokens for CI and robots. create prints the secret once: the server keeps only its\n"
              "SHA-256. Use it as the password (docker/podman login, skopeo --creds NAME:SECRET) or as\n"
              "$PLURA_TOKEN. A token is matched by its name in auth.acl rules and limited further by its\n"
              "scopes, e.g. --scope 'apps/search/**:pull,push'. revoke takes effect at once, also for\n"
              "bearer tokens already issued with it. All three need the admin action.\n"
              "Common options: " HTTP_CLIENT_OPTIONS_HELP ", --json\n", f);
}

static void print_json(json_t *j) {
        _cleanup_free_ char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
        puts(s ? s : "null");
}

static const char *jstr(json_t *o, const char *k) {
        const char *s = json_string_value(json_object_get(o, k));
        return s ? s : "-";
}

static int request(const HttpClientOptions *o, bool json, const char *method, const char *path, json_t *body,
                   HttpResult *res) {
        int r = http_json_request(o, method, path, body, res);
        if (r < 0 || res->status < 200 || res->status >= 300) {
                http_print_error("plura reg token", res);
                if (json && res->body)
                        print_json(res->body);
                return 1;
        }
        return 0;
}

static void print_scopes(json_t *t) {
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(t, "scopes"), i, s)
                printf("%s%s", i ? " " : "", json_string_value(s));
}

int reg_token(int argc, char **argv) {
        static const struct option longopts[] = {
                { "name", required_argument, NULL, OPT_NAME },       { "scope", required_argument, NULL, OPT_SCOPE },
                { "expires", required_argument, NULL, OPT_EXPIRES }, { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },                  {},
        };
        HttpClientOptions http = {};
        argc = http_client_options_take(argc, argv, &http);
        if (argc < 0)
                return 2;
        const char *name = NULL, *expires = NULL;
        bool json = false;
        _cleanup_(json_decrefp) json_t *scopes = json_array();
        if (!scopes)
                return 1;
        optind = 1;
        int c;
        while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) >= 0)
                switch (c) {
                case OPT_NAME: name = optarg; break;
                case OPT_SCOPE: json_array_append_new(scopes, json_string(optarg)); break;
                case OPT_EXPIRES: expires = optarg; break;
                case 'j': json = true; break;
                case 'h': token_help(stdout); return 0;
                default: token_help(stderr); return 2;
                }
        if (optind >= argc) {
                token_help(stderr);
                return 2;
        }
        const char *verb = argv[optind];
        HttpResult res = {};
        int rc;
        if (streq(verb, "create")) {
                if (!name || json_array_size(scopes) == 0 || optind + 1 != argc) {
                        fprintf(stderr, "plura reg token create: --name and at least one --scope are needed\n");
                        return 2;
                }
                json_t *body = json_pack("{s:s, s:O, s:s?}", "name", name, "scopes", scopes, "expires", expires);
                rc = request(&http, json, "POST", "/v1/registry/tokens", body, &res);
                json_decref(body);
                if (rc == 0 && json)
                        print_json(res.body);
                else if (rc == 0) {
                        printf("API token %s (id %s), expires %s, scopes: ", jstr(res.body, "name"), jstr(res.body, "id"),
                               json_is_string(json_object_get(res.body, "expires")) ? jstr(res.body, "expires") : "never");
                        print_scopes(res.body);
                        printf("\n\n%s\n\nThis secret is shown once; only its hash is stored. Keep it in your CI's secret store.\n",
                               jstr(res.body, "secret"));
                }
        } else if (streq(verb, "list") && optind + 1 == argc) {
                rc = request(&http, json, "GET", "/v1/registry/tokens", NULL, &res);
                if (rc == 0 && json)
                        print_json(res.body);
                else if (rc == 0) {
                        size_t i;
                        json_t *t;
                        printf("%-32s  %-20s  %-20s  %-20s  %s\n", "ID", "NAME", "EXPIRES", "REVOKED", "SCOPES");
                        json_array_foreach(json_object_get(res.body, "tokens"), i, t) {
                                printf("%-32s  %-20s  %-20s  %-20s  ", jstr(t, "id"), jstr(t, "name"), jstr(t, "expires"),
                                       jstr(t, "revoked"));
                                print_scopes(t);
                                putchar('\n');
                        }
                }
        } else if (streq(verb, "revoke") && optind + 2 == argc) {
                _cleanup_free_ char *esc = http_url_escape(argv[optind + 1]);
                _cleanup_free_ char *path = esc ? strdup_printf("/v1/registry/tokens/%s", esc) : NULL;
                if (!path)
                        return 1;
                rc = request(&http, json, "DELETE", path, NULL, &res);
                if (rc == 0 && json)
                        print_json(res.body);
                else if (rc == 0)
                        printf("revoked %lld token(s) named or with id %s\n",
                               (long long) json_integer_value(json_object_get(res.body, "revoked")), argv[optind + 1]);
        } else {
                token_help(stderr);
                return 2;
        }
        http_result_done(&res);
        return rc;
}
