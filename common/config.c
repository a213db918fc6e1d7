/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdio.h>
#include <unistd.h>

#include "config-schema.h"
#include "config.h"
#include "util.h"

/* Keep in sync with deploy/config.example.json (test-config checks they are equal), the README's
 * reference and the schema in config-schema.c. */
const char config_default_json[] =
"{\n"
"  \"listen\": \"127.0.0.1:5000\",\n"
"  \"data\": \"./data\",\n"
"  \"log_level\": \"info\",\n"
"  \"access_log\": true,\n"
"  \"registry_id\": \"\",\n"
"  \"http\": { \"threads\": 0, \"max_connections\": 1024, \"max_connections_per_client\": 64,\n"
"            \"timeout\": \"120s\", \"header_timeout\": \"10s\", \"max_json_body_bytes\": 1048576 },\n"
"  \"storage\": { \"zstd_at_rest\": false, \"zstd_level\": 3, \"fsync\": true,\n"
"               \"max_manifest_bytes\": 4194304, \"upload_purge_after\": \"24h\",\n"
"               \"max_upload_sessions\": 4096, \"max_upload_sessions_per_client\": 128 },\n"
"  \"gc\": {\n"
"    \"grace\": \"1h\",\n"
"    \"schedule\": \"\",\n"
"    \"untagged_grace\": \"24h\",\n"
"    \"reports_kept\": 100,\n"
"    \"cpu_nice\": 10,\n"
"    \"sched_idle\": false,\n"
"    \"retention\": [\n"
"      { \"repos\": \"**\",\n"
"        \"keep_forever\": [\"^v?[0-9]+\\\\.[0-9]+\\\\.[0-9]+(-[0-9A-Za-z.-]+)?(_[0-9a-fA-F]{6,40})?$\", \"^latest$\", \"^dev$\", \"^stable$\", \"^candidate$\"],\n"
"        \"keep_last\": 10,\n"
"        \"idle_days\": 7,\n"
"        \"windows\": { \"prod:stable\": \"180d\", \"prod:candidate\": \"30d\", \"stg\": \"30d\", \"dev\": \"14d\" } }\n"
"    ]\n"
"  },\n"
"  \"policy\": [\n"
"    { \"repos\": \"**\",\n"
"      \"immutable\": [\"^v?[0-9]+\\\\.[0-9]+\\\\.[0-9]+(-[0-9A-Za-z.-]+)?(_[0-9a-fA-F]{6,40})?$\"],\n"
"      \"forbidden\": [],\n"
"      \"moving\": [\"^latest$\", \"^dev$\"] },\n"
"    { \"repos\": \"apps/**\", \"forbidden\": [\"^latest$\"] }\n"
"  ],\n"
"  \"channels\": {\n"
"    \"envs\": [\"dev\", \"stg\", \"prod\"],\n"
"    \"auto_dev_candidate\": false,\n"
"    \"public_keys\": [],\n"
"    \"gates\": {\n"
"      \"stg\": { \"not_blocked\": true },\n"
"      \"prod:candidate\": { \"not_blocked\": true },\n"
"      \"prod:stable\": { \"not_blocked\": true, \"soak\": \"15m\" }\n"
"    }\n"
"  },\n"
"  \"worm\": { \"path\": \"\" },\n"
"  \"fuse\": { \"catch_up_interval\": \"1s\" }\n"
"}\n";

static json_t *json_deep_merge(json_t *base, json_t *over) {
        /* objects merge key by key; anything else replaces */
        if (!json_is_object(base) || !json_is_object(over))
                return json_incref(over);
        json_t *out = json_deep_copy(base);
        const char *k;
        json_t *v;
        json_object_foreach(over, k, v) {
                json_t *b = json_object_get(out, k);
                json_object_set_new(out, k, b ? json_deep_merge(b, v) : json_incref(v));
        }
        return out;
}

int config_parse_listen(const char *hostport, char **ret_host, uint16_t *ret_port) {
        const char *colon = strrchr(hostport, ':');
        if (!colon)
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || !isdigit((unsigned char) colon[1]) || port > 65535)
                return -EINVAL;
        _cleanup_free_ char *host = colon == hostport ? strdup("0.0.0.0") : strndup(hostport, (size_t) (colon - hostport));
        if (!host)
                return -ENOMEM;
        /* [::1]:5000 */
        if (host[0] == '[') {
                size_t l = strlen(host);
                if (l < 2 || host[l - 1] != ']')
                        return -EINVAL;
                memmove(host, host + 1, l - 2);
                host[l - 2] = 0;
        }
        if (ret_host)
                *ret_host = steal_pointer(&host);
        if (ret_port)
                *ret_port = (uint16_t) port;
        return 0;
}

int config_set_listen(Config *c, const char *hostport) {
        char *host;
        uint16_t port;
        int r = config_parse_listen(hostport, &host, &port);
        if (r < 0)
                return r;
        free(c->listen_host);
        c->listen_host = host;
        c->listen_port = port;
        return 0;
}

