/* SPDX-License-Identifier: MIT */
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

/* Keep in sync with deploy/config.example.json and the README's reference. */
const char config_default_json[] =
"{\n"
"  \"listen\": \"127.0.0.1:5000\",\n"
"  \"data\": \"./data\",\n"
"  \"log_level\": \"info\",\n"
"  \"access_log\": true,\n"
"  \"registry_id\": \"\",\n"
"  \"http\": { \"threads\": 0, \"max_connections\": 1024, \"timeout\": \"120s\",\n"
"            \"max_json_body_bytes\": 1048576 },\n"
"  \"storage\": { \"zstd_at_rest\": false, \"zstd_level\": 3, \"fsync\": true,\n"
"               \"max_manifest_bytes\": 4194304, \"upload_purge_after\": \"24h\" },\n"
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

static const char *const known_keys[] = {
        "listen", "data", "log_level", "access_log", "registry_id", "http", "storage", "gc",
        "policy", "channels", "worm", "fuse",
};

int config_set_listen(Config *c, const char *hostport) {
        const char *colon = strrchr(hostport, ':');
        if (!colon)
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || port > 65535)
                return -EINVAL;
        char *host = colon == hostport ? strdup("0.0.0.0") : strndup(hostport, (size_t) (colon - hostport));
        if (!host)
                return -ENOMEM;
        /* [::1]:5000 */
        if (host[0] == '[') {
                size_t l = strlen(host);
                if (l < 2 || host[l - 1] != ']') {
                        free(host);
                        return -EINVAL;
                }
                memmove(host, host + 1, l - 2);
                host[l - 2] = 0;
        }
        free(c->listen_host);
        c->listen_host = host;
        c->listen_port = (uint16_t) port;
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

static int get_duration(json_t *o, const char *key, int64_t *ret, char *err, size_t errlen, const char *where) {
        json_t *v = json_object_get(o, key);
        if (!v)
                return 0;
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
                /* seconds; refuse what does not fit in int64 ns instead of overflowing */
                if (json_integer_value(v) > INT64_MAX / (int64_t) NSEC_PER_SEC) {
                        snprintf(err, errlen, "%s.%s: duration too large", where, key);
                        return -EINVAL;
                }
                *ret = json_integer_value(v) * (int64_t) NSEC_PER_SEC;
                return 0;
        }
        if (!json_is_string(v) || parse_duration_ns(json_string_value(v), ret) < 0) {
                snprintf(err, errlen, "%s.%s: expected a duration like \"90s\", \"15m\", \"24h\" or \"7d\"", where, key);
                return -EINVAL;
        }
        return 0;
}

/* Validates the user's document (may be NULL: defaults only) and builds the Config. where
 * names the source in error messages. */
