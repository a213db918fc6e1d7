/* SPDX-License-Identifier: MIT */
#include "common/config.h"
#include "common/util.h"
#include "tests/unit/tests.h"

static char *write_tmp(const char *content) {
        char *p = strdup("/tmp/plura-test-config.XXXXXX");
        int fd = mkstemp(p);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(loop_write(fd, content, strlen(content)));
        close(fd);
        return p;
}

TEST(test_defaults) {
        Config *c = NULL;
        char err[512];
        ASSERT_OK(config_load(NULL, &c, err, sizeof(err)));
        ASSERT_STREQ(c->listen_host, "127.0.0.1");
        ASSERT_EQ(c->listen_port, 5000);
        ASSERT_STREQ(c->data_dir, "./data");
        ASSERT_EQ(c->max_manifest_bytes, 4 << 20);
        ASSERT_FALSE(c->zstd_at_rest);
        ASSERT_TRUE(c->fsync);
        ASSERT_EQ(c->upload_purge_after_ns, 24 * 3600 * (int64_t) NSEC_PER_SEC);
        ASSERT_EQ(c->http_max_connections, 1024);
        ASSERT_EQ(c->http_timeout_s, 120);
        ASSERT_EQ(c->http_header_timeout_s, 10);
        ASSERT_EQ(c->http_max_connections_per_client, 64);
        ASSERT_EQ(c->max_upload_sessions, 4096);
        ASSERT_EQ(c->max_upload_sessions_per_client, 128);
        ASSERT_TRUE(json_is_object(config_section(c, "gc")));
        ASSERT_TRUE(json_is_array(json_object_get(config_section(c, "gc"), "retention")));
        ASSERT_TRUE(json_is_object(config_section(c, "nonexistent")));
        config_free(c);
}

TEST(test_merge_and_errors) {
        Config *c = NULL;
        char err[512];
        char *p = write_tmp("{\"listen\": \"127.0.0.1:6000\", \"storage\": {\"zstd_at_rest\": true}, \"gc\": {\"grace\": \"0\"}}");
        ASSERT_OK(config_load(p, &c, err, sizeof(err)));
        ASSERT_EQ(c->listen_port, 6000);
        ASSERT_TRUE(c->zstd_at_rest);
        ASSERT_EQ(c->zstd_level, 3); /* untouched default survives the deep merge */
        ASSERT_STREQ(json_string_value(json_object_get(config_section(c, "gc"), "grace")), "0");
        ASSERT_TRUE(json_is_array(json_object_get(config_section(c, "gc"), "retention")));
        ASSERT_OK(config_set_listen(c, "[::1]:7000"));
        ASSERT_STREQ(c->listen_host, "::1");
        ASSERT_EQ(config_set_listen(c, "nope"), -EINVAL);
        ASSERT_EQ(config_set_listen(c, "h:99999"), -EINVAL);
        config_free(c);
        unlink(p);
        free(p);

        const char *bad[] = {
                "{\"listen\": 5}", "{\"bogus\": 1}", "{\"storage\": {\"zstd_level\": 99}}",
                "{\"storage\": {\"upload_purge_after\": \"soon\"}}", "[1,2]", "{\"a\": ", "{\"log_level\": \"loud\"}",
                "{\"storage\": {\"max_manifest_bytes\": 99999999}}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                p = write_tmp(bad[i]);
                err[0] = 0;
                ASSERT_EQ(config_load(p, &c, err, sizeof(err)), -EINVAL);
                ASSERT_TRUE(strlen(err) > 0);
                printf("# %s -> %s\n", bad[i], err);
                unlink(p);
                free(p);
        }
        ASSERT_EQ(config_load("/nonexistent/plura.json", &c, err, sizeof(err)), -EINVAL);
}