int config_set_data_dir(Config *c, const char *dir) {
        char *d = strdup(dir);
        if (!d)
                return -ENOMEM;
        free(c->data_dir);
        c->data_dir = d;
        return 0;
}

json_t *config_section(Config *c, const char *name) {
        json_t *s = json_object_get(c->root, name);
        static json_t *empty = NULL;
        if (s)
                return s;
        if (!empty)
                empty = json_object();
        return empty;
}

/* Accessors of a document the schema accepted: every key is there (the defaults have it) with
 * its type and range. */
static unsigned uint_of(json_t *o, const char *key) {
        return (unsigned) json_integer_value(json_object_get(o, key));
}

static int64_t duration_of(json_t *o, const char *key) {
        int64_t ns = 0;
        (void) config_duration_ns(json_object_get(o, key), &ns);
        return ns;
}

static const char *string_of(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

/* Merges the user's document (may be NULL: defaults only) over the defaults, validates the
 * result against the schema and builds the Config. where names the source in error messages. */
static int config_from_json(json_t *user, const char *where, Config **ret, char *err, size_t errlen) {
        json_error_t je;
        _cleanup_(json_decrefp) json_t *def = json_loads(config_default_json, 0, &je);
        if (!def) {
                snprintf(err, errlen, "embedded default config: %s (line %d)", je.text, je.line);
                return -EINVAL;
        }
        if (user && !json_is_object(user)) {
                snprintf(err, errlen, "%s: the configuration must be a JSON object", where);
                return -EINVAL;
        }

        Config *c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;
        _cleanup_(config_freep) Config *cfg = c;
        cfg->root = user ? json_deep_merge(def, user) : json_incref(def);
        if (!cfg->root)
                return -ENOMEM;
        int r = config_schema_validate(cfg->root, user, err, errlen);
        if (r < 0)
                return r;

        json_t *root = cfg->root;
        r = config_parse_listen(string_of(root, "listen"), &cfg->listen_host, &cfg->listen_port);
        if (r < 0)
                return r;
        cfg->data_dir = strdup(string_of(root, "data"));
        cfg->log_level = strdup(string_of(root, "log_level"));
        cfg->access_log = json_is_true(json_object_get(root, "access_log"));
        const char *id = string_of(root, "registry_id");
        if (*id)
                cfg->registry_id = strdup(id);
        else {
                char host[256] = "localhost";
                gethostname(host, sizeof(host) - 1);
                cfg->registry_id = strdup_printf("plura@%s", host);
        }

        json_t *http = json_object_get(root, "http");
        cfg->http_threads = uint_of(http, "threads");
        cfg->http_max_connections = uint_of(http, "max_connections");
        /* the default per-client cap is lowered to a smaller total; one the user wrote above the
         * total was refused by the schema */
        cfg->http_max_connections_per_client = MIN(uint_of(http, "max_connections_per_client"), cfg->http_max_connections);
        cfg->http_timeout_s = (unsigned) (duration_of(http, "timeout") / (int64_t) NSEC_PER_SEC);
        cfg->http_header_timeout_s = (unsigned) (duration_of(http, "header_timeout") / (int64_t) NSEC_PER_SEC);
        cfg->max_json_body_bytes = uint_of(http, "max_json_body_bytes");

        json_t *st = json_object_get(root, "storage");
        cfg->zstd_at_rest = json_is_true(json_object_get(st, "zstd_at_rest"));
        cfg->zstd_level = (int) uint_of(st, "zstd_level");
        cfg->fsync = json_is_true(json_object_get(st, "fsync"));
        cfg->max_manifest_bytes = uint_of(st, "max_manifest_bytes");
        cfg->upload_purge_after_ns = duration_of(st, "upload_purge_after");
        cfg->max_upload_sessions = uint_of(st, "max_upload_sessions");
        cfg->max_upload_sessions_per_client = uint_of(st, "max_upload_sessions_per_client");

        if (!cfg->data_dir || !cfg->log_level || !cfg->registry_id)
                return -ENOMEM;
        *ret = steal_pointer(&cfg);
        return 0;
}

int config_load(const char *path, Config **ret, char *err, size_t errlen) {
        _cleanup_(json_decrefp) json_t *user = NULL;
        if (path) {
                json_error_t je;
                user = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
                if (!user) {
                        snprintf(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
                        return -EINVAL;
                }
        }
        return config_from_json(user, path, ret, err, errlen);
}

int config_load_string(const char *json, Config **ret, char *err, size_t errlen) {
        _cleanup_(json_decrefp) json_t *user = NULL;
        if (json) {
                json_error_t je;
                user = json_loads(json, JSON_REJECT_DUPLICATES, &je);
                if (!user) {
                        snprintf(err, errlen, "config:%d:%d: %s", je.line, je.column, je.text);
                        return -EINVAL;
                }
        }
        return config_from_json(user, "config", ret, err, errlen);
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        json_decref(c->root);
        free(c->listen_host);
        free(c->data_dir);
        free(c->log_level);
        free(c->registry_id);
        free(c);
        return NULL;
}