static int config_from_json(json_t *user, const char *where, Config **ret, char *err, size_t errlen) {
        json_error_t je;
        _cleanup_(json_decrefp) json_t *def = json_loads(config_default_json, 0, &je);
        if (!def) {
                snprintf(err, errlen, "embedded default config: %s (line %d)", je.text, je.line);
                return -EINVAL;
        }
        if (user) {
                if (!json_is_object(user)) {
                        snprintf(err, errlen, "%s: the configuration must be a JSON object", where);
                        return -EINVAL;
                }
                const char *k;
                json_t *v;
                json_object_foreach(user, k, v) {
                        bool ok = false;
                        for (size_t i = 0; i < ELEMENTSOF(known_keys); i++)
                                if (streq(k, known_keys[i]))
                                        ok = true;
                        if (!ok) {
                                snprintf(err, errlen, "%s: unknown configuration key \"%s\"", where, k);
                                return -EINVAL;
                        }
                }
        }

        Config *c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;
        _cleanup_(config_freep) Config *cfg = c;
        cfg->root = user ? json_deep_merge(def, user) : json_incref(def);

        json_t *r = cfg->root;
        json_t *v;
        int k;

        v = json_object_get(r, "listen");
        if (!json_is_string(v) || config_set_listen(cfg, json_string_value(v)) < 0) {
                snprintf(err, errlen, "listen: expected \"HOST:PORT\"");
                return -EINVAL;
        }
        v = json_object_get(r, "data");
        if (!json_is_string(v) || !*json_string_value(v)) {
                snprintf(err, errlen, "data: expected a directory path");
                return -EINVAL;
        }
        cfg->data_dir = strdup(json_string_value(v));
        v = json_object_get(r, "log_level");
        if (!json_is_string(v) || log_level_from_string(json_string_value(v)) < 0) {
                snprintf(err, errlen, "log_level: expected one of debug, info, warning, error");
                return -EINVAL;
        }
        cfg->log_level = strdup(json_string_value(v));
        v = json_object_get(r, "access_log");
        if (!json_is_boolean(v)) {
                snprintf(err, errlen, "access_log: expected true or false");
                return -EINVAL;
        }
        cfg->access_log = json_is_true(v);

        v = json_object_get(r, "registry_id");
        if (v && !json_is_string(v)) {
                snprintf(err, errlen, "registry_id: expected a string");
                return -EINVAL;
        }
        if (v && *json_string_value(v))
                cfg->registry_id = strdup(json_string_value(v));
        else {
                char host[256] = "localhost";
                gethostname(host, sizeof(host) - 1);
                cfg->registry_id = strdup_printf("plura@%s", host);
        }

        json_t *http = json_object_get(r, "http");
        if (!json_is_object(http)) {
                snprintf(err, errlen, "http: expected an object");
                return -EINVAL;
        }
#define GET_UINT(obj, key, field, where)                                                         \
        do {                                                                                     \
                json_t *_v = json_object_get(obj, key);                                          \
                if (_v) {                                                                        \
                        if (!json_is_integer(_v) || json_integer_value(_v) < 0) {                \
                                snprintf(err, errlen, "%s.%s: expected a non-negative integer", where, key); \
                                return -EINVAL;                                                  \
                        }                                                                        \
                        /* refuse values the field can not hold instead of truncating */      \
                        if ((json_int_t) (__typeof__(field)) json_integer_value(_v) != json_integer_value(_v)) { \
                                snprintf(err, errlen, "%s.%s: value out of range", where, key);  \
                                return -EINVAL;                                                  \
                        }                                                                        \
                        field = (__typeof__(field)) json_integer_value(_v);                      \
                }                                                                                \
        } while (0)
        GET_UINT(http, "threads", cfg->http_threads, "http");
        cfg->http_max_connections = 1024;
        GET_UINT(http, "max_connections", cfg->http_max_connections, "http");
        int64_t t = 120 * (int64_t) NSEC_PER_SEC;
        k = get_duration(http, "timeout", &t, err, errlen, "http");
        if (k < 0)
                return k;
        if (t / (int64_t) NSEC_PER_SEC > UINT_MAX) {
                snprintf(err, errlen, "http.timeout: duration too large");
                return -EINVAL;
        }
        cfg->http_timeout_s = (unsigned) (t / (int64_t) NSEC_PER_SEC);
        cfg->max_json_body_bytes = 1 << 20;
        GET_UINT(http, "max_json_body_bytes", cfg->max_json_body_bytes, "http");

        json_t *st = json_object_get(r, "storage");
        if (!json_is_object(st)) {
                snprintf(err, errlen, "storage: expected an object");
                return -EINVAL;
        }
        v = json_object_get(st, "zstd_at_rest");
        if (v && !json_is_boolean(v)) {
                snprintf(err, errlen, "storage.zstd_at_rest: expected true or false");
                return -EINVAL;
        }
        cfg->zstd_at_rest = json_is_true(v);
        cfg->zstd_level = 3;
        GET_UINT(st, "zstd_level", cfg->zstd_level, "storage");
        if (cfg->zstd_level < 1 || cfg->zstd_level > 19) {
                snprintf(err, errlen, "storage.zstd_level: expected 1..19");
                return -EINVAL;
        }
        v = json_object_get(st, "fsync");
        if (v && !json_is_boolean(v)) {
                snprintf(err, errlen, "storage.fsync: expected true or false");
                return -EINVAL;
        }
        cfg->fsync = !v || json_is_true(v);
        cfg->max_manifest_bytes = 4U << 20;
        GET_UINT(st, "max_manifest_bytes", cfg->max_manifest_bytes, "storage");
        if (cfg->max_manifest_bytes == 0 || cfg->max_manifest_bytes > (4U << 20)) {
                snprintf(err, errlen, "storage.max_manifest_bytes: expected 1..4194304");
                return -EINVAL;
        }
        cfg->upload_purge_after_ns = 24 * 3600 * (int64_t) NSEC_PER_SEC;
        k = get_duration(st, "upload_purge_after", &cfg->upload_purge_after_ns, err, errlen, "storage");
        if (k < 0)
                return k;

        const char *sections[] = { "gc", "channels", "worm", "fuse" };
        for (size_t i = 0; i < ELEMENTSOF(sections); i++)
                if (!json_is_object(json_object_get(r, sections[i]))) {
                        snprintf(err, errlen, "%s: expected an object", sections[i]);
                        return -EINVAL;
                }
        if (!json_is_array(json_object_get(r, "policy"))) {
                snprintf(err, errlen, "policy: expected an array of rules");
                return -EINVAL;
        }

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