TEST(test_load_string) {
        Config *c = NULL;
        char err[512];
        ASSERT_OK(config_load_string(NULL, &c, err, sizeof(err)));
        ASSERT_EQ(c->listen_port, 5000);
        config_free(c);
        ASSERT_OK(config_load_string("{\"listen\": \":6001\", \"http\": {\"timeout\": 30}}", &c, err, sizeof(err)));
        ASSERT_EQ(c->listen_port, 6001);
        ASSERT_EQ(c->http_timeout_s, 30);
        config_free(c);

        /* found by fuzz-config: overflowing durations and integers were accepted or were UB */
        const char *bad[] = {
                "{\"http\": {\"timeout\": 99999999999999999}}",
                "{\"http\": {\"timeout\": \"nan\"}}",
                "{\"http\": {\"timeout\": \"inf\"}}",
                "{\"http\": {\"timeout\": \"9223372036.854775808\"}}",
                "{\"http\": {\"timeout\": \"9000000000\"}}",
                "{\"storage\": {\"zstd_level\": 4294967299}}",
                "{\"http\": {\"threads\": 4294967296}}",
                "{\"listen\": \"x:1\", \"listen\": \"x:2\"}",
                "{\"bogus\": 1}",
                "{",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                c = NULL;
                err[0] = 0;
                ASSERT_EQ(config_load_string(bad[i], &c, err, sizeof(err)), -EINVAL);
                ASSERT_TRUE(c == NULL);
                ASSERT_TRUE(strlen(err) > 0);
                printf("# %s -> %s\n", bad[i], err);
        }
        int64_t ns;
        ASSERT_EQ(parse_duration_ns("nan", &ns), -EINVAL);
        ASSERT_EQ(parse_duration_ns("inf", &ns), -EINVAL);
        ASSERT_EQ(parse_duration_ns("9223372036.854775808", &ns), -ERANGE);
}

/* deploy/config.example.json is exactly the embedded default, and both pass the schema */
TEST(test_example_is_default) {
        const char *src = getenv("PLURA_SOURCE_ROOT");
        ASSERT_TRUE(src != NULL);
        _cleanup_free_ char *path = strdup_printf("%s/deploy/config.example.json", src);
        json_error_t je;
        json_t *example = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        if (!example)
                fprintf(stderr, "%s:%d: %s\n", path, je.line, je.text);
        ASSERT_TRUE(example != NULL);
        json_t *def = json_loads(config_default_json, JSON_REJECT_DUPLICATES, &je);
        ASSERT_TRUE(def != NULL);
        ASSERT_TRUE(json_equal(example, def));
        json_decref(example);
        json_decref(def);

        Config *c = NULL;
        char err[1024] = "";
        int r = config_load(path, &c, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "%s\n", err);
        ASSERT_OK(r);
        config_free(c);
}

typedef struct Refusal {
        const char *json;
        const char *error; /* the whole message, or its beginning when it ends in "..." */
} Refusal;

static void assert_refused(const Refusal *t) {
        Config *c = NULL;
        char err[1024] = "";
        int r = config_load_string(t->json, &c, err, sizeof err);
        printf("# %s -> %s\n", t->json, err);
        if (r != -EINVAL || c)
                fprintf(stderr, "accepted: %s\n", t->json);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_TRUE(c == NULL);
        size_t l = strlen(t->error);
        bool prefix = l > 3 && streq(t->error + l - 3, "...");
        if (prefix ? strncmp(err, t->error, l - 3) != 0 : !streq(err, t->error)) {
                fprintf(stderr, "for %s\n  wanted: %s\n     got: %s\n", t->json, t->error, err);
                ASSERT_TRUE(false);
        }
}

/* Every section: an unknown key, a wrong type, a bad value, each refused naming its path */
TEST(test_schema_refusals) {
        static const Refusal refusals[] = {
                /* top level */
                { "{\"bogus\": 1}", "bogus: unknown key (known: listen, data, log_level, access_log, registry_id, http, "
                                    "tls, storage, channels, policy, gc, worm, fuse, auth)" },
                { "{\"access_log\": \"yes\"}", "access_log: expected true or false" },
                { "{\"listen\": \"localhost\"}", "listen: expected \"HOST:PORT\" ..." },
                { "{\"listen\": \"localhost: 80\"}", "listen: expected \"HOST:PORT\" ..." },
                { "{\"data\": \"\"}", "data: expected a directory path" },
                { "{\"registry_id\": null}", "registry_id: expected a string" },
                { "{\"registry_id\": \"a\\u0000b\"}", "config:1:26: \\u0000 is not allowed without JSON_ALLOW_NUL..." },
                { "{\"log_level\": \"warn\"}", "log_level: expected one of debug, info, warning, error" },
                /* http */
                { "{\"http\": {\"tls\": {\"cert\": \"/etc/plura/cert.pem\"}}}",
                  "http.tls: unknown key (known: threads, max_connections, max_connections_per_client, timeout, "
                  "header_timeout, max_json_body_bytes)" },
                { "{\"http\": []}", "http: expected an object" },
                { "{\"http\": {\"threads\": \"4\"}}", "http.threads: expected an integer 0..4096" },
                { "{\"http\": {\"max_connections\": 0}}", "http.max_connections: expected an integer 1..1048576" },
                { "{\"http\": {\"header_timeout\": \"0s\"}}", "http.header_timeout: expected a duration of 1s..1h, like \"10s\"" },
                { "{\"http\": {\"header_timeout\": 3601}}", "http.header_timeout: expected a duration of 1s..1h, like \"10s\"" },
                { "{\"http\": {\"header_timeout\": \"soon\"}}", "http.header_timeout: expected a duration like \"90s\"..." },
                { "{\"http\": {\"max_connections_per_client\": 0}}",
                  "http.max_connections_per_client: expected an integer 1..1048576" },
                { "{\"http\": {\"max_connections\": 10, \"max_connections_per_client\": 11}}",
                  "http.max_connections_per_client: expected 1..10 (at most http.max_connections)" },
                { "{\"http\": {\"max_json_body_bytes\": -1}}", "http.max_json_body_bytes: expected an integer 1..1073741824" },
                /* tls: a certificate without its key (or the reverse) names what is missing */
                { "{\"tls\": {\"certificate\": \"/etc/plura/cert.pem\"}}",
                  "tls.certificate: unknown key (known: cert, key, client_ca, hsts_max_age)" },
                { "{\"tls\": {\"cert\": \"/nonexistent/cert.pem\", \"key\": \"/nonexistent/key.pem\"}}",
                  "tls.cert: cannot read /nonexistent/cert.pem: No such file or directory" },
                { "{\"tls\": {\"cert\": \"/dev/null\"}}",
                  "tls.key: missing: tls.cert (/dev/null) is set, its private key (a PEM file) is needed too" },
                { "{\"tls\": {\"key\": \"/dev/null\"}}",
                  "tls.cert: missing: tls.key (/dev/null) is set, the certificate (a PEM file, chain allowed) is needed too" },
                { "{\"tls\": {\"cert\": \"/dev/null\", \"key\": \"\"}}", "tls.key: missing: tls.cert (/dev/null) is set..." },
                { "{\"tls\": {\"client_ca\": \"/dev/null\"}}",
                  "tls.client_ca: client certificates need TLS: set tls.cert and tls.key too" },
                { "{\"tls\": {\"cert\": \"/dev/null\", \"key\": \"/\"}}", "tls.key: / is a directory, not a file" },
                { "{\"tls\": {\"cert\": 5}}", "tls.cert: expected the path of a PEM file" },
                { "{\"tls\": {\"hsts_max_age\": \"forever\"}}", "tls.hsts_max_age: expected a duration like..." },
                { "{\"tls\": {\"hsts_max_age\": 4294967296}}", "tls.hsts_max_age: expected a duration of at most 4294967295s..." },
                { "{\"tls\": \"on\"}", "tls: expected an object" },
                /* auth: unknown keys, bad actions and globs, named by their path */
                { "{\"auth\": {\"htpasswd\": \"/nonexistent/htpasswd\"}}",
                  "auth.htpasswd: cannot read /nonexistent/htpasswd: No such file or directory" },
                { "{\"auth\": {\"acl\": [{\"repos\": \"**\", \"users\": [\"a\"], \"allow\": [\"puhs\"]}]}}",
                  "auth.acl[0].allow[0]: unknown action \"puhs\" (known: ..." },
                { "{\"auth\": {\"acl\": [{\"users\": [\"a\"], \"allow\": [\"pull\"]}]}}", "auth.acl[0].repos: missing..." },
                { "{\"auth\": {\"acl\": [{\"repos\": \"**\", \"user\": [\"a\"]}]}}", "auth.acl[0].user: unknown key ..." },
                { "{\"auth\": {\"token\": {\"ttl\": \"1s\"}}}", "auth.token.ttl: expected a duration of 10s..24h..." },
                { "{\"auth\": {\"metrics\": \"public\"}}", "auth.metrics: expected one of open, loopback, acl" },
                { "{\"auth\": {\"trusted_proxies\": [\"10.0.0.0/33\"]}}", "auth.trusted_proxies[0]: \"10.0.0.0/33\": the prefix length..." },
                { "{\"auth\": {\"allow_anonymous_remote\": \"yes\"}}", "auth.allow_anonymous_remote: expected true or false" },
                /* storage */
                { "{\"storage\": {\"zstd\": true}}", "storage.zstd: unknown key (known: zstd_at_rest, zstd_level, fsync, "
                                                     "max_manifest_bytes, upload_purge_after, max_upload_sessions, "
                                                     "max_upload_sessions_per_client)" },
                { "{\"storage\": {\"fsync\": \"no\"}}", "storage.fsync: expected true or false" },
                { "{\"storage\": {\"max_upload_sessions\": 0}}", "storage.max_upload_sessions: expected an integer 1..4294967295" },
                { "{\"storage\": {\"max_upload_sessions_per_client\": 4294967296}}",
                  "storage.max_upload_sessions_per_client: expected an integer 1..4294967295" },
                { "{\"storage\": {\"upload_purge_after\": -5}}", "storage.upload_purge_after: expected a duration like..." },
                /* channels */
                { "{\"channels\": {\"gates\": {\"prod:stable\": {\"signatur\": true}}}}",
                  "channels.gates.prod:stable.signatur: unknown gate (known: not_blocked, signature, sbom, labels, soak)" },
                { "{\"channels\": {\"gate\": {}}}", "channels.gate: unknown key (known: envs, auto_dev_candidate, public_keys, gates)" },
                { "{\"channels\": {\"gates\": {\"prd:stable\": {\"signature\": false}}}}",
                  "channels.gates.prd:stable: unknown promotion target (known: dev, dev:candidate, stg, stg:candidate, prod, "
                  "prod:candidate, prod:stable; environments are channels.envs)" },
                { "{\"channels\": {\"gates\": {\"stg:stable\": {}}}}", "channels.gates.stg:stable: unknown promotion target..." },
                { "{\"channels\": {\"gates\": {\"stg\": true}}}", "channels.gates.stg: expected an object" },
                { "{\"channels\": {\"gates\": {\"stg\": {\"not_blocked\": \"yes\"}}}}", "channels.gates.stg.not_blocked: expected true or false" },
                { "{\"channels\": {\"gates\": {\"prod:stable\": {\"soak\": \"a while\"}}}}",
                  "channels.gates.prod:stable.soak: expected a duration like..." },
                { "{\"channels\": {\"gates\": {\"stg\": {\"labels\": \"yes\"}}}}", "channels.gates.stg.labels: expected true (the four..." },
                { "{\"channels\": {\"gates\": {\"stg\": {\"labels\": [\"org.opencontainers.image.version\", \"\"]}}}}",
                  "channels.gates.stg.labels[1]: expected a non-empty string" },
                { "{\"channels\": {\"gates\": {\"stg\": {\"signature\": true}}}}",
                  "channels.gates.stg.signature: no key in channels.public_keys to verify signatures with" },
                { "{\"channels\": {\"public_keys\": [\"/nonexistent/cosign.pub\"]}}",
                  "channels.public_keys[0]: cannot read /nonexistent/cosign.pub: No such file or directory" },
                { "{\"channels\": {\"public_keys\": \"/etc/cosign.pub\"}}", "channels.public_keys: expected an array of PEM..." },
                { "{\"channels\": {\"public_keys\": [\"/\"]}}", "channels.public_keys[0]: / is a directory, not a file" },
                { "{\"channels\": {\"auto_dev_candidate\": 1}}", "channels.auto_dev_candidate: expected true or false" },
                { "{\"channels\": {\"envs\": []}}", "channels.envs: expected an array of environment names (in promotion order) with at least 1 element(s)" },
                { "{\"channels\": {\"envs\": [\"dev\", \"Prod\"]}}", "channels.envs[1]: \"Prod\" is not an environment name..." },
                { "{\"channels\": {\"envs\": [\"dev\", \"repo\"]}}", "channels.envs[1]: \"repo\" is reserved..." },
                { "{\"channels\": {\"envs\": [\"dev\", \"stg\", \"dev\"]}}", "channels.envs[2]: \"dev\" is listed twice (also at [0])" },
                { "{\"channels\": {\"envs\": [\"dev\", \"qa\", \"prod\"], \"gates\": {\"stg\": {\"sbom\": true}}}}",
                  "channels.gates.stg: unknown promotion target (known: dev, dev:candidate, qa, qa:candidate, prod, ..." },
                /* policy */
                { "{\"policy\": {}}", "policy: expected an array of rules" },
                { "{\"policy\": [{\"repos\": \"**\", \"imutable\": []}]}",
                  "policy[0].imutable: unknown key (known: repos, immutable, forbidden, moving, name, reason, comment)" },
                { "{\"policy\": [{\"immutable\": []}]}", "policy[0].repos: missing; expected a repository glob like \"apps/**\"" },
                { "{\"policy\": [{\"repos\": \"**\"}, {\"repos\": \"Apps/**\"}]}", "policy[1].repos: \"Apps/**\" is not a repository glob..." },
                { "{\"policy\": [{\"repos\": \"**\", \"forbidden\": \"^latest$\"}]}", "policy[0].forbidden: expected an array of regular expressions" },
                { "{\"policy\": [{\"repos\": \"**\", \"moving\": [\"^dev$\", \"(\"]}]}",
                  "policy[0].moving[1]: invalid regular expression \"(\": ..." },
                { "{\"policy\": [{\"repos\": \"**\", \"immutable\": [7]}]}", "policy[0].immutable[0]: expected a regular expression (POSIX extended)" },
                /* gc */
                { "{\"gc\": {\"gracee\": \"1h\"}}", "gc.gracee: unknown key (known: grace, schedule, untagged_grace, reports_kept, "
                                                     "cpu_nice, sched_idle, retention)" },
                { "{\"gc\": {\"grace\": true}}", "gc.grace: expected a duration like..." },
                { "{\"gc\": {\"schedule\": \"sometimes\"}}", "gc.schedule: \"sometimes\" is not \"\" (off), \"hourly\"..." },
                { "{\"gc\": {\"schedule\": \"500ms\"}}", "gc.schedule: \"500ms\" is not..." },
                { "{\"gc\": {\"reports_kept\": 0}}", "gc.reports_kept: expected an integer 1..100000" },
                { "{\"gc\": {\"retention\": [{\"repos\": \"**\", \"keep_last\": -1}]}}",
                  "gc.retention[0].keep_last: expected a non-negative integer" },
                { "{\"gc\": {\"retention\": [{\"repos\": \"**\", \"keep_lats\": 3}]}}",
                  "gc.retention[0].keep_lats: unknown key (known: repos, keep_forever, keep_last, idle_days, windows, comment)" },
                { "{\"gc\": {\"retention\": [{\"repos\": \"**\", \"idle_days\": 1e300}]}}",
                  "gc.retention[0].idle_days: expected a non-negative number of days (at most 100000)" },
                { "{\"gc\": {\"retention\": [{\"repos\": \"**\", \"windows\": {\"prod:stabel\": \"1d\"}}]}}",
                  "gc.retention[0].windows.prod:stabel: unknown channel..." },
                { "{\"gc\": {\"retention\": [{\"repos\": \"**\", \"windows\": {\"dev\": 99999999999999}}]}}",
                  "gc.retention[0].windows.dev: duration too large" },
                { "{\"gc\": {\"retention\": [{\"repos\": \"**\", \"keep_forever\": [\"[\"]}]}}",
                  "gc.retention[0].keep_forever[0]: invalid regular expression \"[\": ..." },
                /* glibc's regcomp() took ~3.4 GiB for the first (the config fuzzer's out-of-memory) and
                 * minutes for the third; common/regexp.c refuses or matches them at once */
                { "{\"gc\": {\"retention\": [{\"repos\": \"**\", \"keep_forever\": [\"a{255}{255}{255}\"]}]}}",
                  "gc.retention[0].keep_forever[0]: invalid regular expression \"a{255}{255}{255}\": two repetition operators "
                  "in a row (undefined in POSIX; group the first: \"(a{2}){3}\") at offset 6" },
                { "{\"policy\": [{\"repos\": \"**\", \"immutable\": [\"((x{250}){250}){250}\"]}]}",
                  "policy[0].immutable[0]: invalid regular expression \"((x{250}){250}){250}\": its repetitions expand to more "
                  "than 20000 instructions..." },
                { "{\"policy\": [{\"repos\": \"**\", \"immutable\": [\"^\\\\d+$\"]}]}",
                  "policy[0].immutable[0]: invalid regular expression \"^\\d+$\": \"\\d\" is not an escape of POSIX extended..." },
                { "{\"gc\": {\"retention\": [{\"keep_last\": 1}]}}", "gc.retention[0].repos: missing..." },
                /* worm */
                { "{\"worm\": {\"pth\": \"/mnt/worm\"}}", "worm.pth: unknown key (known: path, registry_id, immutable)" },
                { "{\"worm\": {\"immutable\": \"true\"}}", "worm.immutable: expected true or false" },
                { "{\"worm\": {\"path\": 5}}", "worm.path: expected a string" },
                /* fuse */
                { "{\"fuse\": {\"allow_others\": true}}", "fuse.allow_others: unknown key (known: catch_up_interval, allow_other, "
                                                          "threads, gzip_span, max_layer_bytes, zstd_cache_bytes)" },
                { "{\"fuse\": {\"catch_up_interval\": \"0s\"}}", "fuse.catch_up_interval: expected a duration longer than 0, like \"1s\"" },
                { "{\"fuse\": {\"threads\": 5000}}", "fuse.threads: expected an integer 0..1024" },
                { "{\"fuse\": {\"gzip_span\": -1}}", "fuse.gzip_span: expected a non-negative integer" },
                /* a long key is cut in the path, which leaves room for the problem (fuzz-config found a
                 * 600-byte key that filled the whole message) */
                { "{\"storage\": {\"z0123456789012345678901234567890123456789012345678901234567890123456789\": 1}}",
                  "storage[\"z012345678901234567890123456789012345678901234567890123456789012...\"]: unknown key..." },
                /* keys that would read ambiguously in a path are quoted */
                { "{\"gc\": {\"a.b\\n\": 1}}", "gc[\"a.b\\x0a\"]: unknown key..." },
        };
        for (size_t i = 0; i < ELEMENTSOF(refusals); i++)
                assert_refused(&refusals[i]);
}

static Config *load_ok(const char *json) {
        Config *c = NULL;
        char err[1024] = "";
        int r = config_load_string(json, &c, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "refused: %s\n  %s\n", json, err);
        ASSERT_OK(r);
        return c;
}

/* What the schema accepts, and the new keys reach the Config */
TEST(test_schema_accepts) {
        Config *c = load_ok("{\"http\": {\"header_timeout\": \"30s\", \"max_connections_per_client\": 8},"
                            " \"storage\": {\"max_upload_sessions\": 100, \"max_upload_sessions_per_client\": 5}}");
        ASSERT_EQ(c->http_header_timeout_s, 30);
        ASSERT_EQ(c->http_max_connections_per_client, 8);
        ASSERT_EQ(c->max_upload_sessions, 100);
        ASSERT_EQ(c->max_upload_sessions_per_client, 5);
        config_free(c);
        /* the default per-client cap follows a smaller total; only one the user writes above it is refused */
        c = load_ok("{\"http\": {\"max_connections\": 16, \"header_timeout\": 1}}");
        ASSERT_EQ(c->http_max_connections_per_client, 16);
        ASSERT_EQ(c->http_header_timeout_s, 1);
        config_free(c);

        const char *ok[] = {
                "{\"channels\": {\"gates\": {\"prod:stable\": {\"signature\": false, \"sbom\": true, \"labels\": "
                "[\"org.opencontainers.image.source\"], \"soak\": 3600}, \"dev\": {\"labels\": true}, "
                "\"prod\": {\"not_blocked\": false}}}}",
                "{\"channels\": {\"public_keys\": [\"-----BEGIN PUBLIC KEY-----\\nMFkw...\\n-----END PUBLIC KEY-----\\n\"], "
                "\"gates\": {\"prod:stable\": {\"signature\": true}}}}",
                /* other environments: the defaults' "stg" gate and window stay (a merge cannot remove
                 * them) and never apply; what the user writes is checked against the new list */
                "{\"channels\": {\"envs\": [\"dev\", \"qa\", \"live\"], \"gates\": {\"live:stable\": {\"soak\": \"1h\"}, \"qa\": {}}}}",
                "{\"policy\": [{\"repos\": \"apps/*/web-?\", \"name\": \"web\", \"reason\": \"r\", \"comment\": \"c\", "
                "\"immutable\": [\"^v[0-9]+$\"], \"forbidden\": [], \"moving\": [\"^dev$\"]}]}",
                "{\"gc\": {\"schedule\": \"weekly\", \"retention\": [{\"repos\": \"**\", \"idle_days\": 0.5, \"comment\": \"x\", "
                "\"windows\": {\"stg:candidate\": \"3d\", \"prod\": 86400}}]}}",
                "{\"gc\": {\"schedule\": \"6h\"}, \"worm\": {\"path\": \"/mnt/worm\", \"registry_id\": \"r\", \"immutable\": false}}",
                "{\"fuse\": {\"catch_up_interval\": 2, \"allow_other\": true, \"threads\": 4, \"gzip_span\": 1048576, "
                "\"max_layer_bytes\": 0, \"zstd_cache_bytes\": 1073741824}}",
                "{\"listen\": \"[::1]:0\", \"http\": {\"timeout\": 0}}",
                "{\"tls\": {\"cert\": \"/dev/null\", \"key\": \"/dev/null\", \"client_ca\": \"/dev/null\", \"hsts_max_age\": \"0\"}}",
                "{\"tls\": {\"cert\": \"\", \"key\": \"\", \"client_ca\": \"\", \"hsts_max_age\": \"365d\"}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++)
                config_free(load_ok(ok[i]));
}

int main(void) {
        RUN(test_defaults);
        RUN(test_merge_and_errors);
        RUN(test_load_string);
        RUN(test_example_is_default);
        RUN(test_schema_refusals);
        RUN(test_schema_accepts);
        return 0;
}
